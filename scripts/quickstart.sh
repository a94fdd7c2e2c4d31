#!/usr/bin/env bash
# Sets up kubetune and runs the quick-start sweep locally: no cluster needed.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/kubetune run examples/quickstart.yaml "$@"
