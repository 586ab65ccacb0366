"""TLS to the database (docs/tls.md), against a MariaDB that requires it.

The module starts its own throwaway server with a certificate from a CA the test makes
(SANs ``localhost`` and ``127.0.0.1``) and ``require_secure_transport=ON``: any TCP
connection moodump opened in the clear would fail, so a dump, restore or verify that
succeeds proves that every one of its connections (workers, the direct fetch path,
LOAD DATA LOCAL INFILE loaders, read-back, KILL QUERY) used TLS. The server also
listens on 127.0.0.2, an address its certificate does not name.
"""

from __future__ import annotations

import datetime
import ipaddress
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from helpers import moodump_cli
from moodump.config import load_config
from moodump.config.keys import is_known_env_name
from moodump.db import ConnSettings, connect
from moodump.db.connection import ssl_arguments
from moodump.db.credentials import ConnRequest, resolve_connection
from moodump.db.localserver import LocalServer, server_binaries
from moodump.errors import ConfigError, ConnectError
from moodump.jobs.wiring import conn_settings_for

# --------------------------------------------------------------------------- certificates

_NOW = datetime.datetime.now(datetime.timezone.utc)


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _builder(subject: str, issuer: x509.Name, key: ec.EllipticCurvePrivateKey, ca: bool):
    return (
        x509.CertificateBuilder()
        .subject_name(_name(subject))
        .issuer_name(issuer)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(_NOW - datetime.timedelta(days=1))
        .not_valid_after(_NOW + datetime.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )


def _write(path: Path, cert: x509.Certificate | None = None, key=None) -> str:
    if cert is not None:
        path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    else:
        path.write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.TraditionalOpenSSL,
                serialization.NoEncryption(),
            )
        )
    return str(path)


@dataclass(frozen=True)
class Pki:
    ca: str
    other_ca: str
    server_cert: str
    server_key: str
    client_cert: str
    client_key: str


def make_pki(d: Path) -> Pki:
    """A CA, a server certificate for localhost/127.0.0.1, a client certificate, and a
    second CA that signed nothing of this server's."""
    ca_key, other_key = (
        ec.generate_private_key(ec.SECP256R1()),
        ec.generate_private_key(ec.SECP256R1()),
    )
    ca = _builder("moodump test CA", _name("moodump test CA"), ca_key, True).sign(
        ca_key, hashes.SHA256()
    )
    other = _builder("unrelated CA", _name("unrelated CA"), other_key, True).sign(
        other_key, hashes.SHA256()
    )
    server_key = ec.generate_private_key(ec.SECP256R1())
    sans = [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
    server = (
        _builder("localhost", ca.subject, server_key, False)
        .add_extension(x509.SubjectAlternativeName(sans), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    client_key = ec.generate_private_key(ec.SECP256R1())
    client = _builder("moodump client", ca.subject, client_key, False).sign(ca_key, hashes.SHA256())
    return Pki(
        ca=_write(d / "ca.pem", ca),
        other_ca=_write(d / "other-ca.pem", other),
        server_cert=_write(d / "server-cert.pem", server),
        server_key=_write(d / "server-key.pem", key=server_key),
        client_cert=_write(d / "client-cert.pem", client),
        client_key=_write(d / "client-key.pem", key=client_key),
    )


# --------------------------------------------------------------------------- the server


@dataclass(frozen=True)
class TlsServer:
    port: int
    pki: Pki

    def settings(self, **kw) -> ConnSettings:
        base = {"host": "127.0.0.1", "port": self.port, "user": "root", "ssl_mode": "REQUIRED"}
        return ConnSettings(**{**base, **kw})

    def args(self, *extra: str, host: str = "127.0.0.1") -> list[str]:
        return ["-H", host, "-P", str(self.port), "-u", "root", *extra]


@pytest.fixture(scope="module")
def tls_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TlsServer]:
    if server_binaries() is None:
        pytest.skip("MariaDB server binaries are not installed")
    pki = make_pki(tmp_path_factory.mktemp("pki"))
    server = LocalServer(
        settings={
            "ssl_ca": pki.ca,
            "ssl_cert": pki.server_cert,
            "ssl_key": pki.server_key,
            "require_secure_transport": "ON",
            # a second loopback address, not named by the certificate
            "bind-address": "127.0.0.1,127.0.0.2",
        }
    ).start()
    try:
        yield TlsServer(server.port, pki)
    finally:
        server.stop()


pytestmark = pytest.mark.db


@pytest.fixture(scope="module")
def source_db(tls_server: TlsServer) -> str:
    with connect(tls_server.settings()) as c:
        c.execute("CREATE DATABASE tls_src CHARACTER SET utf8mb4")
        c.execute("CREATE TABLE tls_src.t (id INT PRIMARY KEY, name VARCHAR(40), data LONGBLOB)")
        c.execute(
            "INSERT INTO tls_src.t SELECT seq, CONCAT('näme ', seq), REPEAT(CHAR(seq % 256), "
            "seq % 500) FROM tls_src.seq_1_to_3000"
        )
    return "tls_src"


def _rows(server: TlsServer, db: str) -> list[tuple]:
    with connect(server.settings()) as c:
        return c.query(f"SELECT id, name, data FROM `{db}`.t ORDER BY id")


# --------------------------------------------------------------------------- pure


@pytest.mark.parametrize(
    "mode, expected",
    [
        ("DISABLED", {"ssl_disabled": True}),
        ("PREFERRED", {"ssl_disabled": False, "ssl_verify_cert": False}),
        ("REQUIRED", {"ssl_disabled": False, "ssl_verify_cert": False}),
        ("VERIFY_CA", {"ssl_disabled": False, "ssl_verify_cert": True}),
        (
            "VERIFY_IDENTITY",
            {"ssl_disabled": False, "ssl_verify_cert": True, "ssl_verify_identity": True},
        ),
    ],
)
def test_modes_map_onto_the_connector(mode: str, expected: dict, tmp_path: Path) -> None:
    ca = tmp_path / "ca.pem"
    ca.write_text("x")
    args = ssl_arguments(ConnSettings(ssl_mode=mode, ssl_ca=str(ca)))
    assert {k: v for k, v in args.items() if k != "ssl_ca"} == expected
    assert ("ssl_ca" in args) == (mode != "DISABLED")


def test_verify_without_a_ca_uses_the_system_bundle_and_files_must_exist() -> None:
    args = ssl_arguments(ConnSettings(ssl_mode="VERIFY_CA"))
    assert Path(args["ssl_ca"]).is_file()
    with pytest.raises(ConfigError, match=r"--ssl-ca file /nope\.pem"):
        ssl_arguments(ConnSettings(ssl_mode="REQUIRED", ssl_ca="/nope.pem"))
    with pytest.raises(ConfigError, match="both --ssl-cert and --ssl-key"):
        ssl_arguments(ConnSettings(ssl_cert=__file__))


def test_per_host_tls_keys_are_read_next_to_the_credentials() -> None:
    env = {"DB_0_X_SSL_MODE": "verify-identity", "DB_0_X_SSL_CA": "/ca.pem"}
    cfg = load_config(env, "db-0.x/moodle\nother/moodle\n", "backup.conf")
    spec, other = cfg.databases
    assert (spec.ssl_mode, spec.ssl_ca, spec.ssl_cert) == ("VERIFY_IDENTITY", "/ca.pem", None)
    assert other.ssl_mode is None
    assert spec.to_dict()["tls"] == {"ssl_mode": "VERIFY_IDENTITY", "ssl_ca": "/ca.pem"}
    assert "tls" not in other.to_dict()
    assert is_known_env_name("DB_0_X_SSL_KEY") and is_known_env_name("MOODUMP_SSL_MODE")
    assert not any("not a moodump setting" in n for n in cfg.notes)
    with pytest.raises(ConfigError, match="DB_0_X_SSL_MODE='sometimes'"):
        load_config({"DB_0_X_SSL_MODE": "sometimes"}, "db-0.x/moodle\n", "backup.conf")
    with pytest.raises(ConfigError, match="MOODUMP_SSL_MODE"):
        load_config({"MOODUMP_SSL_MODE": "yes"}, None, "backup.conf")


def test_tls_resolution_flag_then_option_file_then_environment(tmp_path: Path) -> None:
    cnf = tmp_path / "my.cnf"
    cnf.write_text("[client]\nssl-mode = VERIFY_CA\nssl-ca = /file-ca.pem\n")
    env = {"MOODUMP_SSL_MODE": "REQUIRED", "MOODUMP_SSL_CA": "/env-ca.pem"}
    s = resolve_connection(ConnRequest(defaults_file=cnf), env=env)
    assert (s.ssl_mode, s.ssl_ca) == ("VERIFY_CA", "/file-ca.pem")
    s = resolve_connection(ConnRequest(ssl_mode="DISABLED", defaults_file=cnf), env=env)
    assert (s.ssl_mode, s.ssl_ca) == ("DISABLED", "/file-ca.pem")
    s = resolve_connection(ConnRequest(), env=env)
    assert (s.ssl_mode, s.ssl_ca) == ("REQUIRED", "/env-ca.pem")
    assert resolve_connection(ConnRequest(), env={}).ssl_mode == "PREFERRED"


# --------------------------------------------------------------------------- server


def test_modes_against_a_server_that_requires_tls(tls_server: TlsServer) -> None:
    pki = tls_server.pki
    for mode in ("PREFERRED", "REQUIRED", "VERIFY_CA", "VERIFY_IDENTITY"):
        with connect(tls_server.settings(ssl_mode=mode, ssl_ca=pki.ca)) as c:
            assert c.cipher(), mode
    client = tls_server.settings(
        ssl_mode="VERIFY_IDENTITY", ssl_ca=pki.ca, ssl_cert=pki.client_cert, ssl_key=pki.client_key
    )
    with connect(client) as c:
        assert c.cipher()
    # VERIFY_CA does not check the name: 127.0.0.2 is not in the certificate
    with connect(tls_server.settings(host="127.0.0.2", ssl_mode="VERIFY_CA", ssl_ca=pki.ca)) as c:
        assert c.cipher()


def test_wrong_ca_wrong_name_and_tls_off_fail_clearly(tls_server: TlsServer) -> None:
    pki = tls_server.pki
    with pytest.raises(ConnectError) as e:
        connect(tls_server.settings(ssl_mode="VERIFY_CA", ssl_ca=pki.other_ca))
    assert "TLS certificate verification failed" in str(e.value)
    assert pki.other_ca in str(e.value) and "--ssl-ca" in str(e.value.hint)
    with pytest.raises(ConnectError) as e:
        connect(tls_server.settings(host="127.0.0.2", ssl_mode="VERIFY_IDENTITY", ssl_ca=pki.ca))
    assert "TLS host name verification failed" in str(e.value) and "'127.0.0.2'" in str(e.value)
    with pytest.raises(ConnectError) as e:
        connect(tls_server.settings(ssl_mode="DISABLED"))
    assert "requires secure transport" in str(e.value)


def test_required_refuses_a_server_without_tls(mariadb: LocalServer) -> None:
    """The connector falls back to a clear connection; moodump checks Ssl_cipher."""
    plain = ConnSettings(host="127.0.0.1", port=mariadb.port, user="root")
    with connect(plain) as c:  # PREFERRED: clear, since the server offers no TLS
        assert c.cipher() == ""
    for mode in ("REQUIRED", "VERIFY_CA"):
        with pytest.raises(ConnectError, match=f"--ssl-mode {mode} needs an encrypted"):
            connect(ConnSettings(host="127.0.0.1", port=mariadb.port, user="root", ssl_mode=mode))


def test_direct_fetch_path_streams_rows_over_tls(
    tls_server: TlsServer, source_db: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``_speedups.Stream`` reads on the connector's session: the same bytes over TLS."""
    rowstream = pytest.importorskip("moodump.db.rowstream")
    pytest.importorskip("moodump.db._speedups")
    from moodump.formats import Column

    cols = [
        Column("id", "int", "int(11)", False),
        Column("name", "varchar", "varchar(40)", True),
        Column("data", "longblob", "longblob", True),
    ]

    def stream(direct: bool) -> tuple[str, bytes, int]:
        monkeypatch.setenv("MOODUMP_DIRECT_FETCH", "true" if direct else "false")
        out: list[bytes] = []
        with connect(
            tls_server.settings(ssl_mode="VERIFY_IDENTITY", ssl_ca=tls_server.pki.ca)
        ) as c:
            assert c.cipher()
            path = rowstream.fetch_path(c)
            res = rowstream.stream_rows(
                c, source_db, "t", cols, where="", order_by=["id"],
                sink=lambda data, rows: out.append(data),
            )  # fmt: skip
        return path, b"".join(out), res.rows

    direct = stream(True)
    connector = stream(False)
    assert (direct[0], connector[0]) == ("direct", "c-format")
    assert direct[2] == 3000 and direct[1:] == connector[1:]


def test_cli_dump_restore_verify_round_trip_over_verified_tls(
    tls_server: TlsServer, source_db: str, tmp_path: Path
) -> None:
    pki = tls_server.pki
    verified = ("--ssl-mode", "VERIFY_IDENTITY", "--ssl-ca", pki.ca)
    client = ("--ssl-cert", pki.client_cert, "--ssl-key", pki.client_key)
    out = tmp_path / "backup"
    r = moodump_cli(
        "--log-level", "debug", "dump", *tls_server.args(*verified, *client),
        "-q", "-t", "2", "-o", str(out), source_db,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    key_body = Path(pki.client_key).read_text().splitlines()[1]
    assert key_body not in r.stderr + r.stdout  # the key's content is never logged

    r = moodump_cli(
        "restore", *tls_server.args("--ssl-mode", "VERIFY_CA", "--ssl-ca", pki.ca),
        "-d", "tls_copy", str(out),
    )  # fmt: skip
    assert r.returncode == 0, r.stderr  # LOAD DATA LOCAL INFILE over TLS
    assert _rows(tls_server, "tls_copy") == _rows(tls_server, source_db)

    r = moodump_cli("verify", "--json", *tls_server.args(*verified), str(out))
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["passed"] is True


def test_cli_failures_exit_3_and_name_the_check(tls_server: TlsServer, tmp_path: Path) -> None:
    pki = tls_server.pki
    cases = [
        (("--ssl-mode", "VERIFY_IDENTITY", "--ssl-ca", pki.other_ca), "127.0.0.1",
         "TLS certificate verification failed"),
        (("--ssl-mode", "VERIFY_IDENTITY", "--ssl-ca", pki.ca), "127.0.0.2",
         "TLS host name verification failed"),
        (("--ssl-mode", "DISABLED"), "127.0.0.1", "requires secure transport"),
    ]  # fmt: skip
    for flags, host, message in cases:
        r = moodump_cli(
            "dump", *tls_server.args(*flags, host=host), "-q", "-o", str(tmp_path / "x"), "tls_src"
        )
        assert r.returncode == 3, (flags, r.stderr)
        assert message in r.stderr


def test_scheduler_uses_per_host_tls(tls_server: TlsServer, source_db: str) -> None:
    """``<HOST>_SSL_*`` reach the scheduler's connections (jobs.wiring.conn_settings_for)."""
    conf = f"127.0.0.1:{tls_server.port}/{source_db}\n"
    env = {"DATABASE_USER": "root", "127_0_0_1_SSL_MODE": "VERIFY_IDENTITY"}
    cfg = load_config({**env, "127_0_0_1_SSL_CA": tls_server.pki.ca}, conf, "backup.conf")
    settings = conn_settings_for(cfg, cfg.databases[0])
    assert (settings.ssl_mode, settings.ssl_ca) == ("VERIFY_IDENTITY", tls_server.pki.ca)
    with connect(settings) as c:
        assert c.cipher()
    cfg = load_config({**env, "127_0_0_1_SSL_CA": tls_server.pki.other_ca}, conf, "backup.conf")
    with pytest.raises(ConnectError, match="certificate verification failed"):
        connect(conn_settings_for(cfg, cfg.databases[0]))


@pytest.mark.parametrize(
    "mode, mariadb_flags, mysql_flags",
    [
        ("DISABLED", ["--skip-ssl"], ["--ssl-mode=DISABLED"]),
        ("PREFERRED", ["--ssl", "--ssl-ca=/ca"], ["--ssl-mode=PREFERRED", "--ssl-ca=/ca"]),
        ("REQUIRED", ["--ssl", "--ssl-ca=/ca"], ["--ssl-mode=REQUIRED", "--ssl-ca=/ca"]),
        (
            "VERIFY_IDENTITY",
            ["--ssl", "--ssl-ca=/ca", "--ssl-verify-server-cert"],
            ["--ssl-mode=VERIFY_IDENTITY", "--ssl-ca=/ca"],
        ),
    ],
)
def test_stock_client_flags_for_old_backups(
    mode: str, mariadb_flags: list, mysql_flags: list
) -> None:
    """An old .sql.gz backup is replayed by the stock client, with the same TLS mode."""
    from moodump.legacy import _client_tls_args

    settings = ConnSettings(ssl_mode=mode, ssl_ca="/ca")
    assert _client_tls_args("/usr/bin/mariadb", settings) == mariadb_flags
    assert _client_tls_args("/usr/bin/mysql", settings) == mysql_flags


def test_old_backup_is_replayed_over_tls(tls_server: TlsServer, tmp_path: Path) -> None:
    """The stock client gets the mode too: the server refuses it in the clear."""
    import gzip

    old = tmp_path / "mysql-moodle_2026-11-24_01-00-00.sql.gz"
    old.write_bytes(
        gzip.compress(
            b"CREATE TABLE `t` (`id` int NOT NULL, PRIMARY KEY (`id`));\n"
            b"INSERT INTO `t` VALUES (1),(2),(3);\n"
            b"-- Dump completed on 2026-11-24  1:00:01\n"
        )
    )
    flags = ("--ssl-mode", "VERIFY_IDENTITY", "--ssl-ca", tls_server.pki.ca)
    r = moodump_cli("restore", *tls_server.args(*flags), "-d", "tls_legacy", str(old))
    assert r.returncode == 0, r.stderr
    with connect(tls_server.settings()) as c:
        assert c.scalar("SELECT COUNT(*) FROM tls_legacy.t") == b"3"
