"""Every command has help and is documented in the README (as sqlite-utils checks)."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from minerscope.cli import _COMMANDS, main
from tests.conftest import REPO

README = (REPO / "README.md").read_text(encoding="utf-8")


NOT_YET = {"live"}
"""Commands registered but not built yet: they must say so clearly, and the README must too."""


@pytest.mark.parametrize("name", sorted(_COMMANDS))
def test_command_has_help_and_is_documented(name: str) -> None:
    result = CliRunner().invoke(main, [name, "--help"])
    assert result.exit_code == 0, result.output
    assert ("Not available yet" in result.output) == (name in NOT_YET), result.output
    assert f"minerscope {name}" in README


@pytest.mark.parametrize("name", sorted(NOT_YET))
def test_not_yet_commands_fail_clearly(name: str) -> None:
    result = CliRunner().invoke(main, [name, "-i", "lo"])
    assert result.exit_code == 2
    assert "not available yet" in result.stderr


def test_readme_quick_start_has_the_two_commands() -> None:
    assert ".venv/bin/pip install -e . && .venv/bin/minerscope scan" in README
    ci = (REPO / ".ci" / "run").read_text(encoding="utf-8")
    test_command = next(line for line in README.splitlines() if "python -m pytest" in line)
    assert test_command.strip() in ci.splitlines()
