#!/usr/bin/env bash
# Fetch, here, the wheels the GPU machine lacks into .whl/ (ignored by git), for
# `carry: [".whl"]`. That machine's python3 is 3.12 with torch, transformers, peft,
# tokenizers, safetensors, pyyaml, filelock and prometheus-client already installed;
# kubetune adds pydantic (about 3 MiB of wheels). --with-bitsandbytes adds QLoRA's
# bitsandbytes (0.50.2: a 41 MiB wheel); with the 2.5 MiB tree that stays under the
# device tool's 64 MiB limit on what travels.
set -euo pipefail
cd "$(dirname "$0")/.."
PY_VERSION="${GPU_PY_VERSION:-3.12}"
packages=(pydantic==2.14.4 pydantic-core==2.50.5 annotated-types==0.8.0 typing-inspection==0.4.5)
if [ "${1:-}" = "--with-bitsandbytes" ]; then packages+=(bitsandbytes); fi
exclude="$(git rev-parse --git-path info/exclude)"
grep -qx "/.whl/" "$exclude" 2>/dev/null || echo "/.whl/" >>"$exclude"
mkdir -p .whl
python3 -m pip download --no-deps --only-binary=:all: --python-version "$PY_VERSION" \
  --implementation cp --platform manylinux_2_28_x86_64 --platform manylinux_2_24_x86_64 \
  --platform manylinux_2_17_x86_64 \
  --platform manylinux2014_x86_64 -d .whl "${packages[@]}"
du -sh .whl
