"""The storage contract (moodump.storage.base), run against every backend.

Each test runs for a local directory, a real FTPS server (pyftpdlib with TLS) and a real
S3 server (SeaweedFS, SigV4 checked). A backend that passes these tests keeps the
contract; a new backend only needs a factory below. The off-site copy of a backup
directory (moodump.offsite.remote) is run over every backend as well.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import pytest

import rig_s3
from moodump.errors import (
    ConfigError,
    IntegrityError,
    NotFoundError,
    StorageAuthError,
    StorageError,
)
from moodump.manifest import STATUS_DONE, FileEntry, Manifest
from moodump.offsite import (
    RemoteBackup,
    RemoteBackupReader,
    list_backups,
    prune_remote,
    recheck,
    upload,
)
from moodump.offsite.source import RemoteSource
from moodump.storage import (
    Backend,
    FtpsBackend,
    FtpsSettings,
    LocalBackend,
    S3Backend,
)
from moodump.storage.s3 import PART_SIZE
from rig_ftps import PASSWORD, USER, FtpServers, free_ports, make_certfile

MIB = 1 << 20


class Sleeps:
    """An injected sleep: records the delays, never waits."""

    def __init__(self) -> None:
        self.calls: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.calls.append(seconds)


@dataclass
class Kind:
    """How to make backends of one kind for the tests."""

    name: str
    make: Callable[..., Backend]  # a fresh, empty backend: make(sleep=...)
    missing_root: Callable[[], tuple[Backend, str]]  # (backend, the name its error must say)
    refused: Callable[[Sleeps], Backend]  # wrong credentials / unwritable
    unreachable: Callable[[Sleeps], Backend] | None  # nothing listens there
    spec: Callable[[Backend], dict[str, Any]]  # how a child process rebuilds the backend
    # a backend that would create its missing root where this account may not create it
    uncreatable: Callable[[], tuple[Backend, str]] | None = None
    cleanup: list[Callable[[], None]] = field(default_factory=list)


@pytest.fixture(scope="module")
def certfile(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_certfile(tmp_path_factory.mktemp("tls") / "server.pem")


@pytest.fixture(scope="module")
def ftp_servers(certfile: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    servers = FtpServers(certfile, tmp_path_factory.mktemp("ftproot"))
    server = servers.start()
    try:
        yield server
    finally:
        servers.stop()


def _local_kind(tmp_path: Path) -> Kind:
    counter = iter(range(1_000_000))

    def make(sleep: Sleeps | None = None) -> Backend:
        root = tmp_path / f"store{next(counter)}"
        root.mkdir()
        return LocalBackend(root, sleep=sleep)

    def missing_root() -> tuple[Backend, str]:
        root = tmp_path / "no-such-dir"
        return LocalBackend(root), str(root)

    def refused(sleeps: Sleeps) -> Backend:
        root = tmp_path / "read-only"
        root.mkdir(exist_ok=True)
        if os.geteuid() == 0:  # root writes anywhere: make the directory immutable
            result = subprocess.run(["chattr", "+i", str(root)], capture_output=True)
            if result.returncode != 0:
                pytest.skip("cannot make a read-only directory as root (chattr +i failed)")
            kind.cleanup.append(lambda: subprocess.run(["chattr", "-i", str(root)], check=False))
        else:
            root.chmod(0o555)
            kind.cleanup.append(lambda: root.chmod(0o755))
        return LocalBackend(root, sleep=sleeps)

    def spec(backend: Backend) -> dict[str, Any]:
        assert isinstance(backend, LocalBackend)
        return {"kind": "local", "root": str(backend.root)}

    def uncreatable() -> tuple[Backend, str]:
        parent = refused(Sleeps())
        assert isinstance(parent, LocalBackend)
        return LocalBackend(parent.root / "moodle", create=True), str(parent.root / "moodle")

    kind = Kind("local", make, missing_root, refused, None, spec, uncreatable)
    return kind


def _read_only(directory: Path) -> Callable[[], None]:
    """Make ``directory`` unwritable (for root too: immutable); returns the undo."""
    if os.geteuid() == 0:
        result = subprocess.run(["chattr", "+i", str(directory)], capture_output=True)
        if result.returncode != 0:
            pytest.skip("cannot make a read-only directory as root (chattr +i failed)")
        return lambda: subprocess.run(["chattr", "-i", str(directory)], check=False) and None
    directory.chmod(0o555)
    return lambda: directory.chmod(0o755)


def _ftps_kind(server: Any, certfile: Path) -> Kind:
    def settings(path: str, **kw: Any) -> FtpsSettings:
        values: dict[str, Any] = {
            "url": server.url(path),
            "user": USER,
            "password": PASSWORD,
            "ca_file": str(certfile),
            "timeout_s": 10,
            "retries": 2,
            "backoff_s": 2.0,
            "max_backoff_s": 3.0,
        }
        values.update(kw)
        return FtpsSettings(**values)

    def make(sleep: Sleeps | None = None) -> Backend:
        return FtpsBackend(settings(f"/{rig_s3.unique('store')}/"), sleep=sleep or Sleeps())

    def missing_root() -> tuple[Backend, str]:
        return FtpsBackend(settings("/no-such-dir/", create_dirs=False)), "no-such-dir"

    def refused(sleeps: Sleeps) -> Backend:
        return FtpsBackend(settings("/x/", password="wrong-" + PASSWORD), sleep=sleeps)

    def unreachable(sleeps: Sleeps) -> Backend:
        (port,) = free_ports(1)
        return FtpsBackend(settings("/x/", url=f"ftps://127.0.0.1:{port}/x/"), sleep=sleeps)

    def spec(backend: Backend) -> dict[str, Any]:
        assert isinstance(backend, FtpsBackend)
        return {"kind": "ftps", "settings": asdict(backend.settings)}

    def uncreatable() -> tuple[Backend, str]:
        # a directory the account may not write below (as on hosted FTP, whose home is fixed)
        parent = server.root / rig_s3.unique("ro")
        parent.mkdir()
        kind.cleanup.append(_read_only(parent))
        return FtpsBackend(settings(f"/{parent.name}/moodle/")), f"{parent.name}/moodle"

    kind = Kind("ftps", make, missing_root, refused, unreachable, spec, uncreatable)
    return kind


def _s3_kind() -> Kind:
    try:
        server = rig_s3.shared()
    except RuntimeError as exc:  # a required part of the rig: fail, never skip
        pytest.fail(f"SeaweedFS (the S3 server of the tests) did not start: {exc}")
    bucket = server.bucket("conformance")

    def settings(**kw: Any) -> Any:
        values: dict[str, Any] = {"retries": 2, "backoff_s": 2.0, "max_backoff_s": 3.0}
        values.update(kw)
        return server.settings(values.pop("bucket", bucket), **values)

    def make(sleep: Sleeps | None = None) -> Backend:
        return S3Backend(settings(prefix=rig_s3.unique("t")), sleep=sleep or Sleeps())

    def missing_root() -> tuple[Backend, str]:
        name = rig_s3.unique("missing-")
        return S3Backend(settings(bucket=name)), name

    def refused(sleeps: Sleeps) -> Backend:
        return S3Backend(settings(secret_key="wrong-" + rig_s3.SECRET_KEY), sleep=sleeps)

    def unreachable(sleeps: Sleeps) -> Backend:
        (port,) = free_ports(1)
        return S3Backend(settings(endpoint=f"http://127.0.0.1:{port}"), sleep=sleeps)

    def spec(backend: Backend) -> dict[str, Any]:
        assert isinstance(backend, S3Backend)
        return {"kind": "s3", "settings": asdict(backend.settings)}

    def uncreatable() -> tuple[Backend, str]:
        # a key with the permissions docs/storage.md lists, on another bucket
        access, secret = rig_s3.limited_key("documented")
        name = rig_s3.unique("nobucket-")
        return S3Backend(
            settings(bucket=name, access_key=access, secret_key=secret, create_bucket=True)
        ), name

    return Kind("s3", make, missing_root, refused, unreachable, spec, uncreatable)


@pytest.fixture(
    params=[
        "local",
        pytest.param("ftps", marks=pytest.mark.storage),
        pytest.param("s3", marks=pytest.mark.storage),
    ]
)
def kind(request: pytest.FixtureRequest, tmp_path: Path, certfile: Path) -> Iterator[Kind]:
    if request.param == "local":
        made = _local_kind(tmp_path)
    elif request.param == "ftps":
        made = _ftps_kind(request.getfixturevalue("ftp_servers"), certfile)
    else:
        made = _s3_kind()
    try:
        yield made
    finally:
        for undo in made.cleanup:
            undo()


@pytest.fixture
def backend(kind: Kind) -> Iterator[Backend]:
    b = kind.make()
    try:
        yield b
    finally:
        b.close()


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def write(tmp_path: Path, name: str, data: bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


# -- writing and reading -------------------------------------------------------------------


@pytest.mark.parametrize("size", [0, 1, MIB + 3, 2 * PART_SIZE + 5])
def test_put_file_is_checked_and_reads_back_byte_exact(
    backend: Backend, tmp_path: Path, size: int
) -> None:
    data = os.urandom(size)
    result = backend.put_file("dir/sub/obj.bin", write(tmp_path, "src", data), sha256=sha(data))
    assert (result.key, result.size, result.sha256) == ("dir/sub/obj.bin", size, sha(data))
    assert result.check in ("local-hash", "server-hash", "download", "etag", "read-back")

    with backend.open_read("dir/sub/obj.bin") as fh:
        assert fh.read() == data
    dest = tmp_path / "dest.bin"
    assert backend.get_file("dir/sub/obj.bin", dest, sha256=sha(data)) == sha(data)
    assert dest.read_bytes() == data
    assert backend.sha256("dir/sub/obj.bin") == sha(data)
    info = backend.stat("dir/sub/obj.bin")
    assert info is not None and info.key == "dir/sub/obj.bin"
    if backend.exact_sizes or backend.exact_stat_sizes:
        assert info.size == size
    assert [i.key for i in backend.list()] == ["dir/sub/obj.bin"]


def test_open_read_streams_in_pieces(backend: Backend) -> None:
    data = os.urandom(3 * MIB + 17)
    backend.put_bytes("big", data)
    pieces = []
    with backend.open_read("big") as fh:
        while piece := fh.read(65536):
            pieces.append(piece)
    assert b"".join(pieces) == data and max(len(p) for p in pieces) <= 65536


def test_put_replaces_an_existing_object(backend: Backend) -> None:
    backend.put_bytes("k", b"old contents")
    backend.put_bytes("k", b"new")
    assert backend.read_bytes("k") == b"new"
    assert [i.key for i in backend.list()] == ["k"]


@pytest.mark.parametrize("size", [100, 2 * PART_SIZE + 5])
def test_a_source_that_does_not_match_its_sha256_is_refused_and_leaves_nothing(
    backend: Backend, tmp_path: Path, size: int
) -> None:
    data = os.urandom(size)
    with pytest.raises(IntegrityError, match="does not match its manifest") as info:
        backend.put_file("obj", write(tmp_path, "src", data), sha256=sha(b"something else"))
    assert info.value.exit_code == 8
    assert backend.stat("obj") is None
    assert backend.list() == []


class _FailingSource(io.RawIOBase):
    """A source that fails with EIO after ``limit`` bytes (a disk going bad mid-upload)."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.sent = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        if self.sent >= self.limit:
            raise OSError(5, "Input/output error")
        n = min(len(buffer), self.limit - self.sent)
        buffer[:n] = b"\xa5" * n
        self.sent += n
        return n


@pytest.mark.parametrize("limit", [1000, 2 * PART_SIZE + MIB])
def test_an_upload_whose_source_fails_midway_leaves_no_object(backend: Backend, limit: int) -> None:
    source = io.BufferedReader(_FailingSource(limit), 65536)
    with pytest.raises(IntegrityError, match="Input/output error"):
        backend.put_stream("obj", source)  # type: ignore[arg-type]
    assert backend.stat("obj") is None
    assert backend.list() == []  # no temporary object is visible either


_CHILD = """
import json, os, sys
from moodump.storage import FtpsBackend, FtpsSettings, LocalBackend, S3Backend, S3Settings
spec = json.loads(os.environ["STORAGE_SPEC"])
if spec["kind"] == "local":
    backend = LocalBackend(spec["root"])
elif spec["kind"] == "ftps":
    backend = FtpsBackend(FtpsSettings(**spec["settings"]))
else:
    backend = S3Backend(S3Settings(**spec["settings"]))
backend.put_stream("obj", sys.stdin.buffer)
print("finished", flush=True)
"""


def test_a_killed_upload_leaves_no_object(kind: Kind, backend: Backend) -> None:
    env = dict(os.environ, STORAGE_SPEC=json.dumps(kind.spec(backend)))
    env["PYTHONPATH"] = os.pathsep.join(p for p in sys.path if p)
    child = subprocess.Popen(
        [sys.executable, "-c", _CHILD], stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env
    )
    assert child.stdin is not None
    try:
        # The pipe holds 64 KiB: once these writes return, the child has read (and, with
        # one part of look-ahead on S3, sent) the first parts and waits for more.
        for _ in range(2 * PART_SIZE // MIB + 5):
            child.stdin.write(os.urandom(MIB))
        child.stdin.flush()
        assert child.poll() is None
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait(30)
        child.stdin.close()
    assert child.stdout is not None and b"finished" not in child.stdout.read()
    assert backend.stat("obj") is None
    assert backend.list() == []


def test_check_tells_a_complete_object_for_resume(backend: Backend, tmp_path: Path) -> None:
    data = os.urandom(PART_SIZE + 123)
    src = write(tmp_path, "src", data)
    backend.put_file("a/obj", src, sha256=sha(data))
    for local in (src, None):
        found = backend.check("a/obj", sha256=sha(data), size=len(data), local=local)
        assert found.ok and found.problem is None
    assert not backend.check("a/obj", sha256=sha(data + b"x"), size=len(data)).ok
    assert backend.check("a/obj", sha256=sha(data), size=len(data) + 1).problem in (
        f"has {len(data)} bytes, expected {len(data) + 1}",
        "has a different sha256",  # S3 without a trustworthy size: hashed and counted
    )
    assert backend.check("a/missing", sha256=sha(data), size=1).problem == "is missing"
    # a local file that does not have the expected digest proves nothing about the object
    other = backend.check("a/obj", sha256=sha(b"other"), size=len(data), local=src)
    assert other.problem == "has a different sha256"


# -- listing, stat, delete ---------------------------------------------------------------------


def test_list_is_recursive_sorted_and_respects_prefixes(backend: Backend) -> None:
    for key in ("z", "a/1", "a/b/2", "a/b/c/3", "ab/4"):
        backend.put_bytes(key, key.encode())
    assert [i.key for i in backend.list()] == ["a/1", "a/b/2", "a/b/c/3", "ab/4", "z"]
    assert [i.key for i in backend.list("a")] == ["a/1", "a/b/2", "a/b/c/3"]
    assert [i.key for i in backend.list("a/b/")] == ["a/b/2", "a/b/c/3"]
    assert backend.list("nothing/here") == []
    assert backend.list_dirs() == ["a", "ab"]
    assert backend.list_dirs("a") == ["b"]
    assert backend.list_dirs("nothing") == []


def test_stat_delete_and_delete_prefix(backend: Backend) -> None:
    for key in ("a/1", "a/b/2", "ab/3"):
        backend.put_bytes(key, b"12345")
    assert backend.stat("a/1") is not None
    assert backend.stat("a/nope") is None
    assert backend.stat("a") is None  # a prefix is not an object
    assert backend.delete("a/1") is True
    assert backend.delete("a/1") is False
    assert backend.delete_prefix("a") == 1
    assert [i.key for i in backend.list()] == ["ab/3"]
    assert backend.list_dirs() == ["ab"]
    assert backend.delete_prefix("nope") == 0
    with pytest.raises(ConfigError):
        backend.delete_prefix("")


@pytest.mark.parametrize(
    "key",
    ["", "/abs", "a/", "a//b", "a/../b", "..", "a/./b", "a\\b", "a\0b", "a\nb", "d/.moodump-tmp-x"],
)
def test_invalid_keys_are_refused(backend: Backend, key: str) -> None:
    with pytest.raises(ConfigError, match="not a valid storage key"):
        backend.put_bytes(key, b"x")
    with pytest.raises(ConfigError):
        backend.stat(key)
    with pytest.raises(ConfigError):
        backend.open_read(key)


def test_reading_a_missing_object_is_a_storage_error(backend: Backend, tmp_path: Path) -> None:
    backend.put_bytes("present", b"x")
    with pytest.raises(StorageError, match="does not exist"):
        backend.open_read("absent")
    dest = tmp_path / "dest"
    with pytest.raises(StorageError):
        backend.get_file("absent", dest)
    assert not dest.exists()


def test_a_download_that_does_not_match_is_retried_then_refused(kind: Kind, tmp_path: Path) -> None:
    sleeps = Sleeps()
    backend = kind.make(sleep=sleeps)
    backend.put_bytes("obj", b"stored bytes")
    downloads = tmp_path / "downloads"
    downloads.mkdir()
    with pytest.raises(StorageError, match="different sha256"):
        backend.get_file("obj", downloads / "dest", sha256=sha(b"expected bytes"))
    assert list(downloads.iterdir()) == []  # neither the file nor a temporary one
    assert len(sleeps.calls) == backend.retry.retries


def test_rename_prefix_publishes_a_directory(backend: Backend) -> None:
    if not backend.can_rename:
        pytest.skip("this backend cannot rename (S3): publishing writes the manifest last")
    backend.put_bytes("x.partial/1", b"1")
    backend.put_bytes("x.partial/d/2", b"2")
    backend.rename_prefix("x.partial", "x")
    assert [i.key for i in backend.list()] == ["x/1", "x/d/2"]


# -- failures ------------------------------------------------------------------------------------


def test_wrong_credentials_are_an_auth_error_and_not_retried(kind: Kind) -> None:
    sleeps = Sleeps()
    backend = kind.refused(sleeps)
    if kind.name == "local":
        # No credentials: the local equivalent is a directory this user cannot write.
        with pytest.raises(StorageError, match="cannot write") as info:
            backend.put_bytes("obj", b"x")
        assert info.value.exit_code == 7 and "next step" in str(info.value)
        return
    with pytest.raises(StorageAuthError) as auth:
        backend.put_bytes("obj", b"x")
    assert auth.value.exit_code == 3
    assert "next step" in str(auth.value)
    assert "wrong-" not in str(auth.value) and "wrong-" not in repr(backend)
    with pytest.raises(StorageAuthError):
        backend.list()
    assert sleeps.calls == []


def test_a_missing_root_is_a_clear_storage_error(kind: Kind) -> None:
    backend, name = kind.missing_root()
    for action in (lambda: backend.put_bytes("obj", b"x"), backend.list):
        with pytest.raises(StorageError, match="does not exist") as info:
            action()
        assert name in str(info.value)
        assert "next step" in str(info.value)
        assert not isinstance(info.value, StorageAuthError)


def test_a_missing_root_that_cannot_be_created_is_named(kind: Kind) -> None:
    """A root to be created where the account may not (a typo below a directory it cannot
    write, a hosted FTP account's fixed home) is named, not a bare server refusal."""
    assert kind.uncreatable is not None
    backend, name = kind.uncreatable()
    with pytest.raises(StorageError) as info:
        backend.put_bytes("NAME/manifest.json", b"x")
    if kind.name == "s3":  # a permission the key lacks: named, with the auth exit code
        assert isinstance(info.value, StorageAuthError), info.value
        assert name in info.value.message and "the permission s3:" in info.value.message
        return
    assert not isinstance(info.value, StorageAuthError) and info.value.exit_code == 7
    assert name in info.value.message and "create" in info.value.message
    assert "next step" in str(info.value)
    assert backend.retried == 0  # a refusal, not a transient failure


def test_a_copy_below_a_directory_that_does_not_exist_is_not_found(kind: Kind) -> None:
    """``moodump restore``/``verify`` of ``.../typo/NAME``: on S3 (a prefix with nothing
    below it) and for a local path "there is no copy" (exit 5); on FTPS it was "the
    directory typo does not exist … create it on the server, or fix the path in
    FTP_URL" (exit 7), a hint for uploads, about a setting the URL did not come from."""
    if kind.name == "s3":
        backend = kind.make()  # a prefix nothing was written below (a bucket is a server's)
    else:
        backend, _ = kind.missing_root()
    source = RemoteSource(backend, NAME)
    with pytest.raises(NotFoundError, match=f"there is no copy {NAME}") as info:
        source.done_manifest()
    assert "list --offsite" in str(info.value.hint) and "FTP_URL" not in str(info.value)
    source.close()


def test_an_unreachable_server_is_retried_with_backoff(kind: Kind) -> None:
    if kind.unreachable is None:
        pytest.skip("no server to reach")
    sleeps = Sleeps()
    backend = kind.unreachable(sleeps)
    with pytest.raises(StorageError, match="after 3 attempts") as info:
        backend.list()
    assert info.value.exit_code == 7
    assert sleeps.calls == [2.0, 3.0]  # exponential, capped


def test_secrets_stay_out_of_repr(kind: Kind) -> None:
    backend = kind.refused(Sleeps())
    text = repr(backend) + repr(getattr(backend, "settings", ""))
    assert PASSWORD not in text and rig_s3.SECRET_KEY not in text


# -- an off-site copy of a backup directory, on every backend ---------------------------------

NAME = "mysql-moodle_2026-01-31_01-00-00"


def make_backup(parent: Path, name: str = NAME) -> Path:
    """A DONE backup directory whose manifest lists every data/schema file."""
    d = parent / name
    (d / "schema").mkdir(parents=True)
    contents = {
        "schema/mdl_user.sql": b"CREATE TABLE `mdl_user` (`id` bigint NOT NULL);\n",
        "data/mdl_user.00000.tsv.gz": os.urandom(PART_SIZE + 300_000),
        "data/mdl_log.00000.tsv.gz": os.urandom(70_000),
        "data/mdl_log.00001.tsv.gz": b"",
    }
    files = []
    for rel, data in contents.items():
        (d / rel).parent.mkdir(parents=True, exist_ok=True)
        (d / rel).write_bytes(data)
        kind = "schema" if rel.startswith("schema/") else "data"
        files.append(FileEntry(rel, len(data), sha(data), kind))
    manifest = Manifest(database="moodle", status=STATUS_DONE, host="mysql", files=files)
    (d / "manifest.json").write_text(manifest.to_json(), encoding="utf-8")
    (d / "verify.json").write_text('{"status": "PASS"}\n', encoding="utf-8")
    return d


def test_offsite_copy_round_trip(backend: Backend, tmp_path: Path) -> None:
    local = make_backup(tmp_path / "local")
    first = upload(backend, local, clock=iter(range(100)).__next__)
    assert (first.files, first.skipped, first.skipped_files, first.attempts) == (6, False, 0, 1)
    assert first.duration_s == 1
    assert list_backups(backend) == [RemoteBackup(NAME, True)]
    assert recheck(backend, NAME, local).files == 5
    assert recheck(backend, NAME).files == 4  # against the remote manifest

    reader = RemoteBackupReader(backend, NAME)
    assert reader.manifest().status == STATUS_DONE
    for entry in reader.files():
        with reader.open(entry.name) as fh:
            assert fh.read() == (local / entry.name).read_bytes()

    again = upload(backend, local)
    assert again.skipped and again.skipped_files == 6


def test_offsite_copy_is_repaired_and_resumed(backend: Backend, tmp_path: Path) -> None:
    local = make_backup(tmp_path / "local")
    upload(backend, local)
    # damage one remote file: recheck names it, the next upload replaces only what differs
    backend.put_bytes(f"{NAME}/data/mdl_log.00000.tsv.gz", b"damaged")
    with pytest.raises(StorageError, match=r"mdl_log\.00000\.tsv\.gz") as info:
        recheck(backend, NAME, local)
    assert "upload the backup again" in str(info.value)
    damaged = RemoteBackupReader(backend, NAME).open("data/mdl_log.00000.tsv.gz")
    with damaged as fh, pytest.raises(IntegrityError, match="does not match its manifest"):
        fh.read()
    repaired = upload(backend, local)
    assert not repaired.skipped
    recheck(backend, NAME, local)

    # an interrupted first copy (no manifest yet) is completed without re-sending data
    other = make_backup(tmp_path / "local2", "mysql-moodle_2026-02-01_01-00-00")
    staging = other.name + (".partial" if backend.can_rename else "")
    backend.put_file(f"{staging}/data/mdl_user.00000.tsv.gz", other / "data/mdl_user.00000.tsv.gz")
    if not backend.can_rename:
        assert RemoteBackup(other.name, False) in list_backups(backend)
    resumed = upload(backend, other)
    assert resumed.skipped_files == 1
    assert RemoteBackup(other.name, True) in list_backups(backend)


def test_offsite_prune_removes_exactly_the_named_backups(backend: Backend, tmp_path: Path) -> None:
    older = "mysql-moodle_2026-01-29_01-00-00"
    for name in (older, NAME):
        upload(backend, make_backup(tmp_path / name, name))
    backend.put_bytes("mysql-moodle_2025-12-01_01-00-00.sql.gz", b"old container file")
    assert prune_remote(backend, [older, "mysql-moodle_2020-01-01_00-00-00"], dry_run=True) == [
        older
    ]
    assert prune_remote(backend, [older]) == [older]
    assert list_backups(backend) == [RemoteBackup(NAME, True)]
    assert backend.stat("mysql-moodle_2025-12-01_01-00-00.sql.gz") is not None
    with pytest.raises(ConfigError):
        prune_remote(backend, ["../etc"])


# -- adversarial keys and listings (every backend) ------------------------------------------

ODD_KEYS = [
    "sp ace/a b.txt",
    "plus+/a+b",
    "pct%/a%20b%2F",
    "hash#/a#b",
    "q?/a?b=c&d",
    "uni/\u00e9\u65e5\u672c.txt",
    "semi;colon:/a;b:c",
    "brackets[]/a[1]*",
    "quote'\"/x$y",
    "tilde~/x~@",
]


def test_keys_that_need_escaping_round_trip(backend: Backend, tmp_path: Path) -> None:
    """Characters that a URL or an FTP command would mangle are plain key characters."""
    for key in ODD_KEYS:
        data = key.encode() * 3
        backend.put_bytes(key, data)
        assert backend.read_bytes(key) == data, key
        assert backend.stat(key) is not None, key
        assert backend.check(key, sha256=sha(data), size=len(data)).ok, key
    assert [i.key for i in backend.list()] == sorted(ODD_KEYS)
    assert backend.list_dirs() == sorted(k.split("/")[0] for k in ODD_KEYS)
    assert [i.key for i in backend.list("pct%")] == ["pct%/a%20b%2F"]
    assert [i.key for i in backend.list("hash#")] == ["hash#/a#b"]
    assert [i.key for i in backend.list("pct%25")] == []
    for key in ODD_KEYS:
        assert backend.delete(key) is True, key
        assert backend.stat(key) is None, key
    assert backend.list() == []


def test_sibling_prefixes_are_never_mixed(backend: Backend) -> None:
    """``moodle`` is a prefix of ``moodle2`` as a string, never as a directory."""
    for key in ("moodle/a", "moodle2/b", "moodle-x/c", "moodle.partial/d"):
        backend.put_bytes(key, b"x")
    assert [i.key for i in backend.list("moodle")] == ["moodle/a"]
    assert backend.list_dirs("moodle") == []
    assert backend.delete_prefix("moodle") == 1
    assert [i.key for i in backend.list()] == ["moodle-x/c", "moodle.partial/d", "moodle2/b"]
    assert backend.stat("moodle") is None


def test_zero_byte_objects(backend: Backend, tmp_path: Path) -> None:
    empty = write(tmp_path, "empty", b"")
    result = backend.put_file("z/empty.tsv.gz", empty, sha256=sha(b""))
    assert (result.size, result.sha256) == (0, sha(b""))
    assert backend.read_bytes("z/empty.tsv.gz") == b""
    assert backend.check("z/empty.tsv.gz", sha256=sha(b""), size=0, local=empty).ok
    assert backend.check("z/empty.tsv.gz", sha256=sha(b"x"), size=1).problem is not None
    dest = tmp_path / "dest"
    assert backend.get_file("z/empty.tsv.gz", dest, sha256=sha(b"")) == sha(b"")
    assert dest.read_bytes() == b""


def test_an_interrupted_prune_leaves_no_copy_that_looks_complete(
    backend: Backend, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The marker goes first: a prune that stops half-way (a kill, a network failure
    while S3 deletes a batch) never leaves a manifest over a copy missing files."""
    upload(backend, make_backup(tmp_path / "local"))

    def broken(prefix: str) -> int:
        raise StorageError(f"the connection broke while deleting {prefix}", hint="retry")

    monkeypatch.setattr(backend, "_delete_prefix", broken)
    with pytest.raises(StorageError, match="connection broke"):
        prune_remote(backend, [NAME])
    assert list_backups(backend) == [RemoteBackup(NAME, False)]
    monkeypatch.undo()
    assert prune_remote(backend, [NAME]) == [NAME]
    assert list_backups(backend) == []


def test_a_copy_made_again_in_the_other_form_keeps_nothing_of_the_old_one(
    backend: Backend, tmp_path: Path
) -> None:
    """Encryption turned on (or off) and the same backup copied again: no plaintext stays
    beside the ciphertext, and no old marker makes the copy read as the old form."""
    from pyrage import x25519

    from moodump.crypto import encrypt_backup_dir, parse_recipients

    plain = make_backup(tmp_path / "plain")
    enc = tmp_path / "enc" / NAME
    enc.parent.mkdir()
    native = x25519.Identity.generate()
    encrypt_backup_dir(plain, enc, parse_recipients(str(native.to_public())))
    local_keys = {
        d: sorted(f"{NAME}/{p.relative_to(d).as_posix()}" for p in d.rglob("*") if p.is_file())
        for d in (plain, enc)
    }
    for first, second in ((plain, enc), (enc, plain)):
        upload(backend, first)
        upload(backend, second)
        assert [o.key for o in backend.list(NAME)] == local_keys[second]
        assert list_backups(backend) == [RemoteBackup(NAME, True)]
        recheck(backend, NAME, second)


def test_a_copy_that_lost_a_file_is_no_good_copy_for_listing_latest_or_retention(
    backend: Backend, tmp_path: Path
) -> None:
    """A marker over a copy that lost a data file (a lifecycle rule, a hand-made
    deletion) is not a complete copy: ``list --offsite`` says what is missing,
    ``--latest`` takes the older good copy, and retention never removes that one while
    keeping the damaged one as "the newest verified copy"."""
    from datetime import datetime, timezone

    from moodump.offsite.catalog import newest, plan_remote, scan_remote
    from moodump.offsite.remote import OffsiteTarget
    from moodump.retention import RetentionPolicy

    older = "mysql-moodle_2026-01-29_01-00-00"
    for name in (older, NAME):
        upload(backend, make_backup(tmp_path / name, name))
    assert backend.delete(f"{NAME}/data/mdl_log.00000.tsv.gz")
    infos = {i.name: i for i in scan_remote(OffsiteTarget(backend), timezone.utc)}
    assert infos[older].complete and infos[older].verified
    assert not infos[NAME].complete
    assert "data/mdl_log.00000.tsv.gz is missing" in (infos[NAME].error or "")
    assert newest(infos.values(), "mysql-moodle") == infos[older]
    now = datetime(2026, 2, 1, 12, tzinfo=timezone.utc)
    decided = plan_remote(infos.values(), RetentionPolicy(strategy="daily", num_backups=1), now)
    assert [b.id for b in decided.remove] == []  # the good copy, and the damaged as evidence


def test_an_upload_that_never_finished_is_pruned_once_it_is_old(
    backend: Backend, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """docs/offsite.md: "an upload that never finished is removed once it is older than
    12 hours", on every backend: S3 keeps it as ``NAME/`` without a marker, local and
    FTPS as ``NAME.partial/``, which retention must see as well."""
    from datetime import datetime, timezone

    from moodump.offsite.catalog import plan_remote, scan_remote
    from moodump.offsite.remote import OffsiteTarget
    from moodump.retention import RetentionPolicy

    older = "mysql-moodle_2026-01-29_01-00-00"
    real = backend.put_file

    def breaks_at_the_marker(key: str, path: Any, *, sha256: str | None = None) -> Any:
        if key.endswith("/manifest.json"):
            raise StorageError("the connection broke", hint="retry")
        return real(key, path, sha256=sha256)

    monkeypatch.setattr(backend, "put_file", breaks_at_the_marker)
    with pytest.raises(StorageError, match="connection broke"):
        upload(backend, make_backup(tmp_path / older, older))
    monkeypatch.undo()
    upload(backend, make_backup(tmp_path / NAME))
    infos = scan_remote(OffsiteTarget(backend), timezone.utc)
    assert [(i.core, i.when.day, i.complete) for i in infos] == [
        ("mysql-moodle", 29, False),
        ("mysql-moodle", 31, True),
    ]
    now = datetime(2026, 2, 1, 12, tzinfo=timezone.utc)
    decided = plan_remote(infos, RetentionPolicy(strategy="daily", num_backups=5), now)
    victims = [b.id for b in decided.remove]
    assert len(victims) == 1 and victims[0].startswith(older)
    assert prune_remote(backend, victims) == victims
    assert list_backups(backend) == [RemoteBackup(NAME, True)]
