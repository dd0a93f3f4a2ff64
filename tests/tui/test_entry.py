"""``minerscope`` with no arguments: the workstation on the sample, shipped model, default case file.

Two views of the same door. The Pilot test resolves the defaults the way the command
does (``$MINERSCOPE_DB`` through the click group, no captures, no model) and drives the
app they build. The terminal test starts the installed console script in a real
pseudo-terminal at 80x24, waits until the sample's flows are drawn, presses ``q`` and
expects a clean exit with the terminal restored.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from minerscope.cli import main
from minerscope.cli.tui_cmd import workstation_args
from minerscope.model.artifact import load_model
from minerscope.resources import sample_blacklist, sample_capture
from minerscope.triage import TriageUpdate
from minerscope.tui.app import MinerscopeApp
from tests.conftest import MS, needs_libpcap
from tests.terminal import PseudoTerminal
from tests.tui.test_app import until

pytestmark = pytest.mark.skipif(not sample_capture().is_file(), reason="bundled sample not generated")

LOAD_TIMEOUT = 120_000 * MS  # a cold triage child compiles numba kernels; a loaded CI box is slow


def sample_flows(updates: list[TriageUpdate]) -> int:
    return sum(u.rows.height for u in updates if u.rows is not None)


@pytest.mark.slow
async def test_no_arguments_load_the_sample_with_the_shipped_model_and_env_case_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, sample_updates: list[TriageUpdate]
) -> None:
    db = tmp_path / "from-env" / "case.sqlite"
    monkeypatch.setenv("MINERSCOPE_DB", str(db))
    ctx = main.make_context("minerscope", [])
    paths, case_file, options = workstation_args((), db=ctx.params["db"], model=None)
    assert paths == [sample_capture()]
    assert case_file == db and db.parent.is_dir()
    assert options.model is None and options.db_path == db
    # the sample comes with its blacklist, as in scan and flows (its blacklisted pool shows BL)
    assert options.blacklist_files == (sample_blacklist(),)
    assert workstation_args(("sample",), db=db, model=None)[2].blacklist_files == (sample_blacklist(),)

    app = MinerscopeApp(paths, db_path=case_file, options=options)  # the real offloaded pipeline
    async with app.run_test(size=(80, 24)) as pilot:
        await until(pilot, lambda: app.loads_done == 1, LOAD_TIMEOUT)
        await pilot.pause()
        assert not app.last_error and app.store is not None
        assert app.flows_screen.table.row_count == app.session.count == sample_flows(sample_updates)
        assert set(app.session.rows["model"].to_list()) == {load_model(None).name}
        assert app.sub_title == sample_capture().name
    assert db.is_file()  # the case file named by $MINERSCOPE_DB was created and used


@needs_libpcap
async def test_open_with_a_capture_filter_shows_only_what_it_keeps(tmp_path: Path) -> None:
    """``open --bpf``: the filter travels with the options into the offloaded pipeline."""
    paths, case_file, options = workstation_args(
        ("sample",), db=tmp_path / "case.sqlite", model=None, bpf="udp port 53"
    )
    assert options.bpf == "udp port 53"
    app = MinerscopeApp(paths, db_path=case_file, options=options)
    async with app.run_test(size=(80, 24)) as pilot:
        await until(pilot, lambda: app.loads_done == 1, LOAD_TIMEOUT)
        await pilot.pause()
        assert not app.last_error
        assert app.sub_title == f"{sample_capture().name} · filter: udp port 53"
        rows = app.session.rows
        assert rows.height == app.flows_screen.table.row_count > 0
        assert set(rows["proto"].to_list()) == {17}
        assert all(
            53 in ports for ports in zip(rows["sport"].to_list(), rows["dport"].to_list(), strict=True)
        )


@pytest.mark.slow
def test_bare_minerscope_in_a_terminal_draws_the_sample_and_quits_on_q(tmp_path: Path) -> None:
    script = Path(sys.executable).with_name("minerscope")
    if not script.is_file():
        pytest.skip("console script not installed")
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("TEXTUAL")},
        "MINERSCOPE_DB": str(tmp_path / "case.sqlite"),
        "HOME": str(tmp_path),
        "TERM": "xterm-256color",
        "COLUMNS": "80",
        "LINES": "24",
    }
    with PseudoTerminal(24, 80) as term:
        proc = subprocess.Popen(
            [str(script)],
            stdin=term.slave,
            stdout=term.slave,
            stderr=term.slave,
            env=env,
            cwd=tmp_path,
            start_new_session=True,
        )
        term.attach(proc)
        # "N of N flows" on the status line: rows loaded, none filtered out
        loaded = re.compile(r"\b([1-9][0-9,]*) of \1 flows")
        deadline = time.monotonic() + LOAD_TIMEOUT
        while not loaded.search(term.text()):
            assert time.monotonic() < deadline, f"flows never drawn: {term.text()[-800:]!r}"
            assert proc.poll() is None, f"exited early: {term.text()[-800:]!r}"
            term.read(0.2)
        # q quits; while the load's last moments still run, it asks first: say no, try again
        deadline = time.monotonic() + 30_000 * MS
        while proc.poll() is None:
            assert time.monotonic() < deadline, f"q did not quit: {term.text()[-800:]!r}"
            mark = len(term.screen)
            term.write(b"q")
            settle = time.monotonic() + 1000 * MS
            while proc.poll() is None and time.monotonic() < settle:
                term.read(0.1)
            if "Quit anyway" in term.text(mark):
                term.write(b"n")
        term.read(0.1)
    screen, text = term.screen, term.text()
    assert proc.returncode == 0, text[-800:]
    assert sample_capture().name in text  # the header names the capture
    # the alternate screen was entered and left again: the terminal is given back restored
    assert b"\x1b[?1049h" in screen and screen.rfind(b"\x1b[?1049l") > screen.rfind(b"\x1b[?1049h")
    assert (tmp_path / "case.sqlite").is_file()
