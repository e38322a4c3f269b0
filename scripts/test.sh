#!/usr/bin/env bash
# Set up the test environment (.venv with the test extras) and run the whole suite on SQLite.
# With KILN_TEST_DATABASE_URL set (a PostgreSQL URL), the suite runs a second time on PostgreSQL.
# Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/_venv.sh
ensure_venv "[test]"
if [ ! -x /usr/bin/chromium ]; then
  echo "NOTE: browser tests will be SKIPPED: no Chromium at /usr/bin/chromium (install it: apt-get install chromium)."
fi
if [ ! -x /usr/sbin/nginx ]; then
  echo "NOTE: the nginx production-install test will be SKIPPED: no nginx (install it: apt-get install nginx)."
fi
if ! curl -fs -o /dev/null "${KILN_TEST_SWIFT_URL:-http://127.0.0.1:8080}/info" 2>/dev/null; then
  echo "NOTE: Swift/S3 storage tests will be SKIPPED: no Swift at ${KILN_TEST_SWIFT_URL:-http://127.0.0.1:8080}"
  echo "      (start one with: ../shared/services/swift.sh start /tmp/kiln-swift 8080)."
fi
echo "== test suite on SQLite"
.venv/bin/python -m pytest -p no:cacheprovider "$@"
if [ -n "${KILN_TEST_DATABASE_URL:-}" ]; then
  echo "== test suite on PostgreSQL (${KILN_TEST_DATABASE_URL%%@*}@...)"
  .venv/bin/python -m pytest -p no:cacheprovider "$@"
fi
