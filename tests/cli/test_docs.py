"""Every command has help and is documented in the README (as sqlite-utils checks)."""

from __future__ import annotations

import click
import pytest
from click.testing import CliRunner

from minerscope.cli import _COMMANDS, _not_yet, main
from tests.conftest import REPO

README = (REPO / "README.md").read_text(encoding="utf-8")


NOT_YET: set[str] = set()
"""Commands registered but not built yet: they must say so clearly, and the README must too."""


@pytest.mark.parametrize("name", sorted(_COMMANDS))
def test_command_has_help_and_is_documented(name: str) -> None:
    result = CliRunner().invoke(main, [name, "--help"])
    assert result.exit_code == 0, result.output
    assert ("Not available yet" in result.output) == (name in NOT_YET), result.output
    assert f"minerscope {name}" in README


def test_only_not_yet_commands_are_placeholders() -> None:
    """Every registered command's module imports, except those NOT_YET lists."""
    with click.Context(main) as ctx:
        placeholders = {
            name
            for name in _COMMANDS
            if "Not available yet" in ((command := main.get_command(ctx, name)) and command.help or "")
        }
    assert placeholders == NOT_YET


def test_a_placeholder_fails_clearly() -> None:
    placeholder = _not_yet("someday", "Do something later.")
    result = CliRunner().invoke(placeholder, ["-i", "lo"])
    assert result.exit_code == 2
    assert "minerscope someday: not available yet" in result.stderr
    assert "Not available yet" in (placeholder.help or "")


def test_readme_quick_start_has_the_two_commands() -> None:
    assert ".venv/bin/pip install -e . && .venv/bin/minerscope scan" in README
    ci = (REPO / ".ci" / "run").read_text(encoding="utf-8")
    test_command = next(line for line in README.splitlines() if "python -m pytest" in line)
    assert test_command.strip() in ci.splitlines()
