"""The triage child process: same updates as in-process triage, prestarted or not, errors intact."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from minerscope.errors import CaptureError
from minerscope.resources import sample_capture
from minerscope.triage import TriageUpdate
from minerscope.tui import offload


def _summary(updates: list[TriageUpdate]) -> list[tuple[int, list[int], list[float]]]:
    return [
        (u.packets, u.rows["flow_id"].to_list(), u.rows["p_mining"].to_list())
        for u in updates
        if u.rows is not None
    ]


@pytest.mark.skipif(not sample_capture().is_file(), reason="bundled sample not generated")
def test_a_prestarted_child_is_the_one_the_load_reads(sample_updates: list[TriageUpdate]) -> None:
    path = sample_capture()
    offload.prestart(path, None)
    child = offload._PRESTARTED[(str(path), None)]
    offload.prestart(path, None)  # asking again does not start a second child
    assert offload._PRESTARTED[(str(path), None)] is child
    try:
        updates = list(offload.iter_triage_offloaded(path, None))
        assert (str(path), None) not in offload._PRESTARTED
        assert _summary(updates) == _summary(sample_updates)
        assert updates[-1].done
        assert offload._IDLE == [child] and child.proc.is_alive()  # read to the end: kept for the next
    finally:
        offload.close_idle()
    assert not child.proc.is_alive() and child.proc.exitcode is not None and not offload._IDLE


@pytest.mark.skipif(not sample_capture().is_file(), reason="bundled sample not generated")
def test_one_child_serves_the_captures_of_a_load_in_turn(
    tmp_path: Path, sample_updates: list[TriageUpdate]
) -> None:
    """Its start-up is paid once: a folder of 52 small captures took ~2 s a capture with a
    child each. A capture that fails does not cost the child either."""
    junk = tmp_path / "notes.txt"
    junk.write_text("this is not a capture\n")
    try:
        first = list(offload.iter_triage_offloaded(sample_capture(), None))
        (child,) = offload._IDLE
        with pytest.raises(CaptureError, match="notes.txt"):
            list(offload.iter_triage_offloaded(junk, None))
        assert offload._IDLE == [child]
        again = list(offload.iter_triage_offloaded(sample_capture(), None))
        assert offload._IDLE == [child] and child.proc.is_alive()
        assert _summary(first) == _summary(again) == _summary(sample_updates)
    finally:
        offload.close_idle()


@pytest.mark.skipif(not sample_capture().is_file(), reason="bundled sample not generated")
def test_a_cancelled_load_ends_its_child_and_the_next_gets_a_new_one(
    sample_updates: list[TriageUpdate],
) -> None:
    import threading

    cancel = threading.Event()
    try:
        stream = offload.iter_triage_offloaded(sample_capture(), None, cancel=cancel)
        next(stream)
        cancel.set()
        assert list(stream) == []  # it stops at once ...
        assert offload._IDLE == []  # ... and its child, mid-capture, is not reused
        updates = list(offload.iter_triage_offloaded(sample_capture(), None))
        assert _summary(updates) == _summary(sample_updates)
    finally:
        offload.close_idle()


def test_errors_cross_the_process_boundary_as_the_same_class(tmp_path: Path) -> None:
    junk = tmp_path / "notes.txt"
    junk.write_text("this is not a capture\n")
    with pytest.raises(CaptureError, match="notes.txt"):
        list(offload.iter_triage_offloaded(junk, None))


def test_the_child_prepares_without_xgboost_or_scikit_learn() -> None:
    import inspect
    import subprocess

    code = (
        "import sys\n"
        "from minerscope.triage import load_triage_stack\n"
        "load_triage_stack()\n"
        "print('minerscope.model.classify' in sys.modules, 'xgboost' in sys.modules, 'sklearn' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["True", "False", "False"]  # scoring loaded, no xgboost
    assert "load_triage_stack()" in inspect.getsource(offload._serve)
