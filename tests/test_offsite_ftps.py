"""Off-site copies against a real FTPS server (pyftpdlib, TLS, on 127.0.0.1)."""

from __future__ import annotations

import ftplib
import hashlib
import logging
import os
import re
import shutil
import socket
import ssl
import subprocess
import time
from collections.abc import Callable, Iterator
from datetime import timezone
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from pyftpdlib.handlers import TLS_FTPHandler

from moodump.errors import (
    ConfigError,
    IntegrityError,
    NotFoundError,
    StorageAuthError,
    StorageError,
)
from moodump.manifest import STATUS_DONE, FileEntry, Manifest, read_manifest
from moodump.offsite import (
    FtpsSettings,
    FtpsTarget,
    RemoteBackup,
    parse_ftp_url,
    remote_names_to_prune,
)
from moodump.offsite.source import RemoteSource, latest, open_backup
from moodump.storage import TEMP_PREFIX
from rig_ftps import PASSWORD, USER, FtpServers, Server, free_ports, make_certfile

NAME = "mysql-moodle_2026-01-31_01-00-00"


# -- the server -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def certfile(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A self-signed certificate (and key, same file) for 127.0.0.1."""
    return make_certfile(tmp_path_factory.mktemp("tls") / "server.pem")


ServerFactory = Callable[..., Server]


@pytest.fixture
def ftp_server(certfile: Path, tmp_path: Path) -> Iterator[ServerFactory]:
    """Start FTP(S) servers on 127.0.0.1; ``tls=False`` gives a plain-FTP server."""
    servers = FtpServers(certfile, tmp_path / "ftproot")
    try:
        yield servers.start
    finally:
        servers.stop()


class Sleeps:
    def __init__(self, on_sleep: Callable[[], None] | None = None) -> None:
        self.calls: list[float] = []
        self.on_sleep = on_sleep

    def __call__(self, seconds: float) -> None:
        self.calls.append(seconds)
        if self.on_sleep:
            self.on_sleep()


def _target(server: Server, certfile: Path, sleeps: Sleeps | None = None, **kw: Any) -> FtpsTarget:
    settings: dict[str, Any] = {
        "url": server.url(),
        "user": USER,
        "password": PASSWORD,
        "ca_file": str(certfile),
        "timeout_s": 10,
        "retries": 2,
        "backoff_s": 2.0,
        **kw,
    }
    return FtpsTarget(FtpsSettings(**settings), sleep=sleeps or Sleeps())


# -- a backup directory -------------------------------------------------------------------


def make_backup(parent: Path, name: str = NAME, status: str = STATUS_DONE) -> Path:
    """A backup directory whose manifest lists every data/schema file with its sha256."""
    d = parent / name
    (d / "schema").mkdir(parents=True)
    contents = {
        "schema/mdl_user.sql": b"CREATE TABLE `mdl_user` (`id` bigint NOT NULL);\n",
        "mdl_user.00000.tsv.gz": os.urandom(300_000),
        "mdl_log.00000.tsv.gz": os.urandom(70_000),
        "mdl_log.00001.tsv.gz": b"",
    }
    files = []
    for rel, data in contents.items():
        (d / rel).write_bytes(data)
        kind = "schema" if rel.startswith("schema/") else "data"
        files.append(FileEntry(rel, len(data), hashlib.sha256(data).hexdigest(), kind))
    manifest = Manifest(database="moodle", status=status, host="mysql", files=files)
    (d / "manifest.json").write_text(manifest.to_json(), encoding="utf-8")
    (d / "verify.json").write_text('{"status": "PASS"}\n', encoding="utf-8")
    return d


def _final_name(remote: str) -> str:
    """The name a STOR is for: uploads go to a temporary name that is then renamed."""
    return re.sub(rf"^{re.escape(TEMP_PREFIX)}[0-9a-f]+-", "", os.path.basename(remote))


def tree(root: Path) -> dict[str, bytes]:
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


# -- tests ------------------------------------------------------------------------------


@pytest.mark.storage
def test_upload_publishes_a_checked_copy(
    ftp_server: ServerFactory, certfile: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    server = ftp_server()
    local = make_backup(tmp_path / "local")
    target = _target(server, certfile)
    with caplog.at_level(logging.DEBUG):
        result = target.upload(local)
        target.recheck(NAME, local)
        from_remote = target.recheck(NAME)  # against the remote manifest.json
    remote_dir = server.root / "offsite" / "moodle"
    assert tree(remote_dir / NAME) == tree(local)
    assert not (remote_dir / f"{NAME}.partial").exists()
    assert (result.files, result.attempts, result.skipped) == (6, 1, False)
    assert result.bytes == sum(len(b) for b in tree(local).values())
    assert result.check_method == "download"  # pyftpdlib has no HASH/XSHA256
    assert result.remote_path == f"offsite/moodle/{NAME}"
    assert from_remote.files == 4
    assert target.list_backups() == [RemoteBackup(NAME, True)]
    assert PASSWORD not in caplog.text
    assert "copied and re-checked" in caplog.text


@pytest.mark.storage
@pytest.mark.parametrize("chmod", [True, False], ids=["site-chmod", "no-site-chmod"])
def test_uploads_are_private_where_the_server_offers_site_chmod(
    ftp_server: ServerFactory, certfile: Path, tmp_path: Path, chmod: bool
) -> None:
    """SITE CHMOD 640 (750 for directories) after each upload; a server that refuses it
    keeps its own modes and the upload still succeeds."""
    old = os.umask(0o022)  # the server's own default: world-readable
    try:
        server = ftp_server(perm="elradfmwMT" if chmod else "elradfmwT")
        local = make_backup(tmp_path / "local")
        _target(server, certfile).upload(local)
    finally:
        os.umask(old)
    remote = server.root / "offsite" / "moodle" / NAME
    assert tree(remote) == tree(local)
    for path in [remote, *remote.rglob("*")]:
        mode = path.stat().st_mode & 0o777
        if chmod:
            assert mode == (0o750 if path.is_dir() else 0o640), path
        else:
            assert mode & 0o004, path  # unchanged: what the server's umask gave


@pytest.mark.storage
def test_upload_again_skips_a_matching_copy_and_replaces_a_damaged_one(
    ftp_server: ServerFactory, certfile: Path, tmp_path: Path
) -> None:
    server = ftp_server()
    local = make_backup(tmp_path / "local")
    target = _target(server, certfile)
    target.upload(local)
    assert target.upload(local).skipped
    remote_file = server.root / "offsite/moodle" / NAME / "mdl_log.00000.tsv.gz"
    remote_file.write_bytes(b"\0" * remote_file.stat().st_size)
    again = target.upload(local)
    assert not again.skipped
    assert tree(server.root / "offsite/moodle" / NAME) == tree(local)


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda p: p.write_bytes(b"X" + p.read_bytes()[1:]), "different sha256"),
        (lambda p: p.write_bytes(p.read_bytes()[:-10]), "bytes, expected"),
        (lambda p: p.unlink(), "is missing"),
    ],
)
@pytest.mark.storage
def test_recheck_finds_damage_on_the_server(
    ftp_server: ServerFactory,
    certfile: Path,
    tmp_path: Path,
    damage: Callable[[Path], Any],
    message: str,
) -> None:
    server = ftp_server()
    local = make_backup(tmp_path / "local")
    sleeps = Sleeps()
    target = _target(server, certfile, sleeps)
    target.upload(local)
    damage(server.root / "offsite/moodle" / NAME / "mdl_user.00000.tsv.gz")
    for reference in (local, None):
        with pytest.raises(StorageError, match=message) as info:
            target.recheck(NAME, reference)
        assert "mdl_user.00000.tsv.gz" in str(info.value)
        assert "next step: upload the backup again" in str(info.value)
    assert sleeps.calls == []  # a mismatch is a finding, not a transient failure


@pytest.mark.storage
def test_damage_in_transit_is_retried(
    ftp_server: ServerFactory, certfile: Path, tmp_path: Path
) -> None:
    damaged: list[str] = []

    class Corrupting(TLS_FTPHandler):
        def on_file_received(self, file: str) -> None:
            if file.endswith("mdl_user.00000.tsv.gz") and not damaged:
                damaged.append(file)
                with open(file, "r+b") as fh:
                    fh.write(b"\xff\xfe")

    server = ftp_server(Corrupting)
    local = make_backup(tmp_path / "local")
    sleeps = Sleeps()
    result = _target(server, certfile, sleeps).upload(local)
    assert damaged and result.attempts == 2
    assert sleeps.calls == [2.0]
    assert tree(server.root / "offsite/moodle" / NAME) == tree(local)


@pytest.mark.storage
def test_half_upload_never_looks_complete_and_resumes(
    ftp_server: ServerFactory, certfile: Path, tmp_path: Path
) -> None:
    stored: list[str] = []
    broken = {"on": True}

    class Flaky(TLS_FTPHandler):
        def ftp_STOR(self, file: str, mode: str = "w") -> Any:
            if broken["on"] and file.endswith("mdl_user.00000.tsv.gz"):
                self.respond("451 Simulated local error in processing.")
                return None
            stored.append(_final_name(file))
            return super().ftp_STOR(file, mode)

    server = ftp_server(Flaky)
    local = make_backup(tmp_path / "local")
    remote = server.root / "offsite/moodle"

    def while_waiting() -> None:  # the state a reader sees between attempts
        assert not (remote / NAME).exists()
        assert (remote / f"{NAME}.partial").is_dir()

    sleeps = Sleeps(while_waiting)
    target = _target(server, certfile, sleeps, retries=1)
    with pytest.raises(StorageError, match="temporary failure") as info:
        target.upload(local)
    assert "after 2 attempts" in str(info.value)
    assert sleeps.calls == [2.0]
    while_waiting()
    assert target.list_backups() == [RemoteBackup(f"{NAME}.partial", False)]

    broken["on"] = False
    stored.clear()
    result = target.upload(local)
    assert result.attempts == 1
    # files already on the server with the right size were not sent again
    assert stored == ["mdl_user.00000.tsv.gz", "mdl_user.sql", "verify.json", "manifest.json"]
    assert tree(remote / NAME) == tree(local)
    assert target.list_backups() == [RemoteBackup(NAME, True)]


@pytest.mark.storage
def test_refused_login_is_a_storage_error_without_retries(
    ftp_server: ServerFactory, certfile: Path, tmp_path: Path
) -> None:
    server = ftp_server()
    sleeps = Sleeps()
    target = _target(server, certfile, sleeps, password="wrong-" + PASSWORD)
    with pytest.raises(StorageError, match="refused the login for user 'moodump'") as info:
        target.upload(make_backup(tmp_path / "local"))
    assert "FTP_USER and FTP_PASSWORD" in str(info.value)
    assert PASSWORD not in str(info.value)
    assert isinstance(info.value, StorageAuthError)
    assert info.value.exit_code == 3  # cannot authenticate, like a refused database login
    assert sleeps.calls == []


@pytest.mark.storage
def test_unreachable_server_is_retried_a_bounded_number_of_times(
    certfile: Path, tmp_path: Path
) -> None:
    (port,) = free_ports(1)  # nothing listens there
    sleeps = Sleeps()
    target = FtpsTarget(
        FtpsSettings(url=f"ftp://127.0.0.1:{port}/", retries=2, backoff_s=2.0, max_backoff_s=3.0),
        sleep=sleeps,
    )
    with pytest.raises(StorageError, match="cannot talk to the FTP server") as info:
        target.list_backups()
    assert "after 3 attempts" in str(info.value)
    assert sleeps.calls == [2.0, 3.0]  # exponential, capped


@pytest.mark.storage
def test_silent_server_times_out(tmp_path: Path) -> None:
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(4)  # accepts, never greets (like an implicit-FTPS server)
    try:
        target = FtpsTarget(
            FtpsSettings(
                url=f"ftps://127.0.0.1:{silent.getsockname()[1]}/", timeout_s=0.2, retries=0
            )
        )
        with pytest.raises(StorageError, match=r"no answer .* within 0\.2 s") as info:
            target.list_backups()
        assert "implicit-FTPS" in str(info.value)
    finally:
        silent.close()


@pytest.mark.storage
def test_untrusted_certificate_is_refused(ftp_server: ServerFactory, tmp_path: Path) -> None:
    server = ftp_server()
    sleeps = Sleeps()
    target = FtpsTarget(FtpsSettings(url=server.url(), user=USER, password=PASSWORD), sleep=sleeps)
    with pytest.raises(StorageError, match="certificate that does not verify"):
        target.list_backups()
    assert sleeps.calls == []
    insecure = FtpsTarget(
        FtpsSettings(url=server.url(), user=USER, password=PASSWORD, verify_tls=False)
    )
    assert insecure.list_backups() == []


@pytest.mark.storage
def test_plain_ftp_only_when_allowed(
    ftp_server: ServerFactory, certfile: Path, tmp_path: Path
) -> None:
    server = ftp_server(tls=False)
    local = make_backup(tmp_path / "local")
    with pytest.raises(StorageError, match="does not offer explicit TLS"):
        _target(server, certfile).upload(local)
    assert _target(server, certfile, require_tls=False).upload(local).files == 6
    assert tree(server.root / "offsite/moodle" / NAME) == tree(local)


@pytest.mark.storage
def test_server_side_sha256_is_used_when_offered(
    ftp_server: ServerFactory, certfile: Path, tmp_path: Path
) -> None:
    retrieved: list[str] = []

    class Hashing(TLS_FTPHandler):
        proto_cmds = {
            **TLS_FTPHandler.proto_cmds,
            "XSHA256": dict(perm="r", auth=True, arg=True, help="Syntax: XSHA256 <SP> path"),
        }

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self._extra_feats.append("XSHA256")

        def ftp_XSHA256(self, path: str) -> None:
            with open(path, "rb") as fh:
                self.respond("250 " + hashlib.sha256(fh.read()).hexdigest())

        def ftp_RETR(self, file: str) -> Any:
            retrieved.append(file)
            return super().ftp_RETR(file)

    server = ftp_server(Hashing)
    local = make_backup(tmp_path / "local")
    target = _target(server, certfile)
    assert target.upload(local).check_method == "server-hash"
    assert target.recheck(NAME, local).check_method == "server-hash"
    assert retrieved == []  # nothing was downloaded to hash it
    (server.root / "offsite/moodle" / NAME / "mdl_log.00000.tsv.gz").write_bytes(os.urandom(70_000))
    with pytest.raises(StorageError, match="different sha256"):
        target.recheck(NAME, local)


@pytest.mark.storage
def test_local_backup_must_be_done_and_intact(
    ftp_server: ServerFactory, certfile: Path, tmp_path: Path
) -> None:
    server = ftp_server()
    target = _target(server, certfile)
    started = make_backup(tmp_path / "a", status="STARTED")
    with pytest.raises(IntegrityError, match="not a complete backup"):
        target.upload(started)

    local = make_backup(tmp_path / "b")
    data = local / "mdl_log.00000.tsv.gz"
    data.write_bytes(bytes(len(data.read_bytes())))  # same size, other content
    with pytest.raises(IntegrityError, match="does not match its manifest"):
        target.upload(local)
    remote = server.root / "offsite/moodle"
    assert not (remote / NAME).exists()  # a damaged backup is never published

    (local / "mdl_user.00000.tsv.gz").unlink()
    with pytest.raises(IntegrityError, match="lacks 1 file"):
        target.upload(local)


@pytest.mark.storage
def test_prune_remote_removes_exactly_the_named_backups(
    ftp_server: ServerFactory, certfile: Path, tmp_path: Path
) -> None:
    server = ftp_server()
    target = _target(server, certfile)
    older = "mysql-moodle_2026-01-29_01-00-00"
    other_db = "mysql-moodle_archive_2026-01-29_01-00-00"
    for name in (older, NAME, other_db):
        target.upload(make_backup(tmp_path / "local", name))
    remote = server.root / "offsite/moodle"
    (remote / "mysql-moodle_2025-12-01_01-00-00.sql.gz").write_bytes(b"old container file")
    (remote / f"{older}.partial").mkdir()

    names = [b.name for b in target.list_backups()]
    assert names == [older, f"{older}.partial", NAME, other_db]  # plain files are not backups

    to_prune = remote_names_to_prune(names, keep=[NAME], core_name="mysql-moodle")
    assert to_prune == [older]  # not the other database, not the partial on its own
    absent = "mysql-moodle_2020-01-01_00-00-00"
    assert target.prune_remote([*to_prune, absent], dry_run=True) == [older]
    assert (remote / older).is_dir()
    assert target.prune_remote(to_prune) == [older]
    assert not (remote / older).exists() and not (remote / f"{older}.partial").exists()
    assert [b.name for b in target.list_backups()] == [NAME, other_db]
    assert (remote / "mysql-moodle_2025-12-01_01-00-00.sql.gz").exists()
    with pytest.raises(ConfigError):
        target.prune_remote(["../etc"])


@pytest.mark.storage
def test_a_copy_is_read_back_by_its_url_with_the_settings_that_uploaded_it(
    ftp_server: ServerFactory, certfile: Path, tmp_path: Path
) -> None:
    """``moodump restore``/``verify ftps://host/path/NAME`` with the configuration the
    copy was uploaded with: a self-signed server certificate given by
    MOODUMP_FTP_CA_FILE, the password in FTP_PASSWORD_FILE (a mounted Secret). The URL's
    backend took neither: "a certificate that does not verify … give the server's CA
    with the FTP CA-file setting" (it was given), or a login without a password."""
    server = ftp_server()
    local = make_backup(tmp_path / "local")
    _target(server, certfile).upload(local)
    secret = tmp_path / "ftp-password"
    secret.write_text(PASSWORD + "\n")
    env = {
        "FTP_USER": USER,
        "FTP_PASSWORD_FILE": str(secret),
        "MOODUMP_FTP_CA_FILE": str(certfile),
    }
    source = open_backup(server.url() + NAME, env=env, sleep=lambda _: None)
    try:
        manifest = source.done_manifest()
        for f in manifest.files:
            assert source.open_checked(f).read() == (local / f.name).read_bytes()
    finally:
        source.close()
    # The account written into FTP_URL (ftp://user:password@host/path/, as curl took it)
    # and the URL `moodump list --offsite` shows, which has no account: that URL logged
    # in as anonymous ("refused the login for user 'anonymous' … check FTP_USER").
    userinfo = f"{USER}:{quote(PASSWORD, safe='')}@"
    in_url = {
        "FTP_URL": server.url("/elsewhere/").replace("://", "://" + userinfo),
        "MOODUMP_FTP_CA_FILE": str(certfile),
    }
    source = open_backup(server.url() + NAME, env=in_url, sleep=lambda _: None)
    try:
        assert source.done_manifest().files == manifest.files
    finally:
        source.close()
    # ... for that server only: another host (or port) is not sent the password
    other = {**in_url, "FTP_URL": in_url["FTP_URL"].replace("127.0.0.1", "localhost")}
    with pytest.raises(StorageAuthError, match="anonymous"):
        open_backup(server.url() + NAME, env=other, sleep=lambda _: None).done_manifest()


@pytest.mark.storage
def test_a_download_the_server_aborts_is_a_broken_transfer_not_a_short_file(
    ftp_server: ServerFactory, certfile: Path, tmp_path: Path
) -> None:
    """The server closes the data connection mid-file and says so (``426 Transfer
    aborted``, as pyftpdlib, vsftpd and proftpd do when a transfer is cut). The stream
    ended as if the file were shorter: a restore from the copy called the backup
    damaged ("truncated or replaced", exit code 8) instead of naming a broken transfer
    (exit code 7); a download is retried and arrives whole."""
    from pyftpdlib.handlers import TLS_DTPHandler

    class Cutting(TLS_DTPHandler):
        cuts = 0  # data connections still to cut
        sent = 0

        def send(self, data: bytes) -> int:
            n = int(super().send(data) or 0)
            self.sent += n
            if Cutting.cuts and not self.receive and self.sent > 200_000:
                Cutting.cuts -= 1
                self.handle_close()  # replies 426: data was left to send
            return n

    server = ftp_server(type("Handler", (TLS_FTPHandler,), {"dtp_handler": Cutting}))
    big = tmp_path / "mdl_big.00000.tsv.gz"
    big.write_bytes(os.urandom(2_000_000))
    digest = hashlib.sha256(big.read_bytes()).hexdigest()
    backend = _target(server, certfile).backend
    backend.put_file(f"{NAME}/data/mdl_big.00000.tsv.gz", big)

    Cutting.cuts = 1
    key = f"{NAME}/data/mdl_big.00000.tsv.gz"
    with pytest.raises(StorageError) as info, backend.open_read(key) as fh:
        while fh.read(65536):
            pass
    assert not isinstance(info.value, IntegrityError) and info.value.exit_code == 7
    assert "426" in info.value.message and "mdl_big" in info.value.message, info.value

    Cutting.cuts = 1
    dest = tmp_path / "down.gz"
    assert backend.get_file(key, dest, sha256=digest) == digest
    assert Cutting.cuts == 0 and dest.read_bytes() == big.read_bytes()


@pytest.mark.storage
def test_a_server_that_limits_sessions_per_address_still_serves_a_restore(
    ftp_server: ServerFactory, certfile: Path, tmp_path: Path
) -> None:
    """A server that takes two sessions per client address (vsftpd ``max_per_ip``,
    proftpd ``MaxClientsPerHost``, pure-ftpd ``-C``; common on hosted FTP): a restore
    from the copy reads its small files ahead in parallel, each on its own session, on
    top of the backend's own one. Every extra login got ``421 Too many connections``,
    and after the retries the restore failed. The backend now learns the limit from the
    421 and waits for a session to end instead."""
    server = ftp_server()
    files = {f"schema/t{i:02d}.sql": os.urandom(500) for i in range(16)}
    local = make_backup(tmp_path / "local")
    for rel, data in files.items():
        (local / rel).write_bytes(data)
    manifest = read_manifest(local)
    manifest.files += [
        FileEntry(rel, len(data), hashlib.sha256(data).hexdigest(), "schema")
        for rel, data in files.items()
    ]
    (local / "manifest.json").write_text(manifest.to_json(), encoding="utf-8")
    sleeps = Sleeps(lambda: time.sleep(0.05))  # the server notices a session ended
    target = _target(server, certfile, sleeps)
    target.upload(local)
    ftp_server.__self__.loops[-1].server.max_cons_per_ip = 2  # type: ignore[attr-defined]
    source = RemoteSource(target.backend, NAME)
    source.prefetch(list(files))
    for rel, data in files.items():
        assert source.open(rel).read() == data
    # the first parallel logins may each meet a 421 before the limit is known; none after
    assert len(sleeps.calls) <= 5, sleeps.calls


@pytest.mark.storage
def test_list_of_a_missing_base_directory_is_empty(
    ftp_server: ServerFactory, certfile: Path
) -> None:
    server = ftp_server()
    assert _target(server, certfile).list_backups() == []
    # --latest below it: no copies there (exit 5), as below an S3 prefix; it was exit 7,
    # "the directory … does not exist … create it on the server, or fix … FTP_URL"
    env = {"FTP_USER": USER, "FTP_PASSWORD": PASSWORD, "MOODUMP_FTP_CA_FILE": str(certfile)}
    with pytest.raises(NotFoundError, match="no verified copy of mysql-moodle"):
        latest(server.url("/nodir/"), "mysql-moodle", timezone.utc, env=env)


@pytest.mark.parametrize(
    ("url", "host", "port", "path", "display"),
    [
        ("ftp://ftp.example.org/", "ftp.example.org", 21, "", "ftp://ftp.example.org:21/"),
        ("ftps://h:2121/backups/", "h", 2121, "backups", "ftps://h:2121/backups/"),
        ("ftp://h/a/b", "h", 21, "a/b", "ftp://h:21/a/b/"),
        ("ftp://h//srv/backups/", "h", 21, "/srv/backups", "ftp://h:21//srv/backups/"),
        ("ftp://u:p%40ss@h/x%20y/", "h", 21, "x y", "ftp://h:21/x y/"),
    ],
)
def test_parse_ftp_url(url: str, host: str, port: int, path: str, display: str) -> None:
    parsed = parse_ftp_url(url)
    assert (parsed.host, parsed.port, parsed.path) == (host, port, path)
    assert parsed.display() == display


def test_url_credentials_are_used_and_hidden() -> None:
    parsed = parse_ftp_url("ftp://u:p%40ss@h/")
    assert (parsed.user, parsed.password) == ("u", "p@ss")
    assert "p@ss" not in repr(parsed)
    assert PASSWORD not in repr(FtpsSettings(url="ftp://h/", password=PASSWORD))


@pytest.mark.parametrize(
    "url",
    ["sftp://h/", "http://h/", "ftp:///x", "ftp://h:99999/", "ftp://h/x?y=1", "", "ftps://h:0/x/"],
)
def test_bad_ftp_urls(url: str) -> None:
    with pytest.raises(ConfigError, match="FTP_URL"):
        parse_ftp_url(url)


# -- a second, stricter server: vsftpd ------------------------------------------------------

VSFTPD_CONF = """\
listen=YES
listen_address=127.0.0.1
listen_port={port}
background=NO
run_as_launching_user=YES
anonymous_enable=YES
local_enable=NO
write_enable=YES
anon_upload_enable=YES
anon_mkdir_write_enable=YES
anon_other_write_enable=YES
anon_root={root}
anon_umask=022
no_anon_password=YES
secure_chroot_dir={empty}
ssl_enable=YES
allow_anon_ssl=YES
force_anon_data_ssl=YES
force_anon_logins_ssl=YES
require_ssl_reuse=YES
ssl_ciphers=HIGH
rsa_cert_file={cert}
rsa_private_key_file={cert}
pasv_min_port={pasv}
pasv_max_port={pasv_max}
seccomp_sandbox=NO
"""


def _free_range(count: int) -> int:
    """First port of ``count`` consecutive free ports on 127.0.0.1."""
    for base in range(41000, 60000, 97):
        socks: list[socket.socket] = []
        try:
            for port in range(base, base + count):
                s = socket.socket()
                socks.append(s)
                s.bind(("127.0.0.1", port))
            return base
        except OSError:
            continue
        finally:
            for s in socks:
                s.close()
    raise RuntimeError("no free port range")


@pytest.fixture
def vsftpd(certfile: Path, tmp_path: Path) -> Iterator[tuple[int, Path]]:
    """vsftpd with its defaults that the stdlib client fails: TLS session reuse required,
    no MLSD (so listing falls back to NLST). Anonymous login, files under ``root/pub``."""
    binary = shutil.which("vsftpd", path=f"{os.environ.get('PATH', '')}:/usr/sbin")
    if binary is None:
        pytest.skip("vsftpd is not installed (apt-get install vsftpd)")
    root, empty = tmp_path / "vsroot", tmp_path / "empty"
    (root / "pub").mkdir(parents=True)
    empty.mkdir()
    (root / "pub").chmod(0o777)
    (port,) = free_ports(1)
    pasv = _free_range(8)
    conf = tmp_path / "vsftpd.conf"
    conf.write_text(
        VSFTPD_CONF.format(
            port=port, root=root, empty=empty, cert=certfile, pasv=pasv, pasv_max=pasv + 7
        )
    )
    proc = subprocess.Popen([binary, str(conf)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 10
        while True:  # wait until it listens (startup, not a fixed sleep)
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    out = proc.stdout.read().decode() if proc.stdout else ""
                    pytest.fail(f"vsftpd did not start: {out}")
                time.sleep(0.05)
        yield port, root / "pub"
    finally:
        proc.terminate()
        proc.wait(10)


@pytest.mark.storage
def test_vsftpd_requires_tls_session_reuse_and_has_no_mlsd(
    vsftpd: tuple[int, Path], certfile: Path, tmp_path: Path
) -> None:
    port, pub = vsftpd
    # the stdlib client alone is refused on its first data connection
    plain = ftplib.FTP_TLS(context=ssl.create_default_context(cafile=str(certfile)), timeout=5)
    plain.connect("127.0.0.1", port)
    plain.login()
    plain.prot_p()
    with pytest.raises(ftplib.error_perm, match="session reuse required"):
        plain.nlst("/pub")
    plain.close()

    local = make_backup(tmp_path / "local")
    target = FtpsTarget(
        FtpsSettings(url=f"ftp://127.0.0.1:{port}/pub/offsite/", ca_file=str(certfile), retries=0)
    )
    result = target.upload(local)
    assert result.files == 6
    assert tree(pub / "offsite" / NAME) == tree(local)
    target.recheck(NAME, local)
    assert target.list_backups() == [RemoteBackup(NAME, True)]  # NLST + SIZE, no MLSD
    assert target.prune_remote([NAME]) == [NAME]
    assert target.list_backups() == []
    # vsftpd refuses a file in a directory that is missing with 553 (not 550): the
    # directory is still named (a read-only one, which MKD cannot create anything below)
    locked = pub / "locked"
    locked.mkdir()
    if os.geteuid() == 0:
        if subprocess.run(["chattr", "+i", str(locked)], capture_output=True).returncode:
            return  # no immutable directories here: the case above is the test
    else:
        locked.chmod(0o555)
    try:
        below = FtpsSettings(
            url=f"ftp://127.0.0.1:{port}/pub/locked/offsite/", ca_file=str(certfile), retries=0
        )
        with pytest.raises(StorageError, match="pub/locked/offsite does not exist") as info:
            FtpsTarget(below).upload(local)
        assert not isinstance(info.value, StorageAuthError)
    finally:
        if os.geteuid() == 0:
            subprocess.run(["chattr", "-i", str(locked)], check=False)
