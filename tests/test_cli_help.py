"""Help a person can use, and one name for each thing (issue 11, points 9 and 10).

Every option of every command has help; the operations commands show examples; hidden
options (old spellings, test hooks) never appear in help or in error messages; a run's
hints name settings, not flags it does not have; old spellings keep working.
"""

from __future__ import annotations

import logging
import os
import re
import socket
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from moodump import jobs
from moodump.cli import cli, main
from moodump.config import is_known_env_name, load_config, setting
from moodump.db import ConnSettings, connect
from moodump.db.connection import quote_ident
from moodump.dump import DumpOptions
from moodump.manifest import read_manifest
from moodump.notify import Notifier


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if is_known_env_name(name) or name.startswith("MOODUMP_"):
            monkeypatch.delenv(name)


def commands() -> list[tuple[str, click.Command]]:
    return sorted(cli.commands.items())


def test_every_option_of_every_command_has_help() -> None:
    missing = [
        f"moodump {name} {'/'.join(p.opts)}"
        for name, cmd in [("", cli), *commands()]
        for p in cmd.params
        if isinstance(p, click.Option) and not p.hidden and not (p.help or "").strip()
    ]
    assert missing == []


@pytest.mark.parametrize("name", ["list", "prune", "check", "run", "dump", "restore", "verify"])
def test_operations_help_has_examples(name: str) -> None:
    res = CliRunner().invoke(cli, [name, "--help"])
    assert res.exit_code == 0
    assert "Example" in res.output and f"moodump {name}" in res.output.split("Example", 1)[1]


def test_verify_has_quiet_and_timeouts() -> None:
    out = CliRunner().invoke(cli, ["verify", "--help"]).output
    for flag in ("-q, --quiet", "--connect-timeout", "--read-timeout"):
        assert flag in out


def hidden_options() -> list[tuple[str, str]]:
    return [
        (name, opt)
        for name, cmd in commands()
        for p in cmd.params
        if isinstance(p, click.Option) and p.hidden
        for opt in p.opts
        if opt.startswith("--")
    ]


@pytest.mark.parametrize(("name", "opt"), hidden_options())
def test_hidden_options_never_show(name: str, opt: str) -> None:
    quoted = f"'{opt}'"
    help_text = CliRunner().invoke(cli, [name, "--help"]).output
    assert not re.search(re.escape(opt) + r"(?![\w-])", help_text)
    # A near miss: click proposes close matches; a hidden option is never one of them.
    res = CliRunner().invoke(cli, [name, opt + "x"])
    assert res.exit_code == 2 and "No such option" in res.output
    assert quoted not in res.output


def test_one_thread_default_everywhere(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    key_default = setting("MOODUMP_THREADS", {})
    assert key_default == DumpOptions().threads == 2
    for name in ("dump", "restore", "verify"):
        ctx = cli.commands[name].make_context(name, ["PATH"], resilient_parsing=True)
        assert ctx.params["threads"] == key_default, name
    monkeypatch.setenv("MOODUMP_THREADS", "3")
    for name in ("dump", "restore", "verify"):
        ctx = cli.commands[name].make_context(name, ["PATH"], resilient_parsing=True)
        assert ctx.params["threads"] == 3, name
    # a bad value is an error naming the variable, never a silent 2
    monkeypatch.setenv("MOODUMP_THREADS", "1000")
    for args in (["dump", "-o", "out", "db"], ["restore", ".", "-d", "db"], ["verify", "."]):
        with pytest.raises(SystemExit) as exit_:
            main(args)
        err = capsys.readouterr().err
        assert exit_.value.code == 2, (args, err)
        assert "MOODUMP_THREADS='1000'" in err and "1 to 64" in err, args


def test_one_log_level_default_everywhere() -> None:
    assert setting("BACKUP_LOG_LEVEL", {}) == "info"
    assert "BACKUP_LOG_LEVEL, info" in CliRunner().invoke(cli, ["--help"]).output
    res = CliRunner().invoke(cli, ["config", "--help"])  # runs the group: sets up logging
    assert res.exit_code == 0
    assert logging.getLogger().level == logging.INFO


def test_one_word_for_objects_and_one_form_for_tables() -> None:
    for name in ("dump", "restore"):
        out = CliRunner().invoke(cli, [name, "--help"]).output
        assert "--no-objects" in out and "--table TEXT" in out
        assert "--no-routines" not in out and "--tables" not in out
        assert "views, triggers, routines (procedures, functions) and events" in " ".join(
            out.split()
        )


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_run_hints_name_settings_not_flags(tmp_path: Path) -> None:
    port = _closed_port()
    text = f"127.0.0.1:{port}/moodle\n"
    env = {
        "BACKUP_DIR": str(tmp_path / "backups"),
        "TZ": "UTC",
        "DATABASE_USER": "moodle_bk",
        "DATABASE_PASSWORD": "Hint-test-pw.91",
        "MOODUMP_CONNECT_TIMEOUT": "2",
    }
    cfg = load_config(env, text, str(tmp_path / "backup.conf"))
    settings = jobs.conn_settings_for(cfg, cfg.databases[0])  # the scheduler's connection
    assert (settings.connect_timeout, settings.read_timeout) == (2, 3600)
    report = jobs.run_once(cfg, notifier=Notifier())
    (res,) = report.databases
    assert res.exit_code == 3
    hint = str(res.error).split("next step:", 1)[1]
    assert "--" not in hint and "backup.conf" in hint


# --------------------------------------------------------------------- old spellings work


@pytest.fixture
def two_tables(root_settings: ConnSettings, fresh_db: str) -> str:
    q = quote_ident(fresh_db)
    with connect(root_settings) as c:
        c.execute(f"CREATE TABLE {q}.mdl_a (id INT PRIMARY KEY)")
        c.execute(f"CREATE TABLE {q}.mdl_b (id INT PRIMARY KEY)")
        c.execute(f"INSERT INTO {q}.mdl_a VALUES (1), (2)")
        c.execute(f"CREATE VIEW {q}.v_a AS SELECT id FROM {q}.mdl_a")
    return fresh_db


def conn_args(settings: ConnSettings) -> list[str]:
    return ["-H", settings.host, "-P", str(settings.port), "-u", settings.user]


@pytest.mark.parametrize(
    ("table_flag", "objects_flag"), [("--table", "--no-objects"), ("--tables", "--no-routines")]
)
def test_old_and_new_spellings_dump_and_restore_alike(
    root_settings: ConnSettings,
    two_tables: str,
    tmp_path: Path,
    table_flag: str,
    objects_flag: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("MYSQL_PWD", root_settings.password)
    out = tmp_path / "b"
    args = ["dump", *conn_args(root_settings), "-q", "-o", str(out), two_tables]
    res = CliRunner().invoke(cli, [*args[:-1], table_flag, "mdl_a", objects_flag, two_tables])
    assert res.exit_code == 0, res.output
    m = read_manifest(out)
    assert [t.name for t in m.tables] == ["mdl_a"] and not m.objects.get("definitions")
    target = f"{two_tables}_r"
    try:
        res = CliRunner().invoke(
            cli,
            ["restore", *conn_args(root_settings), "-q", str(out), "--database", target,
             table_flag, "mdl_*", objects_flag],
        )  # fmt: skip
        assert res.exit_code == 0, res.output
        with connect(root_settings) as c:
            assert c.scalar(f"SELECT COUNT(*) FROM {quote_ident(target)}.mdl_a") in (2, b"2")
    finally:
        with connect(root_settings) as c:
            c.execute(f"DROP DATABASE IF EXISTS {quote_ident(target)}")


@pytest.mark.parametrize(
    ("given", "names"),
    [
        (("a, b,,c", "d"), ("a", "b", "c", "d")),
        ((r"a\,b",), ("a,b",)),  # a name with a comma
        ((r"t\ ", " x "), ("t ", "x")),  # a PostgreSQL name's trailing space
        ((r"\ lead",), (" lead",)),
        ((r"a\b", r"a\\b"), (r"a\b", r"a\b")),  # a backslash of the name itself
        (("mdl_*",), ("mdl_*",)),
    ],
)
def test_table_names_split_on_commas_a_backslash_keeps_one(given: tuple[str, ...], names: tuple[str, ...]) -> None:
    """--table, --exclude, --exclude-data (dump, restore, export): repeat or comma-separate;
    a name holding a comma or ending in a space is still reachable."""
    from moodump.cli.dump import _split

    assert _split(given) == names
