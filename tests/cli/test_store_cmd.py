"""`minerscope export|blacklist|case`: behaviour through CliRunner, exit codes through a subprocess."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from minerscope.cli import main
from minerscope.store import open_store
from tests.conftest import REPO

GROUPS = ("export", "blacklist", "case")


def _run(db: Path, *args: str) -> click.testing.Result:
    return CliRunner().invoke(main, ["--db", str(db), *args], catch_exceptions=False)


def _commands() -> list[tuple[str, ...]]:
    out: list[tuple[str, ...]] = []
    ctx = click.Context(main)
    for name in GROUPS:
        group = main.get_command(ctx, name)
        assert isinstance(group, click.Group)
        out.append((name,))
        out += [(name, sub) for sub in group.list_commands(ctx)]
    return out


@pytest.mark.parametrize("path", _commands(), ids=" ".join)
def test_every_command_has_help(path: tuple[str, ...]) -> None:
    result = CliRunner().invoke(main, [*path, "--help"])
    assert result.exit_code == 0, result.output
    assert "Usage:" in result.output and len(result.output.splitlines()) > 3


def test_every_group_is_in_the_readme() -> None:
    readme = (REPO / "README.md").read_text()
    for name, *sub in _commands():
        if sub:
            assert f"minerscope {name} {sub[0]}" in readme, f"{name} {sub[0]} missing from README"


def test_confirm_note_and_export_pools(tmp_path: Path) -> None:
    db = tmp_path / "c.sqlite"
    result = _run(db, "case", "confirm", "203.0.113.5:3333", "--coin", "monero", "--name", '=HYPERLINK("x")')
    assert result.exit_code == 0 and result.stdout.strip() == "1"
    assert _run(db, "case", "note", "pool", "1", "=cmd|' /C calc'!A0").exit_code == 0
    result = _run(db, "export", "pools", "--format", "csv")
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert rows[0]["host"] == "203.0.113.5" and rows[0]["names"].startswith("'=")
    assert rows[0]["note"].startswith("'=")
    out = tmp_path / "pools.json"
    assert _run(db, "export", "pools", "--format", "json", "-o", str(out)).exit_code == 0
    assert json.loads(out.read_text())[0]["coin"] == "monero"


def test_blacklist_add_import_list_export(tmp_path: Path) -> None:
    db = tmp_path / "c.sqlite"
    feed = tmp_path / "feed.txt"
    feed.write_text("203.0.113.7\n*.minexmr.example\n")
    assert _run(db, "blacklist", "add", "198.51.100.1:3333", "pool.example").exit_code == 0
    result = _run(db, "blacklist", "import", str(feed))
    assert result.exit_code == 0 and "2 added" in result.stderr
    listing = _run(db, "blacklist", "list").stdout
    assert "198.51.100.1:3333" in listing and "*.minexmr.example" in listing
    assert _run(db, "blacklist", "disable", "1").exit_code == 0
    assert "198.51.100.1:3333" not in _run(db, "export", "blacklist").stdout
    cats = tmp_path / "categories.txt"
    rep = tmp_path / "rep.list"
    result = _run(
        db, "blacklist", "export", "--format", "suricata-iprep", "-o", str(rep), "--categories", str(cats)
    )
    assert result.exit_code == 0 and "left out" in result.stderr
    assert rep.read_text() == "203.0.113.7,1,100\n" and cats.read_text().startswith("1,CoinMiner,")
    zeek = _run(db, "export", "blacklist", "--format", "zeek").stdout
    assert zeek.startswith("#fields\tindicator\tindicator_type\tmeta.source")


def test_dismiss_undismiss_audit(tmp_path: Path) -> None:
    db = tmp_path / "c.sqlite"
    assert _run(db, "case", "dismiss", "198.51.100.7:443", "--reason", "CDN").exit_code == 0
    with open_store(db) as st:
        assert st.is_dismissed("198.51.100.7", 443)
    assert _run(db, "case", "undismiss", "198.51.100.7:443").exit_code == 0
    audit = [json.loads(line) for line in _run(db, "case", "audit", "--json").stdout.splitlines()]
    assert [a["action"] for a in audit[:2]] == ["undismiss", "dismiss"]
    assert audit[1]["detail"]["reason"] == "CDN"
    result = CliRunner().invoke(main, ["--db", str(db), "case", "undismiss", "198.51.100.7:443"])
    assert result.exit_code == 4 and "not dismissed" in result.stderr


def test_case_new_show_export_import_check(tmp_path: Path) -> None:
    db = tmp_path / "c.sqlite"
    assert _run(db, "case", "new", "incident-7").stdout.strip() == "2"  # 1: the default case
    assert _run(db, "case", "note", "case", "2", "started").exit_code == 0
    shown = _run(db, "case", "show", "2").stdout
    assert "incident-7" in shown and "started" in shown
    handover = tmp_path / "handover.sqlite"
    assert _run(db, "export", "case", str(handover)).exit_code == 0
    assert "ok (schema version" in _run(db, "case", "check", str(handover)).stdout
    other = tmp_path / "colleague.sqlite"
    assert _run(other, "case", "note", "case", "", "mine").exit_code == 0
    merged = _run(other, "case", "import", str(handover))
    assert merged.exit_code == 0 and "1 notes" in merged.stderr
    assert _run(other, "case", "import", str(handover)).stderr.startswith("0 cases")
    listing = _run(other, "case", "list").stdout
    assert "incident-7" in listing and "default" in listing
    replaced = _run(other, "case", "import", "--replace", str(handover))
    assert replaced.exit_code == 0 and "kept as" in replaced.stderr
    assert "mine" not in _run(other, "case", "notes").stdout
    bad = tmp_path / "bad.sqlite"
    bad.write_text("nope")
    refused = CliRunner().invoke(main, ["--db", str(other), "case", "import", str(bad)])
    assert refused.exit_code == 4 and "not an SQLite" in refused.stderr


def _subprocess(*args: str, env_db: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    if env_db is not None:
        env["MINERSCOPE_DB"] = str(env_db)
    return subprocess.run(
        [sys.executable, "-m", "minerscope", *args], capture_output=True, text=True, env=env, timeout=60
    )


def test_bad_case_file_is_one_line_exit_4(tmp_path: Path) -> None:
    bad = tmp_path / "bad.sqlite"
    bad.write_bytes(b"\x00garbage" * 100)
    result = _subprocess("--db", str(bad), "case", "list")
    assert result.returncode == 4
    assert result.stdout == ""
    assert result.stderr.count("\n") == 1 and result.stderr.startswith("minerscope: error: ")
    assert "Traceback" not in result.stderr


def test_env_var_selects_the_case_file(tmp_path: Path) -> None:
    db = tmp_path / "env.sqlite"
    result = _subprocess("case", "confirm", "203.0.113.5:3333", env_db=db)
    assert result.returncode == 0, result.stderr
    with open_store(db) as st:
        assert st.get_pool("203.0.113.5", 3333) is not None
    bad = _subprocess("blacklist", "add", "not an indicator!", env_db=db)
    assert bad.returncode == 2 and "not an IP" in bad.stderr  # a bad argument: a usage error


def test_a_new_case_file_has_its_default_case(tmp_path: Path) -> None:
    db = tmp_path / "fresh.sqlite"
    result = _run(db, "case", "note", "case", "1", "hello")
    assert result.exit_code == 0, result.stderr
    assert "default" in _run(db, "case", "list").stdout and "hello" in _run(db, "case", "show", "1").stdout


def test_export_and_import_of_the_case_file_refuse_alike(tmp_path: Path) -> None:
    db = tmp_path / "c.sqlite"
    handover = tmp_path / "handover.sqlite"
    assert _run(db, "export", "case", str(handover)).exit_code == 0
    again = CliRunner().invoke(main, ["--db", str(db), "export", "case", str(handover)])
    assert again.exit_code == 4 and "use --overwrite to replace it" in again.stderr
    assert _run(db, "export", "case", "--overwrite", str(handover)).exit_code == 0
    itself = CliRunner().invoke(main, ["--db", str(db), "case", "import", str(db)])
    assert itself.exit_code == 4 and "is the open case file itself" in itself.stderr
    exported = CliRunner().invoke(main, ["--db", str(db), "export", "case", "--overwrite", str(db)])
    assert exported.exit_code == 4 and "is the open case file itself" in exported.stderr


@pytest.mark.parametrize(
    "args",
    [
        ("case", "note", "endpoint", "not-an-endpoint", "text"),
        ("case", "note", "case", "first", "text"),
        ("case", "confirm", "203.0.113.5"),
        ("case", "dismiss", "[2001:db8::1]"),
        ("blacklist", "add", "[bold]evil"),
        ("blacklist", "add", "junk"),
        ("blacklist", "export", "--format", "zeek", "--categories", "cats.txt"),
    ],
    ids=" ".join,
)
def test_bad_arguments_are_usage_errors(tmp_path: Path, args: tuple[str, ...]) -> None:
    db = tmp_path / "c.sqlite"
    result = CliRunner().invoke(main, ["--db", str(db), *args])
    assert result.exit_code == 2, result.output
    assert not (tmp_path / "cats.txt").exists()
    assert "Traceback" not in result.output


def test_junk_line_is_refused_with_its_line_number(tmp_path: Path) -> None:
    db = tmp_path / "c.sqlite"
    feed = tmp_path / "feed.txt"
    feed.write_text("junk\n")
    result = CliRunner().invoke(main, ["--db", str(db), "blacklist", "import", str(feed)])
    assert result.exit_code == 4 and "feed.txt:1: a one-label name is not a pool domain" in result.stderr
    assert _run(db, "blacklist", "list", "--all").stdout.count("\n") == 1  # the header only


def test_csv_export_reimports_exactly(tmp_path: Path) -> None:
    db = tmp_path / "c.sqlite"
    assert _run(db, "blacklist", "add", "*.wild.example", "1.2.3.4:3333", "[2001:db8::1]:3333").exit_code == 0
    assert _run(db, "blacklist", "add", "pool.example", "--source", "=feed").exit_code == 0
    assert _run(db, "blacklist", "disable", "2").exit_code == 0
    rt = tmp_path / "rt.csv"
    zeek = tmp_path / "rt.zeek"
    assert (
        _run(db, "blacklist", "export", "--format", "csv", "--include-disabled", "-o", str(rt)).exit_code == 0
    )
    assert _run(db, "blacklist", "export", "--format", "zeek", "-o", str(zeek)).exit_code == 0
    fresh = tmp_path / "fresh.sqlite"
    result = _run(fresh, "blacklist", "import", str(rt))
    assert result.exit_code == 0 and "4 added, 0 already present" in result.stderr
    columns = ("kind", "value", "port", "source", "enabled")
    with open_store(db) as a, open_store(fresh) as b:
        assert [[r[c] for c in columns] for r in a.list_indicators()] == [
            [r[c] for c in columns] for r in b.list_indicators()
        ]
    result = _run(tmp_path / "fresh-zeek.sqlite", "blacklist", "import", str(zeek))
    assert result.exit_code == 0 and "2 added" in result.stderr  # active, no suffix: Intel has none


def test_dismissing_a_confirmed_pool_takes_it_out_of_pools_and_exports(tmp_path: Path) -> None:
    db = tmp_path / "c.sqlite"
    assert _run(db, "case", "confirm", "203.0.113.5:3333", "--coin", "monero").exit_code == 0
    assert _run(db, "case", "dismiss", "203.0.113.5:3333").exit_code == 0
    assert "203.0.113.5" not in _run(db, "case", "pools").stdout
    assert json.loads(_run(db, "export", "pools", "--format", "json").stdout) == []
    assert "203.0.113.5" not in _run(db, "export", "blacklist").stdout
    assert _run(db, "case", "undismiss", "203.0.113.5:3333").exit_code == 0
    assert "203.0.113.5" in _run(db, "case", "pools").stdout
    assert "203.0.113.5:3333" in _run(db, "export", "blacklist").stdout


def test_pools_json_keeps_notes_exactly(tmp_path: Path) -> None:
    db = tmp_path / "c.sqlite"
    assert _run(db, "case", "confirm", "203.0.113.5:3333", "--coin", "\t=1+1").exit_code == 0
    assert _run(db, "case", "note", "pool", "1", "line\nnewline\ttab").exit_code == 0
    (pool,) = json.loads(_run(db, "export", "pools", "--format", "json").stdout)
    assert (pool["coin"], pool["note"]) == ("\t=1+1", "line\nnewline\ttab")
