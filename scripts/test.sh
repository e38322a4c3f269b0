#!/usr/bin/env bash
# Set up the test environment (.venv with the test extras) and run the whole suite on SQLite, on several
# processes (pytest-xdist; KILN_TEST_JOBS=N to choose how many, 0 for one process, e.g. with --pdb).
# With KILN_TEST_DATABASE_URL set (a PostgreSQL URL), the tests marked `db` (those whose outcome could
# differ on PostgreSQL, see pyproject.toml) run a second time, on PostgreSQL.
# Extra arguments go to pytest in both runs; a `-m EXPR` of yours is combined with `db` in the second.
# Before either, mypy checks src/kiln (its settings are in pyproject.toml); a type error fails the command
# before any test runs. The exit status is non-zero when mypy or either run fails.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/_venv.sh
ensure_venv "[test]"
if [ ! -x /usr/bin/chromium ]; then
  echo "NOTE: browser tests will be SKIPPED: no Chromium at /usr/bin/chromium (install it: apt-get install chromium)."
fi
# axe-core for the accessibility checks (tests/e2e/package.json; the version and its hash are pinned in
# package-lock.json).
if [ ! -f tests/e2e/node_modules/axe-core/axe.min.js ]; then
  if command -v npm >/dev/null; then
    npm ci --prefix tests/e2e --no-audit --no-fund --loglevel=error >/dev/null
  else
    echo "NOTE: the accessibility browser test will FAIL: no npm to install axe-core (apt-get install npm)."
  fi
fi
if [ ! -x /usr/sbin/nginx ]; then
  echo "NOTE: the nginx production-install test will be SKIPPED: no nginx (install it: apt-get install nginx)."
fi
if ! curl -fs -o /dev/null "${KILN_TEST_SWIFT_URL:-http://127.0.0.1:8080}/info" 2>/dev/null; then
  echo "NOTE: Swift/S3 storage tests will be SKIPPED: no Swift at ${KILN_TEST_SWIFT_URL:-http://127.0.0.1:8080}"
  echo "      (start one with: ../shared/services/swift.sh start /tmp/kiln-swift 8080)."
fi

# Four processes on two cores: many tests wait on subprocesses, servers and the browser.
jobs=${KILN_TEST_JOBS:-4}
parallel=()
if [ "$jobs" != 0 ]; then
  # A module's tests share one process (and its module fixtures); modules start in collection order,
  # so the long end-to-end ones (tests/e2e, tests/hostile) start first rather than last.
  parallel=(-n "$jobs" --dist loadfile --no-loadscope-reorder)
fi

# The PostgreSQL run's arguments: yours, with `-m EXPR` turned into `-m "db and (EXPR)"`.
pg_args=() marked=""
for (( i = 1; i <= $#; i++ )); do
  if [ "${!i}" = -m ] && [ "$i" -lt $# ]; then
    i=$((i + 1)); marked="db and (${!i})"; pg_args+=(-m "$marked")
  else
    pg_args+=("${!i}")
  fi
done
[ -n "$marked" ] || pg_args+=(-m db)

echo "== mypy over src/kiln"
started=$SECONDS
typed=0
.venv/bin/mypy || typed=$?
echo "== mypy: $((SECONDS - started)) s"
[ "$typed" = 0 ] || exit "$typed"

status=0
echo "== test suite on SQLite"
started=$SECONDS
# This run never uses PostgreSQL, even when the caller set the URL for the second one.
env -u KILN_TEST_DATABASE_URL .venv/bin/python -m pytest -p no:cacheprovider --durations=25 "${parallel[@]}" "$@" || status=$?
echo "== SQLite run: $((SECONDS - started)) s"
if [ -n "${KILN_TEST_DATABASE_URL:-}" ]; then
  echo "== tests marked db on PostgreSQL (${KILN_TEST_DATABASE_URL%%@*}@...)"
  started=$SECONDS
  .venv/bin/python -m pytest -p no:cacheprovider --durations=25 "${parallel[@]}" "${pg_args[@]}" || status=$?
  echo "== PostgreSQL run: $((SECONDS - started)) s"
fi
exit "$status"
