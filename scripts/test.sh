#!/usr/bin/env bash
# The whole test suite against real components (MariaDB, FTPS, S3 and HTTP servers started
# by the tests on 127.0.0.1), plus lint, type and import-rule checks. Installs what it needs.
#
# With no arguments the pure tests (-m "not db") run first with the MariaDB binaries hidden
# (a private mount namespace, when we may make one), which proves they need no server;
# then the tests that need one. With arguments, pytest runs once with them.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/_deps.sh vsftpd faketime postgresql
python3 -m ruff check src tests benchmarks examples
python3 -m mypy src/moodump
lint-imports
if [ "$#" -gt 0 ]; then
  exec python3 -m pytest -q -p no:cacheprovider "$@"
fi
# shellcheck disable=SC2016  # expanded by the inner sh, inside the namespace
hide='mount --bind /dev/null "$(command -v mariadbd || echo /usr/sbin/mariadbd)" && mount --bind /dev/null "$(command -v mariadb)"'
if [ "$(id -u)" -eq 0 ] && unshare -m true 2>/dev/null; then
  PATH="$PATH:/usr/sbin" unshare -m sh -c "$hide && exec python3 -m pytest -q -p no:cacheprovider -m 'not db' --durations=10"
else
  python3 -m pytest -q -p no:cacheprovider -m "not db" --durations=10
fi
python3 -m pytest -q -p no:cacheprovider -m db --durations=20
