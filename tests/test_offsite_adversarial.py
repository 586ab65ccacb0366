"""Adversarial off-site cases, end to end against SeaweedFS (S3 with SigV4 checked).

Cases (each a test below; "bug" marks the ones that failed before the fix named in
CHANGELOG.md):

- bug: a copy below an ``S3_PREFIX`` with characters a URL reserves (``%``, ``#``,
  ``?``, TAB; spaces and unicode too): the URL ``moodump list --offsite`` shows,
  ``--latest`` returns and ``RemoteBackupInfo.where`` gives opens that very copy again
  (it was cut at ``#``/``?``, or unquoted into another prefix); the same for an FTPS
  target's path and for a database name that needs escaping;
- bug: an ``s3://bucket`` URL without a path is the top of the bucket, whatever
  ``S3_PREFIX`` says;
- bug: a copy whose manifest is there but a data file is missing (MariaDB plain and
  encrypted, PostgreSQL): the restore fails with exit code 8 before the target is touched (it
  failed half-way, after ``--drop``); ``recheck`` names the file;
- bug: a data file in the bucket cut short or replaced by a longer one: the same, naming
  both sizes (S3's listed sizes were not compared at all), and ``list --offsite`` does
  not count the copy as complete;
- ``--latest`` takes the newest complete and verified copy: never an upload without its
  manifest, however new, nor a sibling prefix's (``moodle2``) or a longer-named
  database's copy; without a verified copy, exit code 5 naming the newest unverified;
- more than 1000 objects (S3 pages listings): listed, rechecked, skipped and pruned whole;
- a copy killed (SIGKILL) half-way: no manifest, listed incomplete, never ``--latest``;
  the next upload skips what was stored and completes it;
- bug: a marker unreadable for the network (TransientError) fails the scan instead of
  counting the copy as an unfinished upload that retention removes;
- bug: an unusable ``S3_PREFIX`` (``moodle//prod``, ``..``) is refused naming it;
- bug: a password written into ``S3_ENDPOINT`` is masked by ``moodump config``;
  no secret in any output of ``config``, ``list --offsite``, ``restore --latest``;
- bug: wrong secret / no scheme / missing bucket / https to an http server: ``list
  --offsite`` and ``restore --latest`` exit with the documented code (3 for refused
  credentials, which ``list`` reported as 7), name the setting and the next step
  (``list --offsite --json`` exits 0 with the target's ``error``: backup.sh picks local
  backups from it while the bucket is unreachable);
- bug: a key without a permission docs/storage.md lists (SeaweedFS identities limited
  to Write, Read+List, Read+Write) gets exit code 3 naming that permission (it was told
  to check S3_USER/S3_PASSWORD; a prune without DeleteObject was exit 7, "check the
  server's log"); with exactly the documented permissions everything works;
- bug: an endpoint that is down: opening a copy spends its retries once (a failed open
  was followed by a look-up that spent them all again, 70 s instead of 35 s);
- bug: the URL of a copy that is not there (a typo, a pruned copy) is exit code 5 "no
  copy", not exit 8 "manifest.json is missing … incomplete";
- bug: a URL of a store moodump does not read (``gs://``, ``az://``, ``https://``) was
  taken for a local folder ("the directory does not exist", exit 5); exit 2 naming it;
- bug: a clock 20 minutes or 2 hours off (libfaketime) is named as the problem instead
  of the access key; 3 minutes off works;
- bug: the bucket going away while a PostgreSQL restore streams a data file: exit code
  7 naming the object, no "it is retried" (a stream is not), ``--resume`` named, and the
  resumed restore is exact.

Left out: a wrong ``S3_REGION`` (SeaweedFS accepts a signature for any region, unlike
AWS); virtual-hosted addressing (needs wildcard DNS for the bucket name; against
127.0.0.1 pyarrow addresses path style anyway); an endpoint that is down through the
CLI (it waits out 35 s of backoff; tests/test_storage_conformance.py's unreachable case
covers it with an injected sleep). Keys that need escaping, sibling prefixes,
zero-byte objects, an interrupted prune and a copy made again in the other form
(encrypted/plain) are in the conformance suite, for every backend.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from dataclasses import asdict
from datetime import timezone
from pathlib import Path
from typing import Any

import pytest
from pyrage import x25519

import rig_s3
from helpers_failures import Source
from moodump.crypto import encrypt_backup_dir, load_identities, parse_recipients
from moodump.db import ConnSettings, connect
from moodump.db.connection import quote_ident
from moodump.dump import dump_postgres
from moodump.errors import (
    ConfigError,
    IntegrityError,
    MoodumpError,
    NotFoundError,
    StorageAuthError,
    StorageError,
)
from moodump.manifest import STATUS_DONE, FileEntry, Manifest, read_done_manifest
from moodump.offsite import RemoteBackupReader, list_backups, prune_remote, recheck, upload
from moodump.offsite.catalog import scan_remote
from moodump.offsite.remote import OffsiteTarget
from moodump.offsite.source import (
    RemoteSource,
    latest,
    locate_backup,
    open_backup,
    split_location,
)
from moodump.restore import RestoreOptions, engine, restore
from moodump.source import as_source
from moodump.storage import FtpUrl, S3Backend, S3Settings, open_backend, parse_ftp_url
from moodump.storage.base import TransientError, quote_url_path
from moodump.storage.s3 import _InputStream
from moodump.storage.s3_settings import s3_settings_from_env
from rig_pg import PgServer

pytestmark = pytest.mark.storage


@pytest.fixture(scope="module")
def s3() -> rig_s3.SeaweedS3:
    try:
        return rig_s3.shared()
    except RuntimeError as exc:
        pytest.fail(f"SeaweedFS did not start: {exc}")


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def make_backup(parent: Path, name: str, *, verified: bool = True) -> Path:
    d = parent / name
    contents = {
        "schema/mdl_user.sql": b"CREATE TABLE `mdl_user` (`id` bigint NOT NULL);\n",
        "data/mdl_user.00000.tsv.gz": os.urandom(50_000),
        "data/mdl_log.00000.tsv.gz": b"",
    }
    files = []
    for rel, data in contents.items():
        (d / rel).parent.mkdir(parents=True, exist_ok=True)
        (d / rel).write_bytes(data)
        files.append(FileEntry(rel, len(data), sha(data), rel.split("/")[0]))
    manifest = Manifest(database="moodle", status=STATUS_DONE, host="mysql", files=files)
    (d / "manifest.json").write_text(manifest.to_json(), encoding="utf-8")
    if verified:
        (d / "verify.json").write_text('{"status": "PASS"}\n', encoding="utf-8")
    return d


def env_for(s3: rig_s3.SeaweedS3, bucket: str, prefix: str = "", **extra: str) -> dict[str, str]:
    return {
        "S3_ENDPOINT": s3.endpoint,
        "S3_USER": rig_s3.ACCESS_KEY,
        "S3_PASSWORD": rig_s3.SECRET_KEY,
        "S3_BUCKET": bucket,
        "S3_PREFIX": prefix,
        **extra,
    }


def no_sleep(_: float) -> None:
    pass


OLD = "mysql-moodle_2026-01-30_01-00-00"
NEW = "mysql-moodle_2026-01-31_01-00-00"


@pytest.mark.parametrize(
    "odd", ["site a", "50%41off", "a#b", "why?", "tab\tx", "caf\u00e9/x", "p+q=r"]
)
def test_urls_of_copies_below_an_odd_prefix_open_that_copy(
    s3: rig_s3.SeaweedS3, tmp_path: Path, odd: str
) -> None:
    bucket = s3.bucket("adv-urls")
    prefix = f"{rig_s3.unique('u')}/{odd}"
    env = env_for(s3, bucket, prefix)
    backend = S3Backend(s3.settings(bucket, prefix=prefix, retries=0))
    local = make_backup(tmp_path, NEW)
    upload(backend, local)
    # a decoy where an unquoted or truncated URL would lead
    decoy = S3Backend(
        s3.settings(bucket, prefix=prefix.split("#")[0].split("?")[0] + "x", retries=0)
    )
    upload(decoy, make_backup(tmp_path / "decoy", NEW))

    (info,) = scan_remote(OffsiteTarget(backend), timezone.utc)
    for url in (info.where, backend.where(NEW)):
        source = open_backup(url, env=env, sleep=no_sleep)
        try:
            assert source.manifest().file("data/mdl_user.00000.tsv.gz").sha256 == sha(
                (local / "data/mdl_user.00000.tsv.gz").read_bytes()
            ), url
        finally:
            source.close()
    root = backend.display.split(" at ")[0]
    url, best = latest(root, "mysql-moodle", timezone.utc, env=env, sleep=no_sleep)
    assert best.name == NEW
    assert split_location(url)[1] == NEW
    source = locate_backup(None, latest_of="mysql/moodle", env=env, sleep=no_sleep)
    try:
        assert source.manifest().database == "moodle"
        assert getattr(source, "where", "") == info.where
    finally:
        source.close()


def test_an_s3_url_without_a_path_is_the_top_of_the_bucket(
    s3: rig_s3.SeaweedS3, tmp_path: Path
) -> None:
    bucket = s3.bucket(rig_s3.unique("adv-top-"))
    top = S3Backend(s3.settings(bucket, retries=0))
    upload(top, make_backup(tmp_path, NEW))
    env = env_for(s3, "other-bucket", "moodle-prod")
    backend = open_backend(f"s3://{bucket}", env=env, sleep=no_sleep)
    assert [b.name for b in list_backups(backend)] == [NEW]
    source = open_backup(f"s3://{bucket}/{NEW}", env=env, sleep=no_sleep)
    try:
        assert source.manifest().status == STATUS_DONE
    finally:
        source.close()


@pytest.mark.parametrize("path", ["backups/a#b", "/srv/50%41off", "why?/x", "tab\tx"])
def test_an_ftp_target_display_parses_back_to_its_path(path: str) -> None:
    shown = FtpUrl("ftps", "backup.example.org", 21, path).display()
    assert parse_ftp_url(shown).path == path
    root, name = split_location(shown + quote_url_path(NEW))
    assert name == NEW and parse_ftp_url(root).path == path


# -- a copy that lost a file: restore from the bucket fails before the target is touched -----


def _marked_target(settings: ConnSettings, name: str) -> None:
    with connect(settings) as c:
        c.execute(f"DROP DATABASE IF EXISTS {quote_ident(name)}")
        c.execute(f"CREATE DATABASE {quote_ident(name)}")
        c.execute(f"CREATE TABLE {quote_ident(name)}.keep_me (id int)")
        c.execute(f"INSERT INTO {quote_ident(name)}.keep_me VALUES (42)")


def _marker(settings: ConnSettings, name: str) -> list[int]:
    with connect(settings) as c:
        rows = c.query(f"SELECT id FROM {quote_ident(name)}.keep_me")
        c.execute(f"DROP DATABASE IF EXISTS {quote_ident(name)}")
    return [int(r[0] or 0) for r in rows]


@pytest.mark.parametrize("encrypted", [False, True], ids=["plain", "encrypted"])
def test_a_copy_missing_a_data_file_fails_the_restore_before_the_target_is_touched(
    s3: rig_s3.SeaweedS3,
    small: Source,
    root_settings: ConnSettings,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    encrypted: bool,
) -> None:
    # Data files of a real site are too big to be prefetched (over 1 MiB, 64 MiB in
    # all): without the listing up front a missing one was found only when its turn
    # came, after the target had been dropped. Prefetch no data to get that here.
    monkeypatch.setattr(engine, "PREFETCH_DATA_BYTES", 0)
    bucket = s3.bucket("adv-restore")
    prefix = rig_s3.unique("r")
    backend = S3Backend(s3.settings(bucket, prefix=prefix, retries=0))
    local, identities, suffix = small.backup, [], ""
    if encrypted:
        native = x25519.Identity.generate()
        key = tmp_path / "key.txt"
        key.write_text(f"{native}\n")
        local = tmp_path / "enc"
        encrypt_backup_dir(small.backup, local, parse_recipients(str(native.to_public())))
        identities, suffix = load_identities([key]), ".age"
    upload(backend, local, NEW)
    data = [
        f.name
        for f in sorted(read_done_manifest(small.backup).files, key=lambda f: f.bytes)
        if f.kind == "data" and f.bytes
    ]
    assert backend.delete(f"{NEW}/{data[-1]}{suffix}")
    with pytest.raises(StorageError, match="is missing"):
        recheck(backend, NEW)

    env = env_for(s3, bucket, prefix)
    target = "adv_missing_file"
    _marked_target(root_settings, target)
    source = open_backup(backend.where(NEW), env=env, identities=identities, sleep=no_sleep)
    try:
        with pytest.raises(IntegrityError, match=f"{re.escape(data[-1])}.* is missing") as info:
            restore(source, root_settings, target, RestoreOptions(drop=True))
    finally:
        source.close()
    assert info.value.exit_code == 8 and "nothing was changed" in str(info.value)
    assert _marker(root_settings, target) == [42]


def test_a_short_or_grown_data_file_in_the_bucket_fails_before_the_target_is_touched(
    s3: rig_s3.SeaweedS3,
    small: Source,
    root_settings: ConnSettings,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A data file cut short (a lifecycle or a copy tool gone wrong) and one replaced by
    a longer one: their sizes are checked (the listing's, then a HEAD where it differs)
    before a restore, ``list --offsite`` or ``--latest`` trusts the copy. The short one used to be found
    only when its turn came, after ``--drop`` had emptied the target."""
    monkeypatch.setattr(engine, "PREFETCH_DATA_BYTES", 0)
    bucket = s3.bucket("adv-restore")
    prefix = rig_s3.unique("short")
    backend = S3Backend(s3.settings(bucket, prefix=prefix, retries=0))
    upload(backend, small.backup, NEW)
    data = [
        f
        for f in sorted(read_done_manifest(small.backup).files, key=lambda f: f.bytes)
        if f.kind == "data" and f.bytes > 1
    ]
    short, grown = data[-1], data[0]
    body = (small.backup / short.name).read_bytes()
    backend.put_bytes(f"{NEW}/{short.name}", body[: len(body) // 2])
    backend.put_bytes(f"{NEW}/{grown.name}", (small.backup / grown.name).read_bytes() + b"\0")
    env = env_for(s3, bucket, prefix)
    target = "adv_short_file"
    _marked_target(root_settings, target)
    source = open_backup(backend.where(NEW), env=env, sleep=no_sleep)
    try:
        with pytest.raises(IntegrityError) as info:
            restore(source, root_settings, target, RestoreOptions(drop=True))
    finally:
        source.close()
    message = str(info.value)
    assert info.value.exit_code == 8 and "nothing was changed" in message, message
    assert f"{short.name} has {len(body) // 2} bytes, expected {short.bytes}" in message
    assert f"{grown.name} has {grown.bytes + 1} bytes, expected {grown.bytes}" in message
    assert _marker(root_settings, target) == [42]
    # nor does `list --offsite` (nor --latest, nor retention) take it for a good copy
    (info_,) = scan_remote(OffsiteTarget(backend), timezone.utc)
    assert not info_.complete and short.name in (info_.error or ""), info_


def test_an_unreachable_endpoint_is_retried_once_per_file_not_twice(tmp_path: Path) -> None:
    """An endpoint that is down (a closed port): opening a copy spends the retries once
    and names the server. A failed read used to be followed by a look-up of the object
    (was it missing?) that spent every retry again: twice the waiting (70 s by default)
    before the error."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    waits: list[float] = []
    settings = S3Settings(
        bucket="adv-down", endpoint=f"http://127.0.0.1:{port}", access_key="AK",
        secret_key="unreachable-secret", sdk_attempts=1,
    )  # fmt: skip
    backend = S3Backend(settings, sleep=waits.append)
    with pytest.raises(TransientError) as info:
        as_source(RemoteSource(backend, NEW))  # what open_backup does with s3://adv-down/NEW
    assert f"127.0.0.1:{port}" in info.value.message and "(after 4 attempts)" in str(info.value)
    assert waits == [5.0, 10.0, 20.0], waits


@pytest.mark.parametrize("scheme", ["gs", "az", "abfs", "https"])
def test_a_url_of_a_store_moodump_does_not_read_is_refused_not_taken_for_a_folder(
    scheme: str,
) -> None:
    """``moodump restore gs://bucket/NAME`` (or ``--latest`` below it) looked for a local
    folder of that name: "no backup … the directory does not exist", exit 5, as if the
    copy were gone. It is a configuration error naming the schemes moodump reads."""
    url = f"{scheme}://bucket/{NEW}"
    with pytest.raises(ConfigError, match=f"{scheme}://") as info:
        open_backup(url, env={})
    assert "s3://" in (info.value.hint or "") and info.value.exit_code == 2
    with pytest.raises(ConfigError, match=f"{scheme}://"):
        locate_backup(f"{scheme}://bucket", latest_of="mysql/moodle", env={})


@pytest.mark.parametrize(
    ("url", "env", "code"),
    [
        (f"ftps://[::1/{NEW}", {}, 2),  # urllib: "Invalid IPv6 URL"
        (f"s3://[bucket/{NEW}", {}, 2),
        (f"ftps://127.0.0.1:1/x%0D%0ADELE%20y/{NEW}", {}, 2),  # ftplib: "illegal newline"
        (f"ftps://127.0.0.1:1/x/{NEW}", {"MOODUMP_FTP_RETRIES": "0"}, 7),  # int("")
    ],
)
def test_urls_moodump_cannot_use_are_refused_without_a_traceback(
    url: str, env: dict[str, str], code: int
) -> None:
    """``moodump restore``/``verify`` of these URLs ended in a ValueError traceback (exit
    1); a retry count of 0 (MOODUMP_FTP_RETRIES=0, valid in the configuration) did for
    every FTPS URL."""
    try:
        source = open_backup(url, env=env, sleep=lambda _: None)
        try:
            source.done_manifest()
        finally:
            source.close()
    except MoodumpError as exc:
        assert exc.exit_code == code, exc  # refused (2), or no server there (7)
    else:
        pytest.fail("no server listens there")
    if code == 2:  # --latest below such a URL
        with pytest.raises(ConfigError):
            locate_backup(url.rsplit("/", 1)[0], latest_of="mysql/moodle", env=env)


def test_a_copy_that_is_not_there_is_not_found_rather_than_damaged(
    s3: rig_s3.SeaweedS3, tmp_path: Path
) -> None:
    """``moodump restore``/``verify`` of a copy's URL with a typo in the name (or a copy
    retention removed): "manifest.json is missing from the off-site copy … incomplete",
    exit code 8, as if a backup were damaged. Nothing is there: exit code 5, naming the
    name and where the copies are listed. A copy that lost only its marker is still
    incomplete (exit 8)."""
    bucket = s3.bucket("adv-restore")
    prefix = rig_s3.unique("typo")
    backend = S3Backend(s3.settings(bucket, prefix=prefix, retries=0))
    upload(backend, make_backup(tmp_path, NEW))
    env = env_for(s3, bucket, prefix)
    with pytest.raises(NotFoundError) as info:
        open_backup(backend.where(OLD), env=env, sleep=no_sleep).done_manifest()
    assert info.value.exit_code == 5 and OLD in info.value.message, info.value
    assert "list --offsite" in (info.value.hint or "")
    assert backend.delete(f"{NEW}/manifest.json")
    with pytest.raises(IntegrityError, match=r"manifest\.json is missing"):
        open_backup(backend.where(NEW), env=env, sleep=no_sleep).done_manifest()


# -- secrets -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "endpoint", ["http://AK:EndpointSecret9@127.0.0.1:9000", "minio://AK:EndpointSecret9@minio"]
)
def test_a_password_in_s3_endpoint_is_refused_and_never_shown(
    tmp_path: Path, endpoint: str
) -> None:
    env = {
        "BACKUP_DIR": str(tmp_path),
        "S3_ENDPOINT": endpoint,
        "S3_BUCKET": "b",
        "S3_PASSWORD": "S3cr3t+/pw",
        "FTP_URL": "ftps://bob:FtpUrlSecret9@ftp.example.org/x/",
        "FTP_PASSWORD": "FtpSecret9",
    }
    no_ftp = {k: v for k, v in env.items() if not k.startswith("FTP_")}  # no FTP retries
    for args, values in (
        (["config"], env),
        (["config", "--json"], env),
        (["list", "--offsite"], no_ftp),
    ):
        res = subprocess.run(
            [sys.executable, "-m", "moodump", *args],
            env={**os.environ, **values},
            capture_output=True,
            text=True,
            timeout=120,
        )
        out = res.stdout + res.stderr
        for secret in ("EndpointSecret9", "S3cr3t+/pw", "FtpUrlSecret9", "FtpSecret9"):
            assert secret not in out, (args, out)
    with pytest.raises(ConfigError, match="S3_ENDPOINT") as info:
        s3_settings_from_env(env)
    assert "EndpointSecret9" not in str(info.value)


# -- --latest and listings ----------------------------------------------------------------


def test_latest_takes_the_newest_complete_verified_copy_of_its_own_prefix(
    s3: rig_s3.SeaweedS3, tmp_path: Path
) -> None:
    bucket = s3.bucket("adv-latest")
    prefix = rig_s3.unique("moodle")
    backend = S3Backend(s3.settings(bucket, prefix=prefix, retries=0))
    sibling = S3Backend(s3.settings(bucket, prefix=prefix + "2", retries=0))
    upload(backend, make_backup(tmp_path / "a", OLD))
    newest_name = "mysql-moodle_2026-02-02_01-00-00"
    # the sibling prefix holds a newer verified copy of the same database
    upload(sibling, make_backup(tmp_path / "s", newest_name))
    # a newer upload that never finished: data and verify.json, no manifest
    partial = make_backup(tmp_path / "p", "mysql-moodle_2026-02-01_01-00-00")
    for rel in ("data/mdl_user.00000.tsv.gz", "verify.json"):
        backend.put_file(f"{partial.name}/{rel}", partial / rel)
    # a newer complete copy that was never verified
    upload(backend, make_backup(tmp_path / "u", NEW, verified=False))
    # a database whose name extends this one's
    upload(backend, make_backup(tmp_path / "x", "mysql-moodle2_2026-02-03_01-00-00"))

    env = env_for(s3, bucket, prefix)
    root = f"s3://{bucket}/{prefix}"
    url, best = latest(root, "mysql-moodle", timezone.utc, env=env, sleep=no_sleep)
    assert (best.name, url) == (OLD, f"{root}/{OLD}")
    infos = {i.name: i for i in scan_remote(OffsiteTarget(backend), timezone.utc)}
    assert not infos[partial.name].complete and infos[NEW].complete
    assert not infos[NEW].verified and newest_name not in infos

    backend.delete(f"{OLD}/verify.json")
    with pytest.raises(NotFoundError, match="no verified copy of mysql-moodle") as info:
        latest(root, "mysql-moodle", timezone.utc, env=env, sleep=no_sleep)
    assert NEW in str(info.value)  # the hint names the newest complete, unverified copy
    assert info.value.exit_code == 5


def test_listing_and_pruning_more_than_one_page_of_objects(
    s3: rig_s3.SeaweedS3, tmp_path: Path
) -> None:
    """S3 lists 1000 keys a page: a copy of 1105 files is listed, rechecked and pruned
    whole, and its neighbour is left alone."""
    bucket = s3.bucket("adv-pages")
    backend = S3Backend(s3.settings(bucket, prefix=rig_s3.unique("pg"), retries=0))
    local = tmp_path / NEW
    files = []
    for i in range(1105):
        rel = f"data/t{i:05d}.00000.tsv.gz"
        data = f"{i}\n".encode()
        (local / rel).parent.mkdir(parents=True, exist_ok=True)
        (local / rel).write_bytes(data)
        files.append(FileEntry(rel, len(data), sha(data), "data"))
    manifest = Manifest(database="moodle", status=STATUS_DONE, host="mysql", files=files)
    (local / "manifest.json").write_text(manifest.to_json(), encoding="utf-8")
    upload(backend, local)
    upload(backend, make_backup(tmp_path / "old", OLD))
    assert len(backend.list(NEW)) == 1106
    assert recheck(backend, NEW).files == 1105
    again = upload(backend, local)
    assert again.skipped and again.skipped_files == 1106
    assert prune_remote(backend, [NEW]) == [NEW]
    assert backend.list(NEW) == []
    assert [(b.name, b.complete) for b in list_backups(backend)] == [(OLD, True)]


# -- wrong settings: clear errors, the documented exit codes, no secret ---------------------


def _cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "moodump", *args],
        env={**{k: v for k, v in os.environ.items() if not k.startswith(("S3_", "FTP_"))}, **env},
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.mark.parametrize(
    ("case", "code", "words"),
    [
        ("wrong secret", 3, ["S3_USER", "S3_PASSWORD"]),
        ("no scheme", 2, ["S3_ENDPOINT", "http://"]),
        ("no such bucket", 7, ["S3_BUCKET", "does not exist"]),
        # an endpoint that is down: test_storage_conformance's unreachable-server case
        # (the CLI would wait out 35 s of backoff)
        ("https to an http server", 7, ["TLS", "http:// for a server without TLS"]),
    ],
)
def test_wrong_s3_settings_fail_list_and_restore_clearly(
    s3: rig_s3.SeaweedS3, tmp_path: Path, case: str, code: int, words: list[str]
) -> None:
    secret = "WrongSecret77+/x"
    env = env_for(s3, s3.bucket("adv-errors"), BACKUP_DIR=str(tmp_path))
    if case == "wrong secret":
        env["S3_PASSWORD"] = secret
    elif case == "no scheme":
        env["S3_ENDPOINT"] = s3.endpoint.split("://", 1)[1]
    elif case == "no such bucket":
        env["S3_BUCKET"] = rig_s3.unique("nobucket")
    else:
        env["S3_ENDPOINT"] = s3.endpoint.replace("http://", "https://")
    runs = [
        ["list", "--offsite"],
        ["restore", "--latest", "mysql/moodle", "-H", "127.0.0.1", "-u", "root", "-d", "x"],
    ]
    if code != 2:  # a target that is configured but fails: exit 0 for backup.sh, error in it
        res = _cli(env, "list", "--offsite", "--json")
        assert res.returncode == 0 and json.loads(res.stdout)["offsite"][0]["error"], res.stderr
    for args in runs:
        res = _cli(env, *args)
        out = res.stdout + res.stderr
        assert res.returncode == code, (args, res.returncode, out)
        assert all(w in res.stderr for w in words), (args, res.stderr)
        assert "next step" in res.stderr, (args, res.stderr)
        for hidden in (secret, rig_s3.SECRET_KEY):
            assert hidden not in out, (args, out)


def test_a_key_without_a_documented_permission_is_told_which_and_the_documented_ones_do(
    s3: rig_s3.SeaweedS3, tmp_path: Path
) -> None:
    """docs/storage.md's table of S3 permissions, against SeaweedFS identities limited to
    some actions: a key missing one fails with exit code 3 naming that permission (it
    was told to check S3_USER and S3_PASSWORD, which were right; a key that could not
    delete failed a prune with exit code 7 and "check the server's log"); a key with
    exactly the documented ones (on that bucket alone) uploads, lists, reads and prunes."""
    bucket = s3.bucket(rig_s3.PERMS_BUCKET)
    prefix = rig_s3.unique("perms")
    local = make_backup(tmp_path, NEW)

    def keyed(kind: str) -> S3Backend:
        access, secret = rig_s3.limited_key(kind)
        return S3Backend(
            s3.settings(bucket, prefix=prefix, access_key=access, secret_key=secret, retries=0)
        )

    def env(kind: str) -> dict[str, str]:
        access, secret = rig_s3.limited_key(kind)
        return env_for(s3, bucket, prefix, S3_USER=access, S3_PASSWORD=secret)

    documented = keyed("documented")
    upload(documented, make_backup(tmp_path, OLD))
    upload(documented, local)
    assert recheck(documented, NEW).files == 3
    assert [i.name for i in scan_remote(OffsiteTarget(documented), timezone.utc)] == [OLD, NEW]
    source = open_backup(documented.where(NEW), env=env("documented"), sleep=no_sleep)
    try:
        manifest = source.done_manifest()
        source.check_listed(manifest.files)
        assert all(source.open_checked(f).read() for f in manifest.files if f.bytes)
    finally:
        source.close()
    assert prune_remote(documented, [OLD]) == [OLD]

    def refused(call: Any, permission: str) -> None:
        with pytest.raises(StorageAuthError) as info:
            call()
        text = f"{info.value.message} {info.value.hint}"
        assert permission in text and "S3_PASSWORD" not in text, text
        assert info.value.exit_code == 3, text

    refused(lambda: upload(keyed("write-only"), local, OLD), "s3:ListBucket")
    refused(lambda: upload(keyed("no-list"), local, OLD), "s3:ListBucket")
    refused(lambda: upload(keyed("read-list"), local, OLD), "s3:PutObject")
    refused(lambda: prune_remote(keyed("read-list"), [NEW]), "s3:DeleteObject")
    refused(lambda: keyed("read-list").delete_prefix(NEW), "s3:DeleteObject")
    assert recheck(documented, NEW).files == 3  # nothing was removed

    shown = _cli({**env("documented"), "BACKUP_DIR": str(tmp_path)}, "list", "--offsite")
    assert shown.returncode == 0 and NEW in shown.stdout, shown.stderr
    denied = _cli({**env("write-only"), "BACKUP_DIR": str(tmp_path)}, "list", "--offsite")
    assert denied.returncode == 3 and "s3:ListBucket" in denied.stderr, denied.stderr
    assert "Traceback" not in denied.stderr and "next step" in denied.stderr, denied.stderr


_FAKETIME = next(iter(Path("/usr/lib").glob("*/faketime/libfaketime.so.1")), None)
_SKEWED = """
import sys
from moodump.storage import S3Settings, S3Backend
from moodump.errors import MoodumpError
b = S3Backend(S3Settings(**eval(sys.argv[1])), sleep=lambda s: None)
try:
    b.put_bytes("skew/x", b"1")
    print("OK", b.read_bytes("skew/x").decode())
except MoodumpError as exc:
    print(type(exc).__name__, exc.exit_code, str(exc))
"""


@pytest.mark.skipif(
    _FAKETIME is None, reason="libfaketime is not installed (apt-get install faketime)"
)
@pytest.mark.parametrize(
    ("offset", "expected"), [("-3m", "OK 1"), ("+20m", "ahead of"), ("-2h", "behind")]
)
def test_a_skewed_clock_is_named_as_the_problem(
    s3: rig_s3.SeaweedS3, offset: str, expected: str
) -> None:
    """SeaweedFS, like AWS, refuses a signature more than 15 minutes off its clock; a HEAD
    refused for that is a bare 403, which used to read as a wrong access key."""
    settings = asdict(s3.settings(s3.bucket("adv-skew"), retries=0))
    res = subprocess.run(
        [sys.executable, "-c", _SKEWED, repr(settings)],
        env={**os.environ, "FAKETIME": offset, "LD_PRELOAD": str(_FAKETIME)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert expected in res.stdout, res.stdout + res.stderr
    if expected != "OK 1":
        assert "StorageAuthError 3" in res.stdout and "fix this machine's time" in res.stdout
        assert rig_s3.SECRET_KEY not in res.stdout + res.stderr


@pytest.mark.parametrize("db", ["moo dle", "a#b", "why?", "50%41off", "caf\u00e9"])
def test_a_database_name_that_needs_escaping_round_trips_through_its_url(
    s3: rig_s3.SeaweedS3, tmp_path: Path, db: str
) -> None:
    bucket = s3.bucket("adv-dbnames")
    prefix = rig_s3.unique("d")
    env = env_for(s3, bucket, prefix)
    backend = S3Backend(s3.settings(bucket, prefix=prefix, retries=0))
    name = f"mysql-{db}_2026-01-31_01-00-00"
    upload(backend, make_backup(tmp_path, name))
    url, best = latest(f"s3://{bucket}/{prefix}", f"mysql-{db}", timezone.utc, env=env)
    assert best.name == name and url == backend.where(name)
    assert split_location(url)[1] == name
    source = open_backup(url, env=env, sleep=no_sleep)
    try:
        assert source.manifest().status == STATUS_DONE
    finally:
        source.close()


def test_a_marker_unreadable_for_the_network_fails_the_scan_and_prunes_nothing(
    s3: rig_s3.SeaweedS3, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A copy whose manifest could not be read because the network failed is not an
    unfinished upload: counted as one, retention removed it (older than the newest
    good copy); the scan now fails and the prune is skipped."""
    bucket = s3.bucket("adv-prune")
    backend = S3Backend(s3.settings(bucket, prefix=rig_s3.unique("pr"), retries=0))
    for name in (OLD, NEW):
        upload(backend, make_backup(tmp_path / name, name))
    real = backend.read_bytes

    def flaky(key: str) -> bytes:
        if key == f"{OLD}/manifest.json":
            raise TransientError("connection reset while reading", hint="it is retried")
        return real(key)

    monkeypatch.setattr(backend, "read_bytes", flaky)
    target = OffsiteTarget(backend)
    with pytest.raises(TransientError):
        scan_remote(target, timezone.utc)
    # a damaged manifest is the copy's own fault: it counts as incomplete, as before
    monkeypatch.undo()
    backend.put_bytes(f"{OLD}/manifest.json", b"{damaged")
    infos = {i.name: i for i in scan_remote(target, timezone.utc)}
    assert not infos[OLD].complete and infos[OLD].error and infos[NEW].complete


@pytest.mark.parametrize(
    ("prefix", "used"),
    [("/moodle/prod/", "moodle/prod"), ("moodle//prod", None), ("a/../b", None), ("./x", None)],
)
def test_s3_prefix_slashes_and_dots(s3: rig_s3.SeaweedS3, prefix: str, used: str | None) -> None:
    settings = s3.settings("adv-prefix", prefix=prefix)
    if used is not None:
        assert S3Backend(settings).where("N") == f"s3://adv-prefix/{used}/N"
        return
    with pytest.raises(ConfigError, match="S3_PREFIX") as info:
        S3Backend(settings)
    assert info.value.exit_code == 2 and "moodle/prod" in str(info.value)


_UPLOAD = """
import sys
from moodump.storage import S3Settings, S3Backend
from moodump.offsite import upload
upload(S3Backend(S3Settings(**eval(sys.argv[1]))), sys.argv[2])
"""


def test_a_killed_copy_never_looks_complete_and_the_next_run_finishes_it(
    s3: rig_s3.SeaweedS3, tmp_path: Path
) -> None:
    bucket = s3.bucket("adv-kill")
    settings = s3.settings(bucket, prefix=rig_s3.unique("k"), retries=0)
    backend = S3Backend(settings)
    upload(backend, make_backup(tmp_path / "old", OLD))
    local = tmp_path / NEW
    files = []
    for i in range(400):
        rel = f"data/t{i:04d}.00000.tsv.gz"
        data = os.urandom(20_000)
        (local / rel).parent.mkdir(parents=True, exist_ok=True)
        (local / rel).write_bytes(data)
        files.append(FileEntry(rel, len(data), sha(data), "data"))
    manifest = Manifest(database="moodle", status=STATUS_DONE, host="mysql", files=files)
    (local / "manifest.json").write_text(manifest.to_json(), encoding="utf-8")
    (local / "verify.json").write_text('{"status": "PASS"}\n', encoding="utf-8")

    proc = subprocess.Popen([sys.executable, "-c", _UPLOAD, repr(asdict(settings)), str(local)])
    try:
        deadline = time.monotonic() + 60
        while len(backend.list(NEW)) < 20:
            assert proc.poll() is None, "the upload finished before it could be killed"
            assert time.monotonic() < deadline
            time.sleep(0.05)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)
    assert backend.stat(f"{NEW}/manifest.json") is None
    assert [(b.name, b.complete) for b in list_backups(backend)] == [(OLD, True), (NEW, False)]
    env = env_for(s3, bucket, settings.prefix)
    _, best = latest(f"s3://{bucket}/{settings.prefix}", "mysql-moodle", timezone.utc, env=env)
    assert best.name == OLD
    with pytest.raises(StorageError, match=r"has no manifest\.json"):
        RemoteBackupReader(backend, NEW).manifest()

    resumed = upload(backend, local)
    assert resumed.skipped_files >= 20 - 8  # objects that were complete are not sent again
    assert recheck(backend, NEW).files == 400
    _, best = latest(f"s3://{bucket}/{settings.prefix}", "mysql-moodle", timezone.utc, env=env)
    assert best.name == NEW


def _pg_backup(
    s3: rig_s3.SeaweedS3, pg: PgServer, tmp_path: Path, name: str, rows: int, small: int
) -> tuple[str, str, ConnSettings, Path, str, str]:
    """A PostgreSQL database of two tables (``a``: ``rows`` keyed rows, ``b``: ``small``
    rows) dumped to ``tmp_path/pgbackup``; returns its name, a fresh target name, the settings, the
    backup, and the bucket and a new prefix ``name-...`` for its copy."""
    db = f"adv_src_{rig_s3.unique('')[-6:]}"
    target = f"adv_tgt_{rig_s3.unique('')[-6:]}"
    pg.createdb(db)
    pg.psql(db, "CREATE TABLE a (id int PRIMARY KEY, v text); "
            f"INSERT INTO a SELECT g, md5(g::text) FROM generate_series(1, {rows}) g; "
            f"CREATE TABLE b (x int); INSERT INTO b SELECT generate_series(1, {small})")  # fmt: skip
    settings = ConnSettings(host="127.0.0.1", port=pg.port, user="postgres", password="")
    out = tmp_path / "pgbackup"
    dump_postgres(settings, db, out)
    return db, target, settings, out, s3.bucket("adv-pg"), rig_s3.unique(name)


def test_a_postgresql_copy_missing_a_data_file_fails_before_the_target_is_touched(
    s3: rig_s3.SeaweedS3, pg: PgServer, tmp_path: Path
) -> None:
    _db, target, settings, out, bucket, prefix = _pg_backup(s3, pg, tmp_path, "pg", 2000, 1)
    backend = S3Backend(s3.settings(bucket, prefix=prefix, retries=0))
    upload(backend, out, NEW)
    data = [f.name for f in read_done_manifest(out).files if f.kind == "data" and f.bytes]
    assert backend.delete(f"{NEW}/{data[-1]}")
    pg.createdb(target)
    pg.psql(target, "CREATE TABLE keep_me (id int); INSERT INTO keep_me VALUES (42)")
    source = open_backup(backend.where(NEW), env=env_for(s3, bucket, prefix), sleep=no_sleep)
    try:
        with pytest.raises(IntegrityError, match=f"{re.escape(data[-1])} is missing") as info:
            restore(source, settings, target, RestoreOptions(drop=True))
    finally:
        source.close()
    assert info.value.exit_code == 8
    assert pg.psql(target, "SELECT id FROM keep_me").split()[2] == "42"


def test_the_bucket_dying_mid_restore_is_named_and_the_restore_resumes(
    s3: rig_s3.SeaweedS3, pg: PgServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The S3 server goes away while a PostgreSQL restore streams its data (a network
    error on a read, as pyarrow raises it): exit code 7 naming the object, no claim that
    it "is retried" (a stream is not), and the next step (--resume), which then
    finishes the restore exactly."""
    monkeypatch.setattr(engine, "PREFETCH_DATA_BYTES", 0)
    db, target, settings, out, bucket, prefix = _pg_backup(s3, pg, tmp_path, "dies", 3000, 500)
    upload(S3Backend(s3.settings(bucket, prefix=prefix, retries=0)), out, NEW)
    env = env_for(s3, bucket, prefix)
    real = S3Backend._open_read
    opened: list[str] = []

    class Dead:  # a pyarrow input stream whose server went away
        def read(self, size: int = -1) -> bytes:
            raise OSError(
                "AWS Error NETWORK_CONNECTION during GetObject operation: curlCode: 7, "
                "Couldn't connect to server"
            )

        def close(self) -> None:
            pass

    def dies_on_the_second_data_file(self: S3Backend, key: str) -> Any:
        stream = real(self, key)
        if "/data/" in key:
            opened.append(key)
            if len(opened) == 2:
                stream.close()
                return io.BufferedReader(_InputStream(Dead(), self, key))
        return stream

    monkeypatch.setattr(S3Backend, "_open_read", dies_on_the_second_data_file)
    source = open_backup(f"s3://{bucket}/{prefix}/{NEW}", env=env, sleep=no_sleep)
    try:
        with pytest.raises(StorageError) as info:
            restore(source, settings, target, RestoreOptions(threads=1))
    finally:
        source.close()
    err = info.value
    assert err.exit_code == 7 and opened[1].split("/", 1)[1] in err.message, err
    assert "retried" not in (err.hint or "") and "--resume" in (err.hint or ""), err.hint
    monkeypatch.undo()
    source = open_backup(f"s3://{bucket}/{prefix}/{NEW}", env=env, sleep=no_sleep)
    try:
        restore(source, settings, target, RestoreOptions(resume=True))
    finally:
        source.close()
    query = "SELECT count(*), sum(length(v)) FROM a UNION ALL SELECT count(*), sum(x) FROM b"
    assert pg.psql(target, query) == pg.psql(db, query)
