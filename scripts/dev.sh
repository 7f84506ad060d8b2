#!/usr/bin/env bash
# Installs the project into .venv (created if missing) and starts the whole
# stack on its embedded defaults with `x402-rails dev`. Arguments go to dev.
set -euo pipefail
cd "$(dirname "$0")/.."

venv="${X402_VENV:-.venv}"
if [ ! -x "$venv/bin/python" ]; then
  echo "==> creating virtualenv $venv"
  python3 -m venv "$venv"
fi

echo "==> installing x402-rails"
"$venv/bin/python" -m pip install --quiet --upgrade pip
"$venv/bin/python" -m pip install --quiet -e .

echo "==> starting the stack (Ctrl-C stops it)"
exec "$venv/bin/x402-rails" dev "$@"
