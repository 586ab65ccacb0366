#!/usr/bin/env bash
# The whole test suite against real components (MariaDB, FTPS, S3 and HTTP servers started
# by the tests on 127.0.0.1), plus lint, type and import-rule checks. Installs what it needs.
#
# With no arguments the pure tests (-m "not db") run with the MariaDB binaries hidden (a
# private mount namespace, when we may make one), which proves they need no server, beside
# the tests that need one. With arguments, pytest runs once with them.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/_deps.sh vsftpd faketime postgresql
python3 -m ruff check src tests benchmarks examples
if [ "$#" -gt 0 ]; then
  python3 -m mypy src/moodump
  lint-imports
  exec python3 -m pytest -q -p no:cacheprovider "$@"
fi
# The type and import checks and the pure tests run in the background while the server
# tests run (those wait on servers much of the time, so the two cores are not full): each
# writes to its own log, shown when it ends, and its own pytest temp directory.
logs=$(mktemp -d)
trap 'rm -rf "$logs"' EXIT
(python3 -m mypy src/moodump && lint-imports) >"$logs/checks" 2>&1 &
checks=$!
# shellcheck disable=SC2016  # expanded by the inner sh, inside the namespace
hide='mount --bind /dev/null "$(command -v mariadbd || echo /usr/sbin/mariadbd)" && mount --bind /dev/null "$(command -v mariadb)"'
pure=(python3 -m pytest -q -p no:cacheprovider -m "not db" --durations=10 --basetemp="$logs/pure-tmp")
if [ "$(id -u)" -eq 0 ] && unshare -m true 2>/dev/null; then
  PATH="$PATH:/usr/sbin" unshare -m sh -c "$hide && exec ${pure[*]@Q}" >"$logs/pure" 2>&1 &
else
  "${pure[@]}" >"$logs/pure" 2>&1 &
fi
pure_pid=$!
rc=0
python3 -m pytest -q -p no:cacheprovider -m db --durations=20 --basetemp="$logs/db-tmp" || rc=$?
for job in checks:$checks pure:$pure_pid; do
  name=${job%%:*}
  if wait "${job#*:}"; then status=passed; else status=FAILED; rc=1; fi
  echo "---- $name ($status) ----"
  cat "$logs/$name"
done
exit "$rc"
