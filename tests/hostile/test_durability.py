"""SIGKILL in a loop: the case file always opens, acknowledged work survives, models swap whole.

Each test kills a real writer process at random moments, again and again on the same
file: store writes (notes, pool confirmations, captures of flows) through
:mod:`minerscope.store`, model saves through :func:`minerscope.model.artifact.save_model`,
and ``minerscope scan`` recording captures in the case file. After every kill the file
must pass ``PRAGMA integrity_check``, every write acknowledged before the kill must be
there, and a model folder must load as the previous or the next complete model.
The campaign with many more kills is ``bench/bench_hostile.py``.
"""

from __future__ import annotations

import random
import sqlite3
import sys
import time
from pathlib import Path

import pytest

from minerscope.model.artifact import load_model
from minerscope.store import open_store
from minerscope.store.casefile import verify_case_file
from tests.capture.test_handshake import _sni_ext, build_client_hello
from tests.hostile.crash_writers import run_and_kill, scan_command, writer_command

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")

SEED = 9


def integrity_ok(path: Path) -> None:
    conn = sqlite3.connect(path)
    try:
        assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
    finally:
        conn.close()
    verify_case_file(path)


def test_store_writes_survive_repeated_sigkill(tmp_path: Path) -> None:
    rng = random.Random(SEED)
    path = tmp_path / "case.sqlite"
    notes: set[int] = set()
    pools: set[str] = set()
    captures: dict[int, int] = {}
    kills = 0
    start = 0
    for _ in range(8):
        run = run_and_kill(writer_command("store", path, start), rng.uniform(0.0, 0.25), ready="READY")
        assert run.killed, run.stderr
        kills += 1
        for line in run.lines:
            kind, *rest = line.split()
            if kind == "note":
                notes.add(int(rest[0]))
            elif kind == "pool":
                pools.add(rest[0])
            elif kind == "capture":
                captures[int(rest[0])] = int(rest[1])
            if kind != "READY":
                start = int(rest[-1]) + 1
        start += 1  # a write may have committed without its acknowledgement: skip its number
        integrity_ok(path)
        with open_store(path) as store:
            assert notes <= {n["id"] for n in store.list_notes()}
            assert pools <= {p["host"] for p in store.list_pools()}
            counts = dict(
                store.conn.execute("SELECT capture_id, count(*) FROM flows GROUP BY capture_id").fetchall()
            )
            for capture_id, n in captures.items():
                assert counts.get(capture_id) == n, (capture_id, counts.get(capture_id), n)
            # a capture's flows are one transaction: all of them or none, never a part
            assert set(counts.values()) <= {40}, counts
    assert kills == 8 and len(notes) + len(pools) + len(captures) > 10


def test_model_saves_are_old_or_new_never_a_mixture(tmp_path: Path) -> None:
    rng = random.Random(SEED)
    folder = tmp_path / "models" / "crash-model"
    last_acked = -1
    start = 0
    outcomes: list[int] = []
    for _ in range(3):
        run = run_and_kill(writer_command("model", folder, start), rng.uniform(0.0, 0.15), ready="READY")
        assert run.killed, run.stderr
        acked = [int(line.split()[1]) for line in run.lines if line.startswith("saved ")]
        last_acked = max(acked, default=last_acked)
        if last_acked < 0:
            assert not (folder / "metadata.json").exists() or load_model(folder)
            continue
        model = load_model(folder)  # checksums verified: a mixture would not load
        seq = int(model.metadata["seq"])
        # the last acknowledged save, or the one in flight when the kill came
        assert seq in (last_acked, last_acked + 1), (seq, last_acked)
        assert model.binary.num_boosted_rounds() == 3 + seq % 2
        outcomes.append(seq)
        start = seq + 1
    assert outcomes, "no save was ever acknowledged"
    leftovers = [p.name for p in folder.parent.iterdir() if p.name != folder.name]
    assert len(leftovers) <= 1, leftovers  # at most the staging folder of the last kill


def _capture(path: Path, n: int) -> Path:
    from minerscope.capture.writer import PcapWriter
    from tests.flows.frames import tcp_session

    frames = []
    for i in range(n):
        hello = build_client_hello([0x1301], [_sni_ext(f"svc{i}.example")])
        frames += tcp_session(
            10.0 + i,
            ("10.7.0.2", 40000 + i),
            ("203.0.113.5", 443),
            [(0, hello), (1, b"\x16\x03\x03\x00\x01\x02")],
        )
    frames.sort(key=lambda f: f[0])
    with PcapWriter(path) as writer:
        for ts, frame in frames:
            writer.write_packet(round(ts * 1e9), bytes(frame))
    return path


@pytest.mark.slow
def test_scan_store_survives_sigkill_at_random_points(tmp_path: Path) -> None:
    rng = random.Random(SEED)
    db = tmp_path / "case.sqlite"

    def scan(capture: Path, delay: float) -> tuple[bool, float]:
        cmd = scan_command(db, capture)
        began = time.monotonic()
        run = run_and_kill(cmd, delay)
        took = time.monotonic() - began
        assert run.killed or run.returncode == 0, run.stderr
        if not run.killed:
            assert len(run.lines) == int(capture.stem.split("-")[1])
        return not run.killed, took

    committed: dict[str, int] = {}
    first = _capture(tmp_path / "cap-5.pcap", 5)
    done, full_s = scan(first, 120.0)  # one complete scan: how long a scan takes here
    assert done
    committed[str(first.resolve())] = 5
    for k in range(2):
        n = 6 + k
        capture = _capture(tmp_path / f"cap-{n}.pcap", n)
        done, _ = scan(capture, rng.uniform(0.5, 1.1) * full_s)
        if done:
            committed[str(capture.resolve())] = n
        integrity_ok(db)
        with open_store(db) as store:
            stored = {c["path"]: c["flows"] for c in store.list_captures()}
        for path, flows in committed.items():
            assert stored.get(path) == flows, (path, stored)
        for path, flows in stored.items():  # a killed scan leaves all of a capture's flows or none
            n_expected = int(Path(path).stem.split("-")[1])
            assert flows in (0, n_expected), (path, flows)
