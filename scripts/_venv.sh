# Shared by serve.sh and test.sh: make .venv and install Kiln into it when pyproject.toml changed.
ensure_venv() {
  local extras=$1 py=${PYTHON:-python3} stamp=".venv/.installed$1"
  if ! "$py" -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
    echo "Kiln needs Python 3.11 or newer; $py is $("$py" --version 2>&1)." >&2
    exit 1
  fi
  if [ ! -x .venv/bin/python ]; then
    "$py" -m venv .venv
    .venv/bin/python -m pip install --quiet --upgrade pip
  fi
  if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
    echo "Installing Kiln and its dependencies into .venv ..."
    .venv/bin/python -m pip install --quiet --disable-pip-version-check -e ".$extras"
    touch "$stamp"
  fi
}
