# Sourced by dev.sh and test.sh: makes $venv (X402_VENV, else .venv) exist and
# installs the project into it with the extras in $1 (none when empty).
venv="${X402_VENV:-.venv}"
if [ ! -x "$venv/bin/python" ]; then
  echo "==> creating virtualenv $venv"
  python3 -m venv "$venv"
fi

echo "==> installing x402-rails${1:+ with $1 extras}"
"$venv/bin/python" -m pip install --quiet --upgrade pip
"$venv/bin/python" -m pip install --quiet -e ".${1:+[$1]}"
