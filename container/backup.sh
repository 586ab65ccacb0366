#!/usr/bin/env bash
# backup.sh: compatibility entry of the old OpenShift "backup-container".
#
# Existing cron lines (`./backup.sh -s`, `./backup.sh -s -v all`), runbooks and the old
# CronJob (`/backup.sh -1`) keep working: every old flag of the getopts string
# `nclr:v:f:1spha:I` is mapped onto a moodump command. The script only translates; all
# logic (configuration, credentials, dumping, retention, verification) lives in moodump.
# The environment is passed through unchanged, so backup.conf, BACKUP_DIR, TZ,
# <HOST>_USER/_PASSWORD and the rest mean what they meant before.
#
# Old mode precedence is kept: list > config > prune > restore > verify > once >
# scheduled > cron. Exit status: that of moodump (the worst one when several backups are
# verified); 1 after -h or a declined confirmation; 2 for a usage error; 5 when no backup
# matches (moodump's "not found").
set -euo pipefail

PROG=${0##*/}

usage() {
  cat <<EOF
Usage: $PROG [options]   (compatibility entry; the real tool is 'moodump --help')

  (no option)     cron mode: run the backup.conf cron lines      -> moodump run
  -1              one backup cycle over every database, then exit -> moodump run --once
  -s              scheduled run (what cron lines call)            -> moodump run --once
  -l              list backups                                    -> moodump list
  -c              print and validate the configuration            -> moodump config
  -p              prune now with the normal rules                 -> moodump prune
  -p -f FILTER    delete the newest backup matching FILTER, asking each time,
                  until none matches (no questions with -s)
  -r SPEC         restore the newest backup of SPEC ([type=]host[:port]/db) into
                  SPEC, after confirmation (none with -s)         -> moodump restore
  -v SPEC|all     verify the newest backup of SPEC, or of every database
                                                                  -> moodump verify
  -f FILTER       with -r/-v/-p: use the newest backup whose path contains FILTER
                  (-r/-v: or, with S3_*/FTP_URL set, an off-site copy whose URL does)
                  (a full path, a backup name or any part of it; old .sql.gz files too)
  -a PASSWORD     accepted and ignored (the old MariaDB restore never used it either)
  -I              accepted and ignored (honoured only by the old Postgres plugin)
  -n              accepted and ignored (the old "null" test plugin)
  -h              this help (exit status 1, as before)
EOF
}

die() {
  echo "$PROG: $1" >&2
  exit "${2:-2}"
}

command -v moodump >/dev/null 2>&1 ||
  die "moodump is not on PATH; this script only translates the old flags to moodump" 127

opt_list="" opt_config="" opt_prune="" opt_once="" opt_sched=""
restore_spec="" verify_spec="" filter=""
while getopts ":nclr:v:f:1spha:I" opt; do
  case "$opt" in
    n) ;;
    c) opt_config=1 ;;
    l) opt_list=1 ;;
    r) restore_spec=$OPTARG ;;
    v) verify_spec=$OPTARG ;;
    f) filter=$OPTARG ;;
    1) opt_once=1 ;;
    s) opt_sched=1 ;;
    p) opt_prune=1 ;;
    h)
      usage
      exit 1
      ;;
    a) echo "$PROG: note: -a is ignored; a restore uses the credentials of its spec" >&2 ;;
    I) echo "$PROG: note: -I is ignored; moodump stops on the first restore error" >&2 ;;
    :)
      usage >&2
      die "option -$OPTARG needs a value"
      ;;
    *)
      usage >&2
      die "unknown option -$OPTARG"
      ;;
  esac
done
shift $((OPTIND - 1))
[ "$#" -eq 0 ] || die "unexpected argument: $1 (see -h)"
if [ -n "$filter" ] && [ -z "$opt_prune$restore_spec$verify_spec" ]; then
  die "-f selects a backup for -r, -v or -p; use it with one of them"
fi

# Backups as paths, chosen from `moodump list --json` ({"databases": [{"core",
# "configured", "backups": [{"path", "core", "when", "status", "legacy", ...}]}]}) by the
# small Python below. Unlike the old substring match, a spec selects its own backups only
# (db-moodle never matches db-moodle_archive). Modes:
#   core NAME    newest DONE backup of one database (core name <host>-<db>); an old
#                .sql.gz file only when the database has no moodump backup yet
#   filter TEXT  newest DONE backup or old .sql.gz file whose path contains TEXT
#   prune TEXT   newest backup whose path has TEXT, of any status but STARTED (it may be
#                running), old .sql.gz files included
# moodump restores and verifies old .sql.gz files itself (read end to end first, then
# streamed to the mariadb client), so -r and -v -f work on them as they did before.
PICK_PY='
import json, sys
from datetime import datetime

mode, value = sys.argv[1], (sys.argv[2] if len(sys.argv) > 2 else "")
doc = json.load(sys.stdin)
groups, offsite = doc.get("databases", []), doc.get("offsite", [])

def when(b):
    try:
        return datetime.fromisoformat(b["when"]).timestamp()
    except (KeyError, TypeError, ValueError):
        return 0.0

def newest(backups, pred):
    chosen = [b for b in backups if pred(b)]
    return max(chosen, key=lambda b: (when(b), b["path"]))["path"] if chosen else None

def good(b):
    return b.get("status") == "DONE" and not b.get("legacy")

def restorable(b):  # a finished moodump backup or an old .sql.gz file
    return b.get("status") == "DONE"

everything = [b for g in groups for b in g.get("backups", [])]
# Off-site copies (moodump list --offsite): their "path" is the URL moodump restores from.
remote = [b for t in offsite for g in t.get("databases", []) for b in g.get("backups", [])]
if mode == "core":
    mine = [b for b in everything if b.get("core") == value]
    picks = [newest(mine, good) or newest(mine, restorable)]
elif mode == "filter":  # a local backup first, else an off-site copy whose URL matches
    picks = [
        newest(everything, lambda b: restorable(b) and value in b["path"])
        or newest(remote, lambda b: b.get("status") == "DONE" and value in b["path"])
    ]
else:  # prune
    picks = [newest(everything, lambda b: value in b["path"] and b.get("status") != "STARTED")]
if picks[0] is None:
    sys.exit(1)
print(picks[0])
'

# pick MODE VALUE: print the chosen backup path; exit 5 (not found) when there is none.
# With an off-site target configured, -f also matches the off-site copies' URLs.
pick() {
  local listing offsite=()
  if [ "$1" = filter ] && [ -n "${S3_ENDPOINT:-}${FTP_URL:-}" ]; then
    offsite=(--offsite)
  fi
  listing=$(moodump list --json "${offsite[@]}") || die "moodump list --json failed" 1
  printf '%s' "$listing" | python3 -c "$PICK_PY" "$@" ||
    die "no finished backup found for $2 (moodump list shows what exists)" 5
}

# parse_spec SPEC: set spec_host, spec_port, spec_db from [type=]host[:port]/db[?opts].
parse_spec() {
  local spec=${1%%\?*}
  spec=${spec#*=}
  case "$spec" in
    */*) ;;
    *) die "'$1' is not a database spec: [type=]host[:port]/database" ;;
  esac
  local hostport=${spec%%/*}
  spec_db=${spec#*/}
  spec_host=${hostport%%:*}
  spec_port=""
  [ "$hostport" = "$spec_host" ] || spec_port=${hostport#*:}
  [ -n "$spec_host" ] && [ -n "$spec_db" ] || die "'$1' is not a database spec"
}

# setting NAME: print the variable's value; fail when it is unset or empty (moodump
# treats an empty variable as unset, so the next candidate applies).
setting() {
  local value
  value=$(printenv "$1") && [ -n "$value" ] && printf '%s' "$value"
}

# credential NAME: the value of NAME without its trailing line ends (CR and LF, which
# moodump drops: a Kubernetes Secret made from a file ends in one); fails when empty.
credential() {
  local value
  value=$(printenv "$1") || return 1
  while [ -n "$value" ] && [ -z "${value##*[$'\r\n']}" ]; do
    value=${value%?}
  done
  [ -n "$value" ] && printf '%s' "$value"
}

# account NAME: the value of NAME, else the first line of the file NAME_FILE names
# (a mounted secret, as moodump reads it: a BOM dropped, the line ended by LF, CR LF or
# a lone CR); fails when neither gives a value.
account() {
  local file line=""
  if credential "$1"; then
    return 0
  fi
  file=$(setting "${1}_FILE") || return 1
  IFS= read -r line <"$file" || [ -n "$line" ] || die "cannot read ${1}_FILE=$file" 1
  line=${line#$'\xef\xbb\xbf'}
  line=${line%%$'\r'*}
  [ -n "$line" ] && printf '%s' "$line"
}

# confirm QUESTION: yes unless the operator declines; -s (scripted) never asks.
confirm() {
  [ -z "$opt_sched" ] || return 0
  local answer=""
  printf '%s [y/N] ' "$1" >&2
  read -r answer || true
  case "$answer" in
    y | Y | yes | YES) return 0 ;;
    *)
      echo "$PROG: cancelled" >&2
      exit 1
      ;;
  esac
}

if [ -n "$opt_list" ]; then
  exec moodump list
elif [ -n "$opt_config" ]; then
  exec moodump config
elif [ -n "$opt_prune" ]; then
  [ -n "$filter" ] || exec moodump prune
  # ROOT_BACKUP_DIR wins over BACKUP_DIR, as in moodump's key table (and as before).
  root=$(realpath -m -- "${ROOT_BACKUP_DIR:-${BACKUP_DIR:-/backups/}}")
  previous=""
  while :; do
    listing=$(moodump list --json) || die "moodump list --json failed" 1
    target=$(printf '%s' "$listing" | python3 -c "$PICK_PY" prune "$filter") || break
    [ "$target" != "$previous" ] || die "$target is still listed after deleting it" 1
    case "$(realpath -m -- "$target")/" in
      "$root"/*) ;;
      *) die "refusing to delete $target: it is not under BACKUP_DIR ($root)" 1 ;;
    esac
    confirm "Delete backup $target?"
    # moodump deletes it under the run lock, manifest first (a half-deleted backup is
    # never DONE), and only below BACKUP_DIR.
    # --force: the operator confirmed this very backup, as the old container asked
    moodump prune --delete "$target" --force >/dev/null || exit $?
    echo "$PROG: deleted $target" >&2
    previous=$target
  done
  [ -n "$previous" ] || die "no backup matches '$filter'" 5
  exit 0
elif [ -n "$restore_spec" ]; then
  parse_spec "$restore_spec"
  if [ -n "$filter" ]; then
    backup=$(pick filter "$filter")
  else
    backup=$(pick core "$spec_host-$spec_db")
  fi
  confirm "Restore $backup into $spec_host${spec_port:+:$spec_port}/$spec_db, replacing its tables?"
  # Credentials as the old container resolved them: <HOST>_USER/_PASSWORD (host upper-cased,
  # '-' and '.' as '_'), else DATABASE_USER/_PASSWORD; *_USER_FILE and *_PASSWORD_FILE
  # name files. The password travels in MYSQL_PWD or as a file, never on the command line.
  # --drop --yes: the old restore overwrote the database's tables, and we asked above.
  var=$(printf '%s' "$spec_host" | tr '[:lower:].-' '[:upper:]__')
  user=$(account "${var}_USER" || account DATABASE_USER || true)
  args=(restore "$backup" --host "$spec_host" --database "$spec_db" --drop --yes)
  [ -z "$spec_port" ] || args+=(--port "$spec_port")
  [ -z "$user" ] || args+=(--user "$user")
  for name in "${var}_PASSWORD" DATABASE_PASSWORD; do
    if file=$(setting "${name}_FILE"); then
      exec moodump "${args[@]}" --password-file "$file"
    elif password=$(credential "$name"); then
      MYSQL_PWD=$password exec moodump "${args[@]}"
    fi
  done
  exec moodump "${args[@]}"
elif [ -n "$verify_spec" ]; then
  # A configured database without a finished backup is a failure (exit 5), reported
  # after the others are verified: the old -v all re-verified an old file instead.
  worst=0
  if [ -n "$filter" ]; then
    backups=$(pick filter "$filter")
  elif [ "$verify_spec" = all ]; then
    # The newest DONE backup of every configured database; a database whose newest
    # backup is not from today (a failed run) fails instead of re-verifying an old one.
    exec moodump run --verify-all
  else
    parse_spec "$verify_spec"
    backups=$(pick core "$spec_host-$spec_db")
  fi
  # Every backup is verified even after a failure; the exit status is the worst one.
  mapfile -t chosen < <(printf '%s' "$backups" | grep .)
  for backup in "${chosen[@]}"; do
    rc=0
    moodump verify "$backup" </dev/null || rc=$?
    [ "$rc" -le "$worst" ] || worst=$rc
  done
  exit "$worst"
elif [ -n "$opt_once$opt_sched" ]; then
  exec moodump run --once
else
  exec moodump run
fi
