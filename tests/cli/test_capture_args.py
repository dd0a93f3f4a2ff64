"""``scan``, ``flows`` and ``open`` take the same capture arguments: files, or directories
whose captures are found by magic bytes (``open DIR`` once said "is a directory" and
``flows DIR`` "cannot open")."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from bench.bench_reader import generate
from minerscope.cli import main
from minerscope.cli.tui_cmd import workstation_args
from minerscope.errors import InputError


@pytest.fixture(scope="module")
def evidence(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder as incident data comes: a capture named anything, next to notes."""
    folder = tmp_path_factory.mktemp("evidence")
    (folder / "day1").mkdir()
    generate(folder / "day1" / "gateway.dump", 400, seed=7)
    (folder / "notes.txt").write_text("timeline of the incident\n")
    return folder


def _run(*args: str, db: Path) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, ["--db", str(db), *args])
    return result.exit_code, result.stdout, result.stderr


@pytest.mark.parametrize("command", ["scan", "flows"])
def test_a_directory_is_the_captures_under_it(evidence: Path, tmp_path: Path, command: str) -> None:
    code, out, err = _run(command, "-q", "--format", "jsonl", str(evidence), db=tmp_path / "c.sqlite")
    assert code == 0, err
    records = [json.loads(line) for line in out.splitlines()]
    assert records and {r["capture"] for r in records} == {"gateway.dump"}
    direct = _run(
        command, "-q", "--format", "jsonl", str(evidence / "day1" / "gateway.dump"), db=tmp_path / "d.sqlite"
    )
    assert direct[1] == out


@pytest.mark.parametrize("command", ["scan", "flows", "open"])
def test_a_directory_without_captures_is_one_line_naming_it(tmp_path: Path, command: str) -> None:
    empty = tmp_path / "nothing here"
    empty.mkdir()
    (empty / "readme.txt").write_text("no packets\n")
    code, out, err = _run(command, str(empty), db=tmp_path / "c.sqlite")
    assert code == 4 and out == ""
    assert (
        err.strip()
        == f"minerscope: error: {empty}: no capture files (pcap or pcapng, also compressed: gzip, xz, bzip2, zstd) found there"
    )


def test_the_workstation_opens_the_captures_of_a_directory(evidence: Path, tmp_path: Path) -> None:
    paths, _db, _options = workstation_args([evidence], db=tmp_path / "c.sqlite", model=None)
    assert paths == [evidence / "day1" / "gateway.dump"]
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(InputError, match="no capture files"):
        workstation_args([empty], db=tmp_path / "c.sqlite", model=None)
