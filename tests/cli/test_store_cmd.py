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
    assert _run(db, "case", "new", "incident-7").stdout.strip() == "1"
    assert _run(db, "case", "note", "case", "1", "started").exit_code == 0
    shown = _run(db, "case", "show", "1").stdout
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
    assert "default" not in _run(other, "case", "list").stdout
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
    assert bad.returncode == 4 and "not an IP" in bad.stderr
