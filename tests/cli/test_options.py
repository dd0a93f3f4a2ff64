"""Every numeric option of every command refuses what it cannot mean, as a usage error.

``float()`` parses ``nan`` and ``inf``, and a NaN passes every range test, so an option
typed ``float`` (or ``click.FloatRange``) let ``--idle-timeout nan`` reach the flow
assembler (a traceback, exit 1) and ``live --duration nan`` run for ever. The sweep below
walks the real command tree, so an option added later is held to the same rule.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from minerscope.cli import main
from minerscope.timetext import NOT_A_TIME, utc_text


def _numeric_options() -> Iterator[tuple[list[str], click.Option]]:
    def walk(
        command: click.Command, path: list[str], ctx: click.Context
    ) -> Iterator[tuple[list[str], click.Option]]:
        if isinstance(command, click.Group):
            for name in command.list_commands(ctx):
                sub = command.get_command(ctx, name)
                assert sub is not None
                yield from walk(sub, [*path, name], click.Context(sub, parent=ctx))
            return
        for param in command.params:
            if isinstance(param, click.Option) and isinstance(
                param.type, click.types.FloatParamType | click.types.IntParamType
            ):
                yield path, param

    yield from walk(main, [], click.Context(main))


NUMERIC = [(path, option.opts[0], option) for path, option in _numeric_options()]
IDS = [f"{' '.join(path)} {name}" for path, name, _ in NUMERIC]


def test_the_sweep_sees_the_options_it_is_about() -> None:
    seen = set(IDS)
    for expected in (
        "scan --idle-timeout",
        "live --duration",
        "probe --timeout",
        "blacklist add --expires-days",
    ):
        assert expected in seen


@pytest.mark.parametrize(("path", "name", "option"), NUMERIC, ids=IDS)
def test_numbers_out_of_range_are_usage_errors(path: list[str], name: str, option: click.Option) -> None:
    """Options are processed in command-line order, so the bad value is refused before
    anything else about the command is looked at (no capture is read, nothing listens)."""
    bad = ["-1"] if isinstance(option.type, click.types.IntParamType) else ["nan", "inf", "-inf", "-1"]
    for value in bad:
        result = CliRunner().invoke(main, [*path, name, value])
        assert result.exit_code == 2, (value, result.output)
        assert name in result.output and "Traceback" not in result.output, (value, result.output)


def test_scan_has_no_window_it_would_ignore() -> None:
    """Scoring uses the model's window; a ``--window`` that changed nothing misled."""
    result = CliRunner().invoke(main, ["scan", "--window", "60"])
    assert result.exit_code == 2 and "No such option" in result.output


def test_a_case_file_with_times_out_of_range_still_lists_and_exports(tmp_path: Path) -> None:
    """A case file is input (``case import`` merges a colleague's): one impossible time must
    not stop ``blacklist list`` or an export; the value is shown for what it is."""
    db = tmp_path / "case.sqlite"
    runner = CliRunner()
    for indicator in ("198.51.100.7", "pool.example", "203.0.113.9"):
        assert runner.invoke(main, ["--db", str(db), "blacklist", "add", indicator]).exit_code == 0
    with sqlite3.connect(db) as conn:
        conn.execute("UPDATE indicators SET expires_at = 1e300 WHERE value = '198.51.100.7'")
        conn.execute("UPDATE indicators SET added_at = 'soon' WHERE value = 'pool.example'")
    conn.close()

    listed = runner.invoke(main, ["--db", str(db), "blacklist", "list", "--all"])
    assert listed.exit_code == 0, listed.output
    lines = {line.split("\t")[1]: line for line in listed.output.splitlines()[1:]}
    assert f"1e+300 {NOT_A_TIME}" in lines["198.51.100.7"]
    assert f"soon {NOT_A_TIME}" in lines["pool.example"]
    assert NOT_A_TIME not in lines["203.0.113.9"]

    exported = runner.invoke(main, ["--db", str(db), "export", "blacklist", "--format", "csv"])
    assert exported.exit_code == 0, exported.output
    assert f"1e+300 {NOT_A_TIME}" in exported.output


def test_exporting_a_case_that_does_not_exist_says_so(tmp_path: Path) -> None:
    db = tmp_path / "case.sqlite"
    result = CliRunner().invoke(main, ["--db", str(db), "export", "pools", "--case", "999"])
    assert result.exit_code == 4
    assert "no case with id 999" in result.output


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (0, "1970-01-01T00:00:00Z"),
        (1705664395.9, "2024-01-19T11:39:55Z"),
        (None, ""),
        (float("nan"), f"nan {NOT_A_TIME}"),
        (float("inf"), f"inf {NOT_A_TIME}"),
        (-1e20, f"-1e+20 {NOT_A_TIME}"),
        ("\x1b[2J=cmd", f"\\x1b[2J=cmd {NOT_A_TIME}"),
        (True, f"True {NOT_A_TIME}"),
    ],
)
def test_utc_text(value: object, text: str) -> None:
    assert utc_text(value) == text


def test_an_empty_db_path_is_a_usage_error_not_the_default_file() -> None:
    """``--db ''`` (an unset shell variable, ``--db "$CASE"``) used the default case file
    without a word: the scan then landed in someone else's case."""
    from click.testing import CliRunner

    from minerscope.cli import main

    result = CliRunner().invoke(main, ["--db", "", "case", "list"])
    assert result.exit_code == 2
    assert "--db" in result.stderr and "empty path" in result.stderr
