"""kubetune's built-in trainer: one fine-tuning trial per process.

Importing the package stays light (no torch); `main` loads the heavy parts on demand.
"""

from collections.abc import Sequence


def main(argv: Sequence[str] | None = None) -> int:
    """Run one trial as `python -m kubetune_trainer` would; returns the exit status."""
    from kubetune_trainer.cli import run

    return run(argv)


__all__ = ["main"]
