#!/usr/bin/env bash
# The whole test suite against real components (MariaDB, FTPS, HTTP receivers started by
# the tests on 127.0.0.1), plus lint and type checks. Installs what it needs first.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/_deps.sh vsftpd
python3 -m ruff check src tests benchmarks examples
python3 -m mypy src/moodump
lint-imports
python3 -m pytest -q -p no:cacheprovider "$@"
