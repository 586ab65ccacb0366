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
