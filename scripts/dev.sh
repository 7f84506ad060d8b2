#!/usr/bin/env bash
# Installs the project into .venv (created if missing) and starts the whole
# stack on its embedded defaults with `x402-rails dev`. Arguments go to dev.
set -euo pipefail
cd "$(dirname "$0")/.."

source scripts/venv.sh ""

echo "==> starting the stack (Ctrl-C stops it)"
exec "$venv/bin/x402-rails" dev "$@"
