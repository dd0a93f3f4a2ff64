"""SVG snapshots of the main screens at 80x24 and at a large size (layout only).

Behaviour is asserted in test_app.py / test_journey.py; these catch layout regressions.
Regenerate after an intended change with ``pytest tests/tui/test_snapshots.py --snapshot-update``
and review the SVG diffs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from minerscope.resources import sample_capture
from minerscope.triage import TriageUpdate
from minerscope.tui.app import MinerscopeApp
from tests.tui.conftest import replay_loader

SIZES = [pytest.param((80, 24), id="80x24"), pytest.param((160, 48), id="160x48")]


@pytest.fixture
def make_app(sample_updates: list[TriageUpdate]) -> Any:
    """The workstation on the bundled sample, replaying the real pipeline's output."""
    return lambda: MinerscopeApp([Path(sample_capture().name)], loader=replay_loader(sample_updates))


async def loaded(pilot: Any) -> None:
    await pilot.app.workers.wait_for_complete()
    await pilot.pause()
    pilot.app.flows_screen.progress = ""
    pilot.app.flows_screen.refresh_table()
    await pilot.pause()


@pytest.mark.parametrize("size", SIZES)
def test_flow_table(snap_compare: Any, make_app: Any, size: tuple[int, int]) -> None:
    assert snap_compare(make_app(), terminal_size=size, run_before=loaded)


@pytest.mark.parametrize("size", SIZES)
def test_flow_detail(snap_compare: Any, make_app: Any, size: tuple[int, int]) -> None:
    async def open_detail(pilot: Any) -> None:
        await loaded(pilot)
        await pilot.press("enter")
        await pilot.pause()

    assert snap_compare(make_app(), terminal_size=size, run_before=open_detail)


@pytest.mark.parametrize("size", SIZES)
def test_probe_panel_empty(snap_compare: Any, make_app: Any, size: tuple[int, int]) -> None:
    async def open_probe(pilot: Any) -> None:
        await loaded(pilot)
        await pilot.press("P")
        await pilot.pause()

    assert snap_compare(make_app(), terminal_size=size, run_before=open_probe)


@pytest.mark.parametrize("size", SIZES)
def test_help(snap_compare: Any, make_app: Any, size: tuple[int, int]) -> None:
    async def open_help(pilot: Any) -> None:
        await loaded(pilot)
        await pilot.press("question_mark")
        await pilot.pause()

    assert snap_compare(make_app(), terminal_size=size, run_before=open_help)


def test_filtered_and_hiding_benign(snap_compare: Any, make_app: Any) -> None:
    async def filtered(pilot: Any) -> None:
        await loaded(pilot)
        await pilot.press("slash", *"coin=xmr", "enter", "b")
        await pilot.pause()

    assert snap_compare(make_app(), terminal_size=(80, 24), run_before=filtered)
