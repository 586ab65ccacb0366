"""Where connection settings and the password come from (moodump.db.credentials).

resolve_connection is a pure function of the request, an option file and an environment
mapping, so the precedence is tested as a table over every combination of sources.
Option-file parsing is also compared with MariaDB's own parser (my_print_defaults).
"""

from __future__ import annotations

import itertools
import shutil
import subprocess
from dataclasses import replace
from pathlib import Path

import pytest

from moodump.db import ConnSettings
from moodump.db.credentials import (
    ConnRequest,
    read_option_file,
    read_secret_file,
    resolve_connection,
)
from moodump.errors import ConfigError

SECRET = "hunter2-Ünïcode secret"


def _cnf(tmp_path: Path, text: str | bytes, name: str = "my.cnf") -> Path:
    path = tmp_path / name
    path.write_bytes(text.encode("utf-8") if isinstance(text, str) else text)
    return path


# --------------------------------------------------------------------------- field precedence

# field -> (explicit request value, option-file line value, env var and value, expected
# value for explicit / option / env / default). socket has no environment variable.
FIELDS = {
    "host": (
        "db-flag",
        "db-cnf",
        ("MYSQL_HOST", "db-env"),
        ("db-flag", "db-cnf", "db-env", "127.0.0.1"),
    ),
    "port": (3310, "3311", ("MYSQL_TCP_PORT", "3312"), (3310, 3311, 3312, 3306)),
    "user": ("u-flag", "u-cnf", ("MYSQL_USER", "u-env"), ("u-flag", "u-cnf", "u-env", "root")),
    "socket": (
        "/run/flag.sock",
        "/run/cnf.sock",
        None,
        ("/run/flag.sock", "/run/cnf.sock", None, None),
    ),
}
LAYERS = ("explicit", "option", "env")


def _precedence_cases():
    for field, (_, _, env, _) in FIELDS.items():
        for present in itertools.product([True, False], repeat=3):
            if env is None and present[2]:
                continue
            given = "+".join(n for n, p in zip(LAYERS, present, strict=True) if p) or "nothing"
            yield pytest.param(field, present, id=f"{field}-{given}")


@pytest.mark.parametrize(("field", "present"), list(_precedence_cases()))
def test_each_field_comes_from_the_first_source_that_has_it(tmp_path, field, present):
    explicit, option, env_pair, expected = FIELDS[field]
    has_explicit, has_option, has_env = present
    request = ConnRequest(**({field: explicit} if has_explicit else {}))
    if has_option:
        cnf = _cnf(tmp_path, f"[client]\n{field} = {option}\n")
        request = replace(request, defaults_file=cnf)
    env = dict([env_pair]) if has_env else {}
    got = getattr(resolve_connection(request, env=env), field)
    winner = next((i for i, p in enumerate(present) if p), 3)
    assert got == expected[winner]


def test_user_falls_back_to_the_login_name_before_root(tmp_path):
    assert resolve_connection(ConnRequest(), env={"USER": "alice"}).user == "alice"
    both = {"USER": "alice", "MYSQL_USER": "backup"}
    assert resolve_connection(ConnRequest(), env=both).user == "backup"
    opt = ConnRequest(defaults_file=_cnf(tmp_path, "[client]\nuser=moodle\n"))
    assert resolve_connection(opt, env=both).user == "moodle"
    assert resolve_connection(ConnRequest(), env={}).user == "root"


def test_defaults_and_base_settings(tmp_path):
    s = resolve_connection(ConnRequest(), env={})
    assert (s.host, s.port, s.socket, s.user, s.password) == ("127.0.0.1", 3306, None, "root", "")
    base = ConnSettings(
        host="ignored", connect_timeout=3, read_timeout=5, ssl_ca="/ca.pem", database="moodle"
    )
    s = resolve_connection(ConnRequest(user="u"), env={}, base=base)
    # the fields resolved here replace base's; the rest (timeouts, TLS, database) stay
    assert (s.host, s.user) == ("127.0.0.1", "u")
    assert (s.connect_timeout, s.read_timeout, s.ssl_ca, s.database) == (3, 5, "/ca.pem", "moodle")


def test_a_debian_style_option_file(tmp_path):
    path = _cnf(
        tmp_path,
        "# Automatically generated for Debian scripts. DO NOT TOUCH!\n"
        "[client]\n"
        "host     = localhost\n"
        "user     = debian-sys-maint\n"
        'password = "p@ss w0rd#1"\n'
        "socket   = /run/mysqld/mysqld.sock\n"
        "[mysql_upgrade]\n"
        "host     = elsewhere\n"
        "basedir  = /usr\n",
    )
    s = resolve_connection(ConnRequest(defaults_file=path), env={"MYSQL_PWD": "env"})
    assert (s.host, s.user, s.password, s.socket) == (
        "localhost",
        "debian-sys-maint",
        "p@ss w0rd#1",
        "/run/mysqld/mysqld.sock",
    )


# --------------------------------------------------------------------------- password precedence

PW_LAYERS = ("explicit", "file", "option", "env", "prompt")


def _password_cases():
    for present in itertools.product([True, False], repeat=5):
        given = "+".join(n for n, p in zip(PW_LAYERS, present, strict=True) if p) or "nothing"
        yield pytest.param(present, id=given)


@pytest.mark.parametrize("present", list(_password_cases()))
def test_password_comes_from_the_first_source_that_has_it(tmp_path, present):
    has_explicit, has_file, has_option, has_env, interactive = present
    secret_file = tmp_path / "pw"
    secret_file.write_text("from-file\n")
    request = ConnRequest(
        password="from-flag" if has_explicit else None,
        password_file=secret_file if has_file else None,
        defaults_file=_cnf(tmp_path, "[client]\npassword = from-option\n") if has_option else None,
    )
    prompts: list[int] = []

    def prompt() -> str:
        prompts.append(1)
        return "typed"

    env = {"MYSQL_PWD": "from-env"} if has_env else {}
    got = resolve_connection(request, env=env, interactive=interactive, prompt=prompt).password
    expected = ["from-flag", "from-file", "from-option", "from-env", "typed", ""]
    winner = next((i for i, p in enumerate(present) if p), 5)
    assert got == expected[winner]
    assert prompts == ([1] if winner == 4 else [])  # prompt only as the last resort


def test_explicit_empty_password_is_an_answer():
    s = resolve_connection(ConnRequest(password=""), env={"MYSQL_PWD": "env"}, interactive=True)
    assert s.password == ""


def test_no_prompt_without_a_terminal_or_without_a_prompt_function():
    def prompt() -> str:
        raise AssertionError("prompted")

    assert (
        resolve_connection(ConnRequest(), env={}, interactive=False, prompt=prompt).password == ""
    )
    assert resolve_connection(ConnRequest(), env={}, interactive=True, prompt=None).password == ""


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b"s3cret", "s3cret"),  # Kubernetes secrets have no line end
        (b"s3cret\n", "s3cret"),
        (b"s3cret\r\n", "s3cret"),
        (b"s3cret\nsecond line\n", "s3cret"),
        (b"  spaces kept \n", "  spaces kept "),
        (b"p#ss;w=rd\"'\\\n", "p#ss;w=rd\"'\\"),
        ("päss\n".encode(), "päss"),
        (b"", ""),
        (b"\n", ""),
    ],
    ids=repr,
)
def test_password_file_gives_its_first_line(tmp_path, content, expected):
    path = tmp_path / "pw"
    path.write_bytes(content)
    assert read_secret_file(path) == expected
    s = resolve_connection(ConnRequest(password_file=path), env={"MYSQL_PWD": "env"})
    assert s.password == expected


def test_missing_password_file_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError) as err:
        resolve_connection(ConnRequest(password_file=tmp_path / "nope"), env={})
    assert str(tmp_path / "nope") in err.value.message
    assert "permissions" in (err.value.hint or "") and err.value.exit_code == 2
    with pytest.raises(ConfigError) as err:
        read_secret_file(tmp_path, what="identity file")  # a directory
    assert err.value.message.startswith("cannot read identity file")


def test_password_file_that_is_not_utf8_is_a_config_error(tmp_path):
    (tmp_path / "pw").write_bytes(b"caf\xe9\n")  # latin-1
    with pytest.raises(ConfigError) as err:
        read_secret_file(tmp_path / "pw")
    assert err.value.message == f"password file {tmp_path / 'pw'} is not UTF-8 text"
    assert "UTF-8" in (err.value.hint or "") and err.value.exit_code == 2
    assert "caf" not in str(err.value) and err.value.__cause__ is None


@pytest.mark.parametrize("separator", ["\x0b", "\x0c", "\x1c", "\x85", "\u2028"])
def test_only_cr_and_lf_end_the_password_line(tmp_path, separator):
    """str.splitlines() would cut the password at these; they are password characters."""
    (tmp_path / "pw").write_text(f"a{separator}b\nsecond line\n", encoding="utf-8")
    assert read_secret_file(tmp_path / "pw") == f"a{separator}b"
    (tmp_path / "pw").write_bytes(b"old mac\rsecond")
    assert read_secret_file(tmp_path / "pw") == "old mac"


# --------------------------------------------------------------------------- option files


@pytest.mark.parametrize("section", ["client", "mysql", "mariadb-client", "client-mariadb"])
def test_every_client_section_is_read(tmp_path, section):
    path = _cnf(tmp_path, f"[{section}]\nhost = h-{section}\nport = 3399\n")
    s = resolve_connection(ConnRequest(defaults_file=path), env={"MYSQL_HOST": "env"})
    assert (s.host, s.port) == (f"h-{section}", 3399)


def test_server_sections_are_ignored(tmp_path):
    path = _cnf(
        tmp_path,
        "[mysqld]\nport = 3307\nuser = mysql\n[server]\nhost = nope\n[client]\nuser = backup\n",
    )
    assert read_option_file(path) == {"user": "backup"}


@pytest.mark.parametrize("section", ["mysql", "mariadb-client", "client-mariadb"])
def test_client_program_sections_override_client(tmp_path, section):
    path = _cnf(tmp_path, f"[client]\nuser = a\nhost = h\n[{section}]\nuser = b\n")
    assert read_option_file(path) == {"user": "b", "host": "h"}


def test_option_file_syntax(tmp_path):
    path = _cnf(
        tmp_path,
        "# comment\n"
        "; another comment\n"
        "[client]\n"
        "ssl\n"  # a flag without a value: ignored, not an error
        "ssl_ca = /etc/ca.pem\n"
        "ssl-cert=/etc/cert.pem\n"
        'user = "bob smith"\n'
        "password = 'se#cr;et'\n"
        "host=first\n"
        "host=second\n",
    )
    assert read_option_file(path) == {
        "ssl-ca": "/etc/ca.pem",  # _ and - are the same in option names
        "ssl-cert": "/etc/cert.pem",
        "user": "bob smith",
        "password": "se#cr;et",
        "host": "second",  # the last one wins, as for the mariadb client
    }


@pytest.mark.parametrize(
    ("where", "text"),
    [
        ("option file", "[client]\nport = 33o6\n"),
        ("environment", "[client]\nuser = u\n"),
    ],
)
def test_bad_port_is_a_config_error_with_a_hint(tmp_path, where, text):
    path = _cnf(tmp_path, text)
    with pytest.raises(ConfigError) as err:
        resolve_connection(ConnRequest(defaults_file=path), env={"MYSQL_TCP_PORT": "3306x"})
    bad = "33o6" if where == "option file" else "3306x"
    assert err.value.message == f"port {bad!r} is not a number"
    assert "MYSQL_TCP_PORT" in (err.value.hint or "") and err.value.exit_code == 2


def test_missing_or_unreadable_option_file_is_a_config_error(tmp_path):
    for path in (tmp_path / "missing.cnf", tmp_path):
        with pytest.raises(ConfigError) as err:
            resolve_connection(ConnRequest(defaults_file=path), env={})
        assert err.value.message.startswith(f"cannot read option file {path}")
        assert "--defaults-file" in (err.value.hint or "")


@pytest.mark.parametrize(
    "text",
    ["user = bob\n[client]\n", "[client\nuser = x\n", "[client]\n=novalue\n"],
    ids=["no section header", "unclosed section header", "empty key"],
)
def test_malformed_option_file_is_a_config_error(tmp_path, text):
    path = _cnf(tmp_path, text)
    with pytest.raises(ConfigError) as err:
        read_option_file(path)
    assert err.value.message.startswith(f"option file {path} is malformed")
    assert err.value.hint == "fix the file"


@pytest.mark.parametrize(
    ("text", "where"),
    [
        (f"password = {SECRET}\n[client]\nuser = u\n", "line 1 has an option before"),
        (f"[client]\nuser = u\n[client password = {SECRET}\n", "line 3 has a section header"),
        (f"[client]\n= {SECRET}\n", "line 2 has an option without a name"),
        (f"[client]\n!include {SECRET}\n!includedir {SECRET}\n", "line 3 names an !includedir"),
    ],
    ids=["before any section", "in a section header", "without a name", "in an !includedir"],
)
def test_malformed_option_file_error_never_shows_the_password(tmp_path, text, where):
    """The error names the file and the line; what is on the line stays out of it."""
    path = _cnf(tmp_path, text)
    with pytest.raises(ConfigError) as err:
        read_option_file(path)
    assert err.value.message.startswith(f"option file {path} is malformed: {where}")
    shown = str(err.value) + repr(err.value.__cause__) + repr(err.value.__context__)
    assert SECRET not in shown and "hunter2" not in shown


def test_option_file_that_is_not_utf8_is_a_config_error(tmp_path):
    path = _cnf(tmp_path, b"[client]\nuser = u\npassword = caf\xe9\n")  # latin-1
    with pytest.raises(ConfigError) as err:
        read_option_file(path)
    assert err.value.message == f"option file {path} is not UTF-8 text (line 3)"
    assert "UTF-8" in (err.value.hint or "") and err.value.exit_code == 2
    assert "caf" not in str(err.value) and err.value.__cause__ is None


def test_world_writable_option_file_is_refused(tmp_path):
    """MariaDB silently ignores it; moodump says so instead of reading what the client won't."""
    path = _cnf(tmp_path, "[client]\nuser = u\n")
    path.chmod(0o666)
    with pytest.raises(ConfigError) as err:
        read_option_file(path)
    assert "writable by everyone" in err.value.message and "chmod o-w" in (err.value.hint or "")


def test_include_directives(tmp_path):
    conf_d = tmp_path / "conf.d"
    conf_d.mkdir()
    _cnf(conf_d, "[client]\nuser = from-b\n", "b.cnf")
    _cnf(conf_d, "[client]\nuser = from-a\nport = 3301\n", "a.cnf")
    _cnf(conf_d, "[client]\nuser = not-a-cnf\n", "c.conf")
    _cnf(tmp_path, "[mysql]\nhost = inc\n", "inc.cnf")
    path = _cnf(
        tmp_path,
        "[client]\nuser = first\nhost = h\n"
        f"!includedir {conf_d}\n"
        f"!include {tmp_path / 'inc.cnf'}\n"
        f"!include {tmp_path / 'missing.cnf'}\n"  # skipped, as by MariaDB
        "!unknown directive\n"  # ignored, as by MariaDB
        "socket = /run/s.sock\n",  # still in [client]: an included file has its own groups
    )
    # in name order, a.cnf then b.cnf; c.conf is not a .cnf file
    assert read_option_file(path) == {
        "user": "from-b",
        "port": "3301",
        "host": "inc",
        "socket": "/run/s.sock",
    }


def test_an_included_file_starts_outside_any_group(tmp_path):
    inc = _cnf(tmp_path, "user = x\n", "inc.cnf")
    path = _cnf(tmp_path, f"[client]\n!include {inc}\n")
    with pytest.raises(ConfigError) as err:
        read_option_file(path)
    assert err.value.message.startswith(f"option file {inc} is malformed: line 1")


def test_include_loops_end_at_mariadbs_depth(tmp_path):
    path = tmp_path / "loop.cnf"
    _cnf(tmp_path, f"[client]\nuser = u\n!include {path}\n", "loop.cnf")
    assert read_option_file(path) == {"user": "u"}


# --------------------------------------------------------------------------- MariaDB's parser as the oracle

# (case, lines after "[client]"). Values with LF or CR are not here: my_print_defaults
# prints one option per line; test_escapes_that_make_line_ends covers them.
ORACLE = [
    ("plain", "user = moodle"),
    ("double quotes", 'user = "two words"'),
    ("single quotes", "user = 'two words'"),
    ("quoted hash", "user = 'a#b'"),
    ("spaces around", "user   =    padded   "),
    ("underscore key", "ssl_ca = /etc/ca.pem"),
    ("inline comment", "user = moodle # the backup account"),
    ("comment after quotes", 'user = "moodle" # the backup account'),
    ("comment without a space", "user = a#b"),
    ("quote at the end", 'user = abc"'),
    ("quote at the start", "user = 'abc"),
    ("escaped backslash", "user = a\\\\b"),
    ("hash inside quotes, then a comment", 'password = "a # b" # c'),
    ("escaped quote inside quotes", "password = 'x\\' # y' # z"),
    ("escapes", "password = \\t\\b\\s\\\"\\'\\\\"),
    ("escapes inside quotes", "password = ' a\\sb\\\\ '"),
    ("unknown escape kept", "password = \\x\\q"),
    ("backslash at the end", "password = a\\"),
    ("quotes that do not match", "password = 'a\""),
    ("one quote alone", "password = '"),
    ("inner quotes kept", 'password = "a"b"'),
    ("empty value", "password ="),
    ("quoted empty value", "password = ''"),
    ("tab inside", "user = a\tb"),
    ("CR at the end", "user = moodle\r"),
    ("last one wins", "user = a\nuser = b"),
    ("section in capitals", "[CLIENT]\nuser = up"),
    ("padded section header", "[client ]  trailing words\nuser = padded"),
    ("section starting with a space", "[ client]\nuser = other"),
    ("other section", "[mysqld]\nuser = mysql"),
    ("comment lines", "  # c\n\t; c\nuser = u"),
    ("unknown directive", "!nothing here\nuser = u"),
]


@pytest.mark.skipif(shutil.which("my_print_defaults") is None, reason="needs my_print_defaults")
@pytest.mark.parametrize("line", [pytest.param(line, id=name) for name, line in ORACLE])
def test_option_values_read_as_mariadb_reads_them(tmp_path, line):
    path = _cnf(tmp_path, f"[client]\n{line}\n")
    out = subprocess.run(
        ["my_print_defaults", f"--defaults-file={path}", "client"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    mariadb = {}
    for arg in out.splitlines():
        key, _, value = arg.removeprefix("--").partition("=")
        mariadb[key.replace("_", "-")] = value
    assert read_option_file(path) == mariadb


def test_escapes_that_make_line_ends(tmp_path):
    path = _cnf(tmp_path, "[client]\npassword = a\\nb\\rc\n")
    assert read_option_file(path) == {"password": "a\nb\rc"}


@pytest.mark.skipif(shutil.which("my_print_defaults") is None, reason="needs my_print_defaults")
def test_included_files_read_as_mariadb_reads_them(tmp_path):
    conf_d = tmp_path / "conf.d"
    conf_d.mkdir()
    _cnf(conf_d, "[client]\nuser = from-b\n[mysqld]\nport = 1\n", "b.cnf")
    _cnf(conf_d, "[client]\nuser = from-a\nport = 3301\n", "a.cnf")
    _cnf(conf_d, "[client]\nuser = not-a-cnf\n", "c.conf")
    _cnf(tmp_path, "[client]\nhost = inc\n", "inc.cnf")
    path = _cnf(
        tmp_path,
        "[client]\nuser = first\nhost = h\n"
        f"!includedir {conf_d}\n"
        f"!include {tmp_path / 'inc.cnf'}\n"
        f"!include {tmp_path / 'missing.cnf'}\n"
        "socket = /run/s.sock\n",
    )
    out = subprocess.run(
        ["my_print_defaults", f"--defaults-file={path}", "client"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    mariadb = dict(arg.removeprefix("--").partition("=")[::2] for arg in out.splitlines())
    assert read_option_file(path) == mariadb


# --------------------------------------------------------------------------- the password stays secret


def test_password_never_appears_in_repr(tmp_path):
    pw_file = tmp_path / "pw"
    pw_file.write_text(SECRET)
    sources = [
        (ConnRequest(password=SECRET), {}),
        (ConnRequest(password_file=pw_file), {}),
        (ConnRequest(defaults_file=_cnf(tmp_path, f"[client]\npassword = {SECRET}\n")), {}),
        (ConnRequest(), {"MYSQL_PWD": SECRET}),
    ]
    for request, env in sources:
        s = resolve_connection(request, env=env)
        assert s.password == SECRET
        for text in (repr(s), str(s), s.describe(), repr(request)):
            assert SECRET not in text and "hunter2" not in text
