#!/usr/bin/env bash
# build-local.sh: build the moodump image where no container registry is reachable.
#
# The base image is made from Debian 12 packages with mmdebstrap (what
# debian:bookworm-slim contains, from the Debian mirror) and imported into podman's
# storage; then buildah builds container/Containerfile on it with chroot isolation, which
# needs no container runtime. Finally the image is smoke-tested with `buildah run`: as the
# arbitrary non-root UID it checks moodump, the C extension, backup.sh, the MariaDB
# binaries, and a real dump plus verification by restore. Needs root and: apt-get install -y podman buildah mmdebstrap.
#
# Usage: container/build-local.sh [-t TAG] [-s STORAGE_DIR] [--host-ca]
#   -t TAG          image name (default localhost/moodump:dev)
#   -s STORAGE_DIR  containers storage (default: podman's default storage)
#   --host-ca       trust this machine's extra CAs (/usr/local/share/ca-certificates)
#                   inside the base image and for pip, for builds behind a TLS proxy
# With -s, build and storage stay inside STORAGE_DIR (vfs driver), as the test suite uses
# it (MOODUMP_TEST_IMAGE_BUILD=1 python -m pytest tests/test_deploy.py -k image_build).
set -euo pipefail

tag=localhost/moodump:dev
storage=""
host_ca=""
while [ "$#" -gt 0 ]; do
  case "$1" in
    -t) tag=$2; shift 2 ;;
    -s) storage=$2; shift 2 ;;
    --host-ca) host_ca=1; shift ;;
    *) echo "usage: $0 [-t TAG] [-s STORAGE_DIR] [--host-ca]" >&2; exit 2 ;;
  esac
done

repo=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
opts=()
if [ -n "$storage" ]; then
  mkdir -p "$storage"
  # podman refuses a runroot path longer than 50 characters (a pytest tmp_path is
  # longer): the run state is transient, so it lives in the short $work instead.
  opts=(--root "$storage/root" --runroot "$work/run" --storage-driver vfs)
fi

base=localhost/moodump-base:bookworm
if [ -n "$storage" ] && [ -f "$storage/rootfs.tar" ]; then
  rootfs=$storage/rootfs.tar # reuse: mmdebstrap takes about half a minute
else
  rootfs=${storage:-$work}/rootfs.tar
  hooks=()
  if [ -n "$host_ca" ]; then
    # shellcheck disable=SC2016 # "$1" is expanded by mmdebstrap: the root fs directory
    hooks=(
      --customize-hook='copy-in /usr/local/share/ca-certificates /usr/local/share'
      --customize-hook='chroot "$1" update-ca-certificates'
      --customize-hook='printf "[global]\ncert = /etc/ssl/certs/ca-certificates.crt\n" >"$1/etc/pip.conf"'
    )
  fi
  mmdebstrap --variant=minbase --include=ca-certificates "${hooks[@]}" bookworm "$rootfs"
fi
podman "${opts[@]}" import "$rootfs" "$base" >/dev/null

# The build context: only what the Containerfile copies (git-tracked files).
ctx=$work/ctx
mkdir -p "$ctx"
(cd "$repo" && git ls-files -z -- pyproject.toml setup.py README.md src container | xargs -0 cp --parents -t "$ctx")
buildah "${opts[@]}" bud --isolation chroot --layers=false \
  --build-arg BASE_IMAGE="$base" -f "$ctx/container/Containerfile" -t "$tag" "$ctx"

# Smoke test as OpenShift runs it: an arbitrary UID in group 0.
ctr=$(buildah "${opts[@]}" from "$tag")
trap 'buildah "${opts[@]}" rm "$ctr" >/dev/null; rm -rf "$work"' EXIT
run() { buildah "${opts[@]}" run --isolation chroot --user 1000770000:0 "$ctr" -- "$@"; }
run moodump --version
run python3 -c 'import _mysql_connector, mysql.connector as c; assert c.HAVE_CEXT; print("C extension", c.__version__)'
run mariadbd --version
run bash -c 'test -w "$HOME" && test -w /backups && test -w "$TMPDIR" && echo "writable: HOME /backups TMPDIR as $(id -u):$(id -g)"'
run bash -c 'date +"TZ=$TZ %Z"'
# A real dump of a throwaway source server and a verification by restore into a second
# throwaway server under TMPDIR (the verification volume's mount point).
run python3 -c '
import os
from moodump.db import ConnSettings, connect
from moodump.dump import dump
from moodump.db.localserver import LocalServer
from moodump.verify import verify
with LocalServer() as source:
    db = ConnSettings(host="127.0.0.1", port=source.port, user="root")
    with connect(db) as c:
        c.execute("CREATE DATABASE moodle")
        c.execute("CREATE TABLE moodle.mdl_config (id INT PRIMARY KEY, name VARCHAR(20))")
        c.execute("INSERT INTO moodle.mdl_config VALUES (1, \"release\"), (2, \"version\")")
    result = dump(db, "moodle", "/backups/127.0.0.1-moodle_smoke")
    report = verify(result.path, local=True)
    assert report.passed, report.problems
    print("dump and local verify as uid", os.getuid(), "in", source.base_dir.parent, "passed")
'
rc=0
run /backup.sh -h >/dev/null 2>&1 || rc=$?
[ "$rc" -eq 1 ] || { echo "backup.sh -h exited $rc, expected 1" >&2; exit 1; }
echo "built and checked $tag"
