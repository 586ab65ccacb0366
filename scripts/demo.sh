#!/usr/bin/env bash
# The main job on an embedded default: a throwaway MariaDB with sample Moodle data,
# backed up, listed and verified. Installs what it needs first.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/_deps.sh
exec moodump demo --workdir "${MOODUMP_DEMO_DIR:-demo-backups}" "$@"
