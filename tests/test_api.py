"""The public Python API: ``moodump.__all__`` and docs/api.md agree, by introspection.

Every exported name is documented in docs/api.md and every documented name is exported:

- a function or class has a ``### `name``` heading followed by a ``python`` block holding
  its signature exactly as :func:`signature_block` renders it (``inspect.signature`` with
  string annotations unquoted, callables as defaults by dotted name, one parameter per
  line when the one-line form is longer than 88 characters); ``CONSTRUCTED_BY_LIBRARY``
  classes show ``class Name`` instead of a constructor nobody should call;
- an exception class has a row ``| `Name` | `Base` | exit code |`` in the errors table;
- other values (``EXIT_CODES``) show ``name: type``.

So adding a name to ``moodump.__all__`` fails here until api.md documents it; the failure
message holds the block to paste (or run ``python tests/test_api.py NAME``). The ``>>>``
examples in api.md run as doctests without a server, and its server example runs against
the rig's MariaDB (``db``).
"""

from __future__ import annotations

import ast
import doctest
import importlib
import importlib.util
import inspect
import re
import subprocess
import sys
import types
from pathlib import Path
from typing import Any

import pytest

import moodump

ROOT = Path(__file__).resolve().parents[1]
API_MD = ROOT / "docs" / "api.md"
EXAMPLE = ROOT / "examples" / "refresh_staging.py"
WIDTH = 88

# Built by the library (configuration loading); the constructor is not API.
CONSTRUCTED_BY_LIBRARY = {"Config"}


# --------------------------------------------------------------------------- rendering


def _annotation(a: Any) -> str:
    return a if isinstance(a, str) else inspect.formatannotation(a)


def _default(value: Any) -> str:
    if isinstance(value, (types.FunctionType, types.BuiltinFunctionType)):
        return f"{value.__module__}.{value.__qualname__}"  # no memory address
    return repr(value)


def _parameter(p: inspect.Parameter) -> str:
    text = {p.VAR_POSITIONAL: "*", p.VAR_KEYWORD: "**"}.get(p.kind, "") + p.name
    if p.annotation is not p.empty:
        text += f": {_annotation(p.annotation)}"
    if p.default is not p.empty:
        text += (" = " if p.annotation is not p.empty else "=") + _default(p.default)
    return text


def signature_block(name: str, obj: Any) -> str:
    """The text docs/api.md shows for an exported name (what the test compares)."""
    if inspect.isclass(obj) and name in CONSTRUCTED_BY_LIBRARY:
        return f"class {name}"
    if not callable(obj):
        module = importlib.import_module(moodump._LAZY.get(name, "moodump.errors"))
        hints = getattr(module, "__annotations__", {})
        return f"{name}: {_annotation(hints.get(name, type(obj).__name__))}"
    sig = inspect.signature(obj)
    params = list(sig.parameters.values())
    parts: list[str] = []
    star_done = any(p.kind is p.VAR_POSITIONAL for p in params)
    for i, p in enumerate(params):
        if p.kind is p.KEYWORD_ONLY and not star_done:
            parts.append("*")
            star_done = True
        parts.append(_parameter(p))
        last_positional_only = p.kind is p.POSITIONAL_ONLY and (
            i + 1 == len(params) or params[i + 1].kind is not p.POSITIONAL_ONLY
        )
        if last_positional_only:
            parts.append("/")
    returns = ""
    if not inspect.isclass(obj) and sig.return_annotation is not sig.empty:
        returns = f" -> {_annotation(sig.return_annotation)}"
    one_line = f"{name}({', '.join(parts)}){returns}"
    if len(one_line) <= WIDTH:
        return one_line
    return f"{name}(\n" + "".join(f"    {part},\n" for part in parts) + f"){returns}"


def _is_error(obj: Any) -> bool:
    return inspect.isclass(obj) and issubclass(obj, moodump.MoodumpError)


def _exported() -> dict[str, Any]:
    return {name: getattr(moodump, name) for name in moodump.__all__ if name != "__version__"}


# --------------------------------------------------------------------------- parsing api.md


def _page() -> str:
    return API_MD.read_text(encoding="utf-8")


def _documented_blocks(page: str) -> dict[str, str]:
    """``### `name``` heading -> the python block right after it."""
    found: dict[str, str] = {}
    for m in re.finditer(r"^### `(\w+)`\n\n```python\n(.*?)\n```$", page, re.M | re.S):
        assert m.group(1) not in found, f"{m.group(1)} is documented twice in docs/api.md"
        found[m.group(1)] = m.group(2)
    headings = re.findall(r"^### `(\w+)`", page, re.M)
    missing_block = sorted(set(headings) - set(found))
    assert not missing_block, f"headings without a signature block right after: {missing_block}"
    return found


def _error_rows(page: str) -> dict[str, tuple[str, int]]:
    rows = re.findall(r"^\| `(\w+)` \| `(\w+)` \| (\d+) \|", page, re.M)
    return {name: (base, int(code)) for name, base, code in rows}


# --------------------------------------------------------------------------- tests


def test_all_is_the_lazy_table_the_errors_and_the_version() -> None:
    errors_module = importlib.import_module("moodump.errors")
    errors = {
        n
        for n, v in vars(errors_module).items()
        if _is_error(v) and v.__module__ == "moodump.errors"
    }
    assert set(moodump.__all__) == {*moodump._LAZY, *errors, "EXIT_CODES", "__version__"}
    assert len(moodump.__all__) == len(set(moodump.__all__))
    assert set(dir(moodump)) >= set(moodump.__all__)


def test_every_lazy_name_is_the_object_of_its_module() -> None:
    for name, module in moodump._LAZY.items():
        assert getattr(moodump, name) is getattr(importlib.import_module(module), name), name


def test_type_checking_imports_match_the_lazy_table() -> None:
    """mypy and IDEs read the TYPE_CHECKING imports; they name the same objects."""
    tree = ast.parse(Path(moodump.__file__).read_text(encoding="utf-8"))
    typed: dict[str, str] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and ast.unparse(node.test) == "TYPE_CHECKING":
            for imp in node.body:
                assert isinstance(imp, ast.ImportFrom) and imp.module
                typed.update({alias.name: imp.module for alias in imp.names})
    for name, module in typed.items():
        assert getattr(importlib.import_module(module), name) is getattr(moodump, name), name
    assert set(typed) == set(moodump._LAZY)


def test_functions_named_like_their_module_stay_functions() -> None:
    """moodump.dump is the function even after the sub-package was imported."""
    for name in ("dump", "restore", "verify"):
        module = importlib.import_module(f"moodump.{name}")
        assert isinstance(module, types.ModuleType)
        assert inspect.isfunction(getattr(moodump, name)), name
        assert getattr(moodump, name) is getattr(module, name)
    from moodump import dump, restore, verify  # the from-import form, too

    assert (dump.__module__, restore.__module__, verify.__module__) == (
        "moodump.dump.engine",
        "moodump.restore.engine",
        "moodump.verify",
    )


def test_import_moodump_loads_nothing_but_the_errors() -> None:
    """The CLI and every ``from moodump import __version__`` pay for the API only on use."""
    code = (
        "import sys, moodump\n"
        "print(' '.join(sorted(m for m in sys.modules if m.startswith('moodump'))))\n"
        "moodump.dump\n"
        "print('moodump.dump.engine' in sys.modules)\n"
    )
    env = {"PYTHONPATH": str(Path(moodump.__file__).resolve().parents[1])}
    res = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True
    )
    assert res.stdout.splitlines() == ["moodump moodump.errors", "True"]


def test_unknown_attribute_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        _ = moodump.nope  # type: ignore[attr-defined]


def test_api_md_documents_exactly_the_exports_with_their_signatures() -> None:
    page = _page()
    blocks = _documented_blocks(page)
    rows = _error_rows(page)
    exported = _exported()
    problems: list[str] = []
    for name, obj in exported.items():
        if _is_error(obj):
            want = (obj.__mro__[1].__name__, obj.exit_code)
            if rows.get(name) != want:
                problems.append(
                    f"errors table row for {name}: | `{name}` | `{want[0]}` | {want[1]} | ..."
                )
            continue
        want_block = signature_block(name, obj)
        if blocks.get(name) != want_block:
            problems.append(f"### `{name}`\n\n```python\n{want_block}\n```")
    extra = sorted((set(blocks) | set(rows)) - set(exported))
    if extra:
        problems.append(f"documented but not exported by moodump: {extra}")
    assert not problems, "docs/api.md is out of date; expected:\n\n" + "\n\n".join(problems)


def test_other_modules_named_in_api_md_exist() -> None:
    """The table of deeper entry points names objects that exist."""
    import pkgutil

    page = _page()
    section = page.split("## Beyond the top-level package", 1)[1]
    names = re.findall(r"`(moodump(?:\.\w+)+)", section)
    assert names
    for dotted in names:
        pkgutil.resolve_name(dotted)


def test_api_md_doctests_run_without_a_server() -> None:
    blocks = re.findall(r"^```python\n(>>> .*?\n)```$", _page(), re.M | re.S)
    assert blocks, "docs/api.md has no >>> example"
    parser = doctest.DocTestParser()
    test = parser.get_doctest("\n".join(blocks), {}, "docs/api.md", str(API_MD), 0)
    assert len(test.examples) >= 5
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    runner.run(test)
    assert runner.summarize(verbose=False).failed == 0


def _server_example() -> dict[str, Any]:
    """The api.md block that defines ``backup_restore_verify`` (executed: imports, def)."""
    blocks = re.findall(r"^```python\n(.*?)\n```$", _page(), re.M | re.S)
    source = next(b for b in blocks if "def backup_restore_verify(" in b)
    namespace: dict[str, Any] = {}
    exec(compile(source, "docs/api.md", "exec"), namespace)  # our own docs
    return namespace


def test_api_md_server_example_compiles() -> None:
    assert callable(_server_example()["backup_restore_verify"])


@pytest.mark.db
def test_api_md_server_example_runs(
    root_settings: moodump.ConnSettings, fresh_db: str, tmp_path: Path
) -> None:
    """The documented dump -> verify -> restore, through ``moodump.*``, on the rig's server."""
    from moodump.db import connect

    with connect(root_settings.with_database(fresh_db)) as c:
        c.execute("CREATE TABLE course (id INT PRIMARY KEY, fullname VARCHAR(50))")
        c.execute("INSERT INTO course VALUES (1, 'Site home'), (2, 'Chemistry')")
    run = _server_example()["backup_restore_verify"]
    copy = f"{fresh_db}_copy"
    try:
        dumped, report, restored = run(root_settings, fresh_db, tmp_path / "b", copy)
        assert dumped.manifest.status == "DONE" and dumped.manifest.total_rows == 2
        assert report.passed and report.tables_checked == 1
        assert (restored.database, restored.tables, restored.rows) == (copy, 1, 2)
        with connect(root_settings.with_database(copy)) as c:
            assert c.query("SELECT fullname FROM course ORDER BY id") == [
                (b"Site home",),
                (b"Chemistry",),
            ]
    finally:
        with connect(root_settings) as c:
            c.execute(f"DROP DATABASE IF EXISTS `{copy}`")


@pytest.mark.db
def test_refresh_staging_example(
    root_settings: moodump.ConnSettings,
    fresh_db: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """examples/refresh_staging.py after a real ``run_once``, all through ``moodump.*``."""
    from moodump.db import connect

    with connect(root_settings.with_database(fresh_db)) as c:
        c.execute("CREATE TABLE course (id INT PRIMARY KEY, fullname VARCHAR(50))")
        c.execute("INSERT INTO course VALUES (1, 'Site home'), (2, 'Chemistry')")
    conf = tmp_path / "backup.conf"
    conf.write_text(f"127.0.0.1:{root_settings.port}/{fresh_db}\n", encoding="utf-8")
    for name, value in {
        "BACKUP_DIR": f"{tmp_path / 'backups'}/",
        "BACKUP_CONF": str(conf),
        "TZ": "America/Vancouver",
        "DATABASE_USER": root_settings.user,
        "DATABASE_PASSWORD": root_settings.password,
        "MOODUMP_THREADS": "1",
        "MOODUMP_VERIFY_AFTER_BACKUP": "offline",
        "MYSQL_PWD": root_settings.password,
    }.items():
        monkeypatch.setenv(name, value)
    report = moodump.run_once(moodump.load_config_from_environment())
    assert report.exit_code == 0, report.to_json()
    assert [(d.status, d.rows) for d in report.databases] == [("ok", 2)]

    spec = importlib.util.spec_from_file_location("refresh_staging", EXAMPLE)
    assert spec is not None and spec.loader is not None
    example = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(example)
    copy = f"{fresh_db}_staging"
    args = ["--database", fresh_db, "--port", str(root_settings.port), "--into", copy]
    args += ["--user", root_settings.user, "--threads", "1"]
    try:
        assert example.main(args) == 0
        assert "restored 1 tables, 2 rows" in capsys.readouterr().out
        with connect(root_settings.with_database(fresh_db)) as c:
            c.execute("UPDATE course SET fullname = 'changed' WHERE id = 2")
        with connect(root_settings.with_database(copy)) as c:
            c.execute("UPDATE course SET fullname = 'staging edit' WHERE id = 1")
        assert example.main(args) == 0  # again, over the existing copy: an atomic swap
        with connect(root_settings.with_database(copy)) as c:
            assert c.query("SELECT fullname FROM course ORDER BY id") == [
                (b"Site home",),
                (b"Chemistry",),
            ]
        assert example.main([*args[:1], "nope", *args[2:]]) == 1
        assert "no verified backup of nope" in capsys.readouterr().err
        bad_port = [*args, "--port", "1"]  # nothing listens there: ConnectError, exit 3
        assert example.main(bad_port) == moodump.ConnectError.exit_code
    finally:
        with connect(root_settings) as c:
            c.execute(f"DROP DATABASE IF EXISTS `{copy}`")


if __name__ == "__main__":  # print the api.md block(s) for the given names (default: all)
    for _name in sys.argv[1:] or [n for n in moodump.__all__ if n != "__version__"]:
        _obj = getattr(moodump, _name)
        if _is_error(_obj):
            print(f"| `{_name}` | `{_obj.__mro__[1].__name__}` | {_obj.exit_code} | |\n")
        else:
            print(f"### `{_name}`\n\n```python\n{signature_block(_name, _obj)}\n```\n")
