#!/usr/bin/env bash
# Creates .venv and installs kubetune with the operator/CLI and the trainer (and, with --dev,
# the test tools).
# Idempotent: a second run only installs what changed.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3.11}
command -v "$PY" >/dev/null 2>&1 || PY=python3
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
.venv/bin/python -m pip install -q --upgrade pip
# torch first and pinned: on these machines the CPU wheel is on disk, and an unpinned
# torch pulled in by transformers would fetch the multi-GB CUDA build instead.
.venv/bin/python -m pip install -q "torch==2.13.0"
extras="operator,trainer"
if [ "${1:-}" = "--dev" ]; then extras="operator,trainer,dev"; fi
.venv/bin/python -m pip install -q -e ".[${extras}]"
