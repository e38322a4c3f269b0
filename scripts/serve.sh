#!/usr/bin/env bash
# Set up Kiln (a virtualenv in .venv with everything it needs) and run it on embedded defaults:
# SQLite, local storage and a queue that needs no server, all under ./kiln-data (or $KILN_DATA).
# Extra arguments go to `kiln serve` (e.g. --port 8080 --host 0.0.0.0).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/_venv.sh
ensure_venv ""
data=${KILN_DATA:-kiln-data}
if [ ! -f "$data/kiln.db" ]; then
  echo "First run: creating $data. Register at /auth/register (the confirmation mail is printed here"
  echo "and saved under $data/mail/), or create an admin with: .venv/bin/kiln adduser NAME --email E --admin"
fi
exec .venv/bin/kiln --data "$data" serve "$@"
