#!/usr/bin/env bash
# Debian packages the test suite needs: a real Prometheus server, and shellcheck.
set -euo pipefail
if command -v prometheus >/dev/null 2>&1 && command -v shellcheck >/dev/null 2>&1; then exit 0; fi
SUDO=""
if [ "$(id -u)" != "0" ]; then SUDO="sudo"; fi
$SUDO apt-get update -q
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends prometheus shellcheck
