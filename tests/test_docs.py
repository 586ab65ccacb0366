"""Docs are tested like code: every command is documented and has help text."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from moodump.cli import cli
from moodump.errors import EXIT_CODES

DOCS = Path(__file__).resolve().parents[1] / "docs"


@pytest.mark.parametrize("name", sorted(cli.commands))
def test_every_command_is_documented_and_has_help(name):
    assert f"`{name}`" in (DOCS / "cli.md").read_text(), f"{name} missing from docs/cli.md"
    res = CliRunner().invoke(cli, [name, "--help"])
    assert res.exit_code == 0, res.output
    assert len(res.output.splitlines()) > 3


def test_exit_codes_are_documented():
    text = (DOCS / "exit-codes.md").read_text()
    for code in EXIT_CODES:
        assert f"| {code} |" in text


def test_readme_has_exactly_two_setup_commands():
    readme = (DOCS.parent / "README.md").read_text()
    section = readme.split("## Set up on a fresh machine", 1)[1].split("\n## ", 1)[0]
    blocks = [b for b in section.split("```")[1::2]]
    commands = [line for b in blocks for line in b.splitlines()[1:] if line.strip()]
    assert commands == ["bash scripts/demo.sh", "bash scripts/test.sh"]
    assert "scripts/test.sh" in (DOCS.parent / ".ci" / "run").read_text()


def test_architecture_page_matches_the_import_contracts() -> None:
    """docs/architecture.md names every package of every contract in pyproject.toml."""
    import tomllib

    conf = tomllib.loads((DOCS.parent / "pyproject.toml").read_text())["tool"]["importlinter"]
    page = (DOCS / "architecture.md").read_text()
    assert len(conf["contracts"]) >= 4
    for contract in conf["contracts"]:
        modules: list[str] = []
        for layer in contract.get("layers", []):
            modules += [m.strip() for m in layer.replace(":", "|").split("|")]
        modules += contract.get("source_modules", []) + contract.get("modules", [])
        for module in modules:
            short = module.removeprefix("moodump.")
            assert f"`{short}`" in page or f" {short}" in page, f"{module} ({contract['name']})"
