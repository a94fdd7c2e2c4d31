"""The operator as it was before its two memory measures, for bench/operator_overhead.py's
baseline arm: glibc's dynamic mmap threshold (no `fix_mmap_threshold`) and Gaussian-process
fits side by side (no one-at-a-time lock). Bench-only: the product has no switch for either.

    python -m bench.operator_unfixed <the operator's own arguments>
"""

import contextlib
import sys

from kubetune.engine import samplers
from kubetune.operator import main as operator_main


def _keep_glibc_default() -> bool:
    return False


def main() -> int:
    # Both are looked up at call time, so patching the module attributes is enough.
    setattr(operator_main, "fix_mmap_threshold", _keep_glibc_default)  # noqa: B010
    setattr(samplers, "_GP_ASK", contextlib.nullcontext())  # noqa: B010
    return operator_main.main()


if __name__ == "__main__":
    sys.exit(main())
