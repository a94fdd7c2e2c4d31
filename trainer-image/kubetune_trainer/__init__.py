"""kubetune's built-in trainer: one fine-tuning trial per process.

Importing the package stays light (no torch); `main` loads the heavy parts on demand.
"""

from collections.abc import Sequence


def main(argv: Sequence[str] | None = None) -> int:
    """Run one trial as `python -m kubetune_trainer` would; returns the exit status.

    `prefetch` as the first argument downloads the model into HF_HOME instead (prefetch.py);
    `tidy` removes ended trials' checkpoints per keepCheckpoints (tidy.py).
    """
    import sys

    args = list(sys.argv[1:] if argv is None else argv)
    if args[:1] == [PREFETCH]:
        from kubetune_trainer import prefetch

        return prefetch.run(args[1:])
    if args[:1] == [TIDY]:
        from kubetune_trainer import tidy

        return tidy.run(args[1:])
    from kubetune_trainer.cli import run

    return run(args)


PREFETCH = "prefetch"
TIDY = "tidy"


__all__ = ["main"]
