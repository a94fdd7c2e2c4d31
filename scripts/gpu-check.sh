#!/usr/bin/env bash
# The GPU check: every training path on a real GPU, under 8 minutes, JSON in
# bench/results/gpu-*.json (see README "GPU check"). Needs no network.
#   bash scripts/gpu-check.sh             # on the GPU machine
#   bash scripts/gpu-check.sh --dry-run   # anywhere: CPU, tiny sizes (GPU_CHECK_DRY_RUN=1 too)
# Python: $GPU_CHECK_PYTHON, else a carried .venv whose python runs, else python3.
# Packages that machine lacks travel as wheels in .whl/ (scripts/gpu-check-wheels.sh
# fetches them); they are installed into a temporary folder, never into the system.
set -euo pipefail
cd "$(dirname "$0")/.."

pick_python() {
  if [ -n "${GPU_CHECK_PYTHON:-}" ]; then
    echo "$GPU_CHECK_PYTHON"
  elif [ -x .venv/bin/python ] && .venv/bin/python -c 'import sys' >/dev/null 2>&1; then
    echo .venv/bin/python
  else
    echo python3
  fi
}

PYTHON="$(pick_python)"
if ! command -v "$PYTHON" >/dev/null 2>&1; then
  echo "gpu-check: no Python interpreter found (tried ${PYTHON}); set GPU_CHECK_PYTHON" >&2
  exit 3
fi
if ! "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
  echo "gpu-check: $PYTHON is Python $("$PYTHON" -V 2>&1); 3.11 or newer is needed" >&2
  exit 3
fi

shopt -s nullglob
wheels=(.whl/*.whl)
if [ "${#wheels[@]}" -gt 0 ]; then
  site="$(mktemp -d "${TMPDIR:-/tmp}/gpu-check-site.XXXXXX")"
  echo "gpu-check: installing ${#wheels[@]} carried wheel(s) from .whl/ into $site"
  if ! "$PYTHON" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir \
      --target "$site" "${wheels[@]}"; then
    echo "gpu-check: the wheels in .whl/ did not install for $PYTHON (built for another Python?)" >&2
    exit 3
  fi
  export PYTHONPATH="$site${PYTHONPATH:+:$PYTHONPATH}"
fi

echo "gpu-check: $PYTHON ($("$PYTHON" -V 2>&1))"
exec "$PYTHON" bench/gpu_check.py "$@"
