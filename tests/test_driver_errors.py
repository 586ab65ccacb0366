"""Driver errors -> moodump errors (moodump.db.connection.map_driver_error).

The error numbers map_driver_error knows are read from the module itself (its ER_/CR_
constants and every number its body compares with), so a new entry fails here until
EXPECTED says which class and exit code it must give (docs/exit-codes.md). The last
tests produce the errors for real against the rig's MariaDB.
"""

from __future__ import annotations

import ast
import inspect
import socket
import textwrap
import uuid
from collections.abc import Callable, Iterator

import _mysql_connector
import mysql.connector.errors as driver_errors
import pytest

from moodump.db import ConnSettings, connect
from moodump.db import connection as conn_module
from moodump.db.connection import is_driver_error, map_driver_error
from moodump.db.rowstream import stream_rows
from moodump.errors import (
    EXIT_CODES,
    ConnectError,
    MoodumpError,
    NotFoundError,
    PrivilegeError,
    SchemaChanged,
    ServerError,
    ServerLost,
    SnapshotError,
    StorageError,
)
from moodump.formats import Column

# errno -> (class, exit code), from docs/exit-codes.md. 3 cannot connect/authenticate,
# 4 privileges, 5 not found, 6 server failure, 7 storage (here: the server's disk),
# 9 the snapshot broke (DDL, lock wait).
EXPECTED: dict[int, tuple[type[MoodumpError], int]] = {
    1045: (ConnectError, 3),  # access denied (password)
    1698: (ConnectError, 3),  # access denied by the account's plugin (unix_socket over TCP)
    2002: (ConnectError, 3),  # cannot connect through the socket
    2003: (ConnectError, 3),  # cannot connect over TCP
    2005: (ConnectError, 3),  # unknown host
    2059: (ConnectError, 3),  # authentication plugin cannot be loaded
    2026: (ConnectError, 3),  # TLS failed (certificate, files, handshake; docs/tls.md)
    1049: (NotFoundError, 5),  # unknown database
    1146: (NotFoundError, 5),  # table does not exist
    1044: (PrivilegeError, 4),  # access denied to the database
    1142: (PrivilegeError, 4),  # table privilege missing
    1143: (PrivilegeError, 4),  # column privilege missing
    1227: (PrivilegeError, 4),  # needs SUPER/PROCESS/RELOAD/...
    1370: (PrivilegeError, 4),  # routine privilege missing
    1205: (SnapshotError, 9),  # lock wait timeout
    1412: (SchemaChanged, 9),  # table definition changed (a SnapshotError; runs retry it)
    1317: (ServerLost, 6),  # query interrupted (KILL QUERY)
    1927: (ServerLost, 6),  # connection killed
    2006: (ServerLost, 6),  # server has gone away
    2013: (ServerLost, 6),  # lost connection during query
    3024: (ServerLost, 6),  # max_statement_time exceeded
    1932: (ServerError, 6),  # defined, but missing in its engine: the server's damage
    3: (StorageError, 7),  # error writing file on the server
    1021: (StorageError, 7),  # disk full on the server
    1114: (StorageError, 7),  # the table is full
    1030: (ServerError, 6),  # "Got error N from storage engine": only N=28 is a full disk
}
FALLBACK = (ServerError, 6)


def _mapped_errnos() -> set[int]:
    """Every errno the module names or map_driver_error compares with."""
    found = {v for k, v in vars(conn_module).items() if k.startswith(("ER_", "CR_"))}
    tree = ast.parse(textwrap.dedent(inspect.getsource(map_driver_error)))
    for node in ast.walk(tree):
        if isinstance(node, ast.Compare):
            for sub in ast.walk(node):
                if isinstance(sub, ast.Constant) and type(sub.value) is int:
                    found.add(sub.value)
                elif isinstance(sub, ast.Name) and sub.id.startswith(("ER_", "CR_", "_")):
                    value = getattr(conn_module, sub.id, None)
                    found |= set(value) if isinstance(value, (set, frozenset)) else {value}
    return {e for e in found if isinstance(e, int)}


MAPPED = sorted(_mapped_errnos())


def _c_error(errno: int, msg: str) -> Exception:
    """As the C extension raises it."""
    exc = _mysql_connector.MySQLInterfaceError(msg)
    exc.errno = errno
    exc.msg = msg
    exc.sqlstate = "HY000"
    return exc


def _py_error(errno: int, msg: str) -> Exception:
    """As the connector's Python layer raises it."""
    return driver_errors.DatabaseError(msg=msg, errno=errno)


DRIVERS: dict[str, Callable[[int, str], Exception]] = {"C": _c_error, "Python": _py_error}


def test_the_table_is_read_from_the_module():
    assert {1045, 1049, 1146, 2013, 1205} <= set(MAPPED)  # the scan itself works
    missing = sorted(set(MAPPED) - set(EXPECTED))
    assert not missing, f"map_driver_error knows {missing}: add them to EXPECTED"


@pytest.mark.parametrize("driver", list(DRIVERS))
@pytest.mark.parametrize("errno", MAPPED)
def test_every_known_errno_maps_to_its_documented_class(errno, driver):
    cls, code = EXPECTED.get(errno, (None, None))
    assert cls is not None, f"errno {errno} is new: add it to EXPECTED"
    exc = DRIVERS[driver](errno, "server says no")
    err = map_driver_error(exc, "reading table mdl_user")
    assert type(err) is cls
    assert err.exit_code == code and code in EXIT_CODES
    assert err.message == f"reading table mdl_user: server says no (error {errno})"
    assert err.hint  # every mapped error names the next step


@pytest.mark.parametrize(
    ("msg", "expected"),
    [
        ('Got error 28 "No space left on device" from storage engine InnoDB', StorageError),
        ('Got error 168 "Unknown (generic) error from engine" from storage engine', ServerError),
    ],
)
def test_storage_engine_error_is_a_full_disk_only_for_errno_28(msg, expected):
    assert type(map_driver_error(_c_error(1030, msg), "ctx")) is expected


@pytest.mark.parametrize("driver", list(DRIVERS))
@pytest.mark.parametrize("errno", [1064, 1054, 1451, 4000, 99999])
def test_unknown_errnos_fall_back_to_a_server_error(errno, driver):
    assert errno not in MAPPED
    err = map_driver_error(DRIVERS[driver](errno, "x"), "ctx")
    assert (type(err), err.exit_code) == FALLBACK
    assert err.message == f"ctx: x (error {errno})"
    assert err.hint == "see the server error above"


def test_error_without_a_number_is_a_server_error():
    err = map_driver_error(_mysql_connector.MySQLInterfaceError("no errno at all"), "ctx")
    assert (type(err), err.exit_code) == FALLBACK
    assert err.message == "ctx: no errno at all"


def test_the_two_ways_to_be_refused_a_login_both_name_the_password():
    for errno in (1045, 1698):
        err = map_driver_error(_c_error(errno, "Access denied for user 'root'@'h'"), "ctx")
        assert type(err) is ConnectError and "password" in (err.hint or "")
    assert "unix_socket" in (map_driver_error(_c_error(1698, "x"), "ctx").hint or "")


def test_a_table_missing_in_its_engine_is_a_server_failure_with_its_own_hint():
    """1932: the table is defined but its engine lacks it; not a wrong name (exit 5)."""
    err = map_driver_error(_c_error(1932, "Table 'm.t' doesn't exist in engine"), "ctx")
    assert (type(err), err.exit_code) == (ServerError, 6)
    assert "error log" in (err.hint or "") and err.hint != "see the server error above"


def test_only_driver_errors_are_driver_errors():
    from moodump.db import _speedups

    assert is_driver_error(_c_error(2013, "lost"))
    assert is_driver_error(_py_error(2013, "lost"))
    assert is_driver_error(_speedups.StreamError(2013, "lost"))
    for local in (
        OSError(28, "No space left on device"),
        BrokenPipeError(32, "Broken pipe"),
        ValueError("a bug"),
        Exception(1146, "looks like one, is not"),
    ):
        assert not is_driver_error(local)


def test_errno_may_come_as_the_first_argument():
    """Some driver paths raise Error(errno, msg) without an errno attribute."""
    err = map_driver_error(Exception(1146, "Table 'm.t' doesn't exist"), "ctx")
    assert type(err) is NotFoundError and "(error 1146)" in err.message


# --------------------------------------------------------------------------- real errors (server)


def _settings(base: ConnSettings, **kw) -> ConnSettings:
    return ConnSettings(host=base.host, port=base.port, **kw)


@pytest.fixture()
def fresh_user(root_settings) -> Iterator[tuple[str, str]]:
    """A new account with a password and no privileges at all; dropped afterwards."""
    name, password = "u_" + uuid.uuid4().hex[:10], "pw-" + uuid.uuid4().hex[:8]
    with connect(root_settings) as c:
        c.execute(f"CREATE USER '{name}'@'%' IDENTIFIED BY '{password}'")
    yield name, password
    with connect(root_settings) as c:
        c.execute(f"DROP USER IF EXISTS '{name}'@'%'")


def _driver_errno(err: BaseException) -> int:
    return err.__cause__.errno  # the driver's error survives as the cause


@pytest.mark.db
def test_wrong_password_is_a_connect_error(root_settings, fresh_user):
    name, _ = fresh_user
    with pytest.raises(ConnectError) as err:
        connect(_settings(root_settings, user=name, password="wrong"))
    assert err.value.exit_code == 3 and _driver_errno(err.value) == 1045
    assert "password" in (err.value.hint or "")
    assert f"cannot connect to {name}@" in err.value.message


@pytest.mark.db
def test_nothing_listening_is_a_connect_error(root_settings):
    with socket.socket() as s:  # a port that was free a moment ago
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(ConnectError) as err:
        connect(ConnSettings(host="127.0.0.1", port=port, connect_timeout=5))
    assert err.value.exit_code == 3 and _driver_errno(err.value) == 2003


@pytest.mark.db
def test_unknown_database_and_table_are_not_found(root_settings, fresh_db):
    with pytest.raises(NotFoundError) as err:
        connect(root_settings.with_database(fresh_db + "_nope"))
    assert err.value.exit_code == 5 and _driver_errno(err.value) == 1049
    with connect(root_settings) as c, pytest.raises(NotFoundError) as err:
        c.query(f"SELECT * FROM `{fresh_db}`.mdl_nope")
    assert err.value.exit_code == 5 and _driver_errno(err.value) == 1146


@pytest.mark.db
def test_missing_privileges_of_a_fresh_user(root_settings, fresh_db, fresh_user):
    with connect(root_settings) as c:
        c.execute(f"CREATE TABLE `{fresh_db}`.t (id INT PRIMARY KEY)")
    name, password = fresh_user
    user = _settings(root_settings, user=name, password=password)
    with pytest.raises(PrivilegeError) as err:
        connect(user.with_database(fresh_db))
    assert err.value.exit_code == 4 and _driver_errno(err.value) == 1044
    with connect(user) as c:
        for sql, errno in [
            (f"SELECT * FROM `{fresh_db}`.t", 1142),
            ("SHOW ENGINE INNODB STATUS", 1227),
        ]:
            with pytest.raises(PrivilegeError) as err:
                c.query(sql)
            assert err.value.exit_code == 4 and _driver_errno(err.value) == errno


@pytest.mark.db
def test_killed_connection_is_a_server_error(root_settings):
    victim = connect(root_settings)
    try:
        with connect(root_settings) as killer:
            killer.execute(f"KILL CONNECTION {victim.thread_id()}")
        with pytest.raises(ServerError) as err:
            victim.query("SELECT 1")
        assert err.value.exit_code == 6
        assert _driver_errno(err.value) in {2006, 2013, 1927}
        assert "killed the query" in (err.value.hint or "")
    finally:
        victim.close()


@pytest.mark.db
def test_lock_wait_timeout_is_a_snapshot_error(root_settings, fresh_db):
    with connect(root_settings) as c:
        c.execute(f"CREATE TABLE `{fresh_db}`.t (id INT PRIMARY KEY) ENGINE=InnoDB")
        c.execute(f"INSERT INTO `{fresh_db}`.t VALUES (1)")
    with connect(root_settings) as holder, connect(root_settings) as waiter:
        holder.execute("START TRANSACTION")
        holder.query(f"SELECT * FROM `{fresh_db}`.t WHERE id = 1 FOR UPDATE")
        waiter.execute("SET SESSION innodb_lock_wait_timeout = 1")
        with pytest.raises(SnapshotError) as err:
            waiter.query(f"SELECT * FROM `{fresh_db}`.t WHERE id = 1 FOR UPDATE")
        holder.execute("ROLLBACK")
    assert err.value.exit_code == 9 and _driver_errno(err.value) == 1205


@pytest.mark.db
def test_sql_error_is_a_server_error(root_settings):
    with connect(root_settings) as c, pytest.raises(ServerError) as err:
        c.query("SELEC 1")
    assert err.value.exit_code == 6 and _driver_errno(err.value) == 1064
    assert err.value.message.startswith("query failed (SELEC 1): ")


@pytest.mark.db
def test_socket_auth_account_over_tcp_is_a_connect_error(root_settings):
    name = "s_" + uuid.uuid4().hex[:10]
    with connect(root_settings) as c:
        try:
            c.execute(f"CREATE USER '{name}'@'%' IDENTIFIED VIA unix_socket")
        except ServerError as exc:
            pytest.skip(f"no unix_socket plugin on this server: {exc}")
    try:
        with pytest.raises(ConnectError) as err:
            connect(_settings(root_settings, user=name, password="anything"))
        assert err.value.exit_code == 3 and _driver_errno(err.value) == 1698
        assert "password" in (err.value.hint or "") and "--socket" in (err.value.hint or "")
    finally:
        with connect(root_settings) as c:
            c.execute(f"DROP USER IF EXISTS '{name}'@'%'")


@pytest.mark.db
def test_a_local_error_inside_a_mapped_block_stays_what_it_is(root_settings):
    """An OSError has an errno too: it must not come out as a server error numbered 28."""
    disk_full = OSError(28, "No space left on device")
    with connect(root_settings) as c:
        with pytest.raises(OSError) as err, c.mapped("reading table t"):
            raise disk_full
        assert err.value is disk_full
        with pytest.raises(ServerError) as mapped, c.mapped("reading table t"):
            c.query("SELEC 1")  # a driver error in the same block is still mapped
        assert _driver_errno(mapped.value) == 1064


@pytest.mark.db
@pytest.mark.parametrize("server_format", [False, True], ids=["client format", "server format"])
def test_a_sink_that_fails_to_write_is_not_a_server_error(
    root_settings, fresh_db, monkeypatch, server_format
):
    """The dump's sink writes files inside the row stream's mapped block."""
    monkeypatch.setenv("MOODUMP_SERVER_FORMAT", "true" if server_format else "false")
    with connect(root_settings) as c:
        c.execute(f"CREATE TABLE `{fresh_db}`.t (id INT PRIMARY KEY)")
        c.execute(f"INSERT INTO `{fresh_db}`.t SELECT seq FROM `{fresh_db}`.seq_1_to_1000")
    disk_full = OSError(28, "No space left on device")

    def sink(data: bytes, rows: int) -> None:
        raise disk_full

    with connect(root_settings) as c:
        with pytest.raises(OSError) as err:
            stream_rows(
                c, fresh_db, "t", [Column("id", "int", "int(11)", False)],
                where="", order_by=["id"], sink=sink,
            )
        assert err.value is disk_full
        assert c.scalar("SELECT 1") == b"1"  # the session is still usable
