#!/usr/bin/env bash
# Installs the project with its test extras into .venv (created if missing) and
# runs the whole suite. Extra arguments go to pytest. "No tests ran" is a failure.
set -euo pipefail
cd "$(dirname "$0")/.."

source scripts/venv.sh test

echo "==> running the test suite"
status=0
"$venv/bin/python" -m pytest "$@" || status=$?
if [ "$status" -eq 5 ]; then
  echo "error: pytest collected no tests; that is a failure here" >&2
  exit 1
fi
exit "$status"
