#!/usr/bin/env bash
# The whole check: installs everything (pip and Debian packages), then lint, types,
# Dockerfile and workflow lint, the CRD freshness check and the test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/system-deps.sh
bash scripts/setup.sh --dev
. .venv/bin/activate
echo "== ruff"
ruff check .
ruff format --check .
echo "== mypy"
mypy operator/kubetune trainer-image/kubetune_trainer tests bench
echo "== hadolint"
hadolint trainer-image/Dockerfile operator/Dockerfile examples/custom-trainer/Dockerfile
echo "== shellcheck"
bash -n scripts/gpu-check.sh scripts/gpu-check-wheels.sh
shellcheck scripts/gpu-check.sh scripts/gpu-check-wheels.sh
echo "== actionlint"
bash scripts/actionlint.sh
echo "== tiny model cache"
# Built once per machine (about a minute on 2 cores); trainer, local-run and operator
# tests share it, so build it here rather than inside whichever test runs first.
python -m kubetune_trainer.tiny
echo "== pytest"
pytest -q -p no:cacheprovider "$@"
