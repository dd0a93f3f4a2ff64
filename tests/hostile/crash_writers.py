"""Writers to kill: child processes that write a case file or a model and acknowledge each
write on stdout once it returned, plus the harness that SIGKILLs them at a random moment.

An acknowledgement line is printed (and flushed) only after the write call returned, so
"acknowledged before the kill" is exactly "committed as far as the caller knows": after
the kill, every acknowledged write must be found, and the file must open and pass
``PRAGMA integrity_check``. Used by ``tests/hostile/test_durability.py`` (a few kills) and
``bench/bench_hostile.py`` (the campaign).

Child: ``python -m tests.hostile.crash_writers store|model PATH [START]``.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


@dataclass(slots=True)
class Killed:
    """One run of a writer: its complete stdout lines, exit status, and the kill delay."""

    lines: list[str]
    returncode: int
    delay_s: float
    stderr: str

    @property
    def killed(self) -> bool:
        return self.returncode == -signal.SIGKILL


def run_and_kill(
    args: list[str], delay_s: float, *, ready: str | None = None, timeout: float = 120.0
) -> Killed:
    """Start ``args`` (a python -m / CLI command), SIGKILL it ``delay_s`` after start (or after
    the line ``ready`` appeared), and collect every complete line it wrote."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, cwd=REPO)
    assert proc.stdout is not None and proc.stderr is not None
    lines: list[str] = []
    seen_ready = threading.Event()
    if ready is None:
        seen_ready.set()
    err: list[bytes] = []

    def drain() -> None:
        assert proc.stdout is not None
        for raw in proc.stdout:
            if not raw.endswith(b"\n"):
                break  # killed in the middle of a line: not an acknowledgement
            text = raw.decode("utf-8", "replace").rstrip("\n")
            lines.append(text)
            if ready is not None and text == ready:
                seen_ready.set()

    def drain_err() -> None:
        assert proc.stderr is not None
        err.append(proc.stderr.read())

    threads = [threading.Thread(target=drain, daemon=True), threading.Thread(target=drain_err, daemon=True)]
    for thread in threads:
        thread.start()
    seen_ready.wait(timeout)
    deadline = time.monotonic() + delay_s
    while time.monotonic() < deadline and proc.poll() is None:
        time.sleep(min(0.005, max(0.0, deadline - time.monotonic())))
    if proc.poll() is None:
        proc.send_signal(signal.SIGKILL)
    proc.wait(timeout)
    for thread in threads:
        thread.join(timeout)
    proc.stdout.close()
    proc.stderr.close()
    return Killed(lines, proc.returncode, delay_s, b"".join(err).decode("utf-8", "replace")[-4000:])


def scan_command(db: Path, capture: Path) -> list[str]:
    """The ``minerscope scan`` run the SIGKILL loops kill: one worker, recording into ``db``."""
    return [
        sys.executable,
        "-m",
        "minerscope",
        "--db",
        str(db),
        "scan",
        "-q",
        "-j1",
        "--format",
        "jsonl",
        str(capture),
    ]


def writer_command(kind: str, path: Path, start: int = 0) -> list[str]:
    return [sys.executable, "-m", "tests.hostile.crash_writers", kind, str(path), str(start)]


# --- the children -----------------------------------------------------------------------


def _store_writer(path: Path, start: int) -> None:
    """Notes, pool confirmations and whole captures of flows, in a loop, each acknowledged."""
    import polars as pl

    from minerscope.store import open_store

    rows = pl.DataFrame(
        {
            "flow_id": list(range(40)),
            "proto": [6] * 40,
            "ip_version": [4] * 40,
            "src": [f"10.0.0.{i + 1}" for i in range(40)],
            "sport": [40000 + i for i in range(40)],
            "dst": ["203.0.113.9"] * 40,
            "dport": [3333] * 40,
            "first_seen": [1.0e9 + i for i in range(40)],
            "last_seen": [1.0e9 + i + 60 for i in range(40)],
            "packets": [10] * 40,
            "bytes": [1000] * 40,
            "sni": [f"s{i}.example" for i in range(40)],
        }
    )
    spool = path.parent / "captures"
    spool.mkdir(exist_ok=True)
    store = open_store(path, actor="crash-writer")
    print("READY", flush=True)
    i = start
    while True:
        step = i % 3
        if step == 0:
            note = store.add_note("case", "", f"note {i} " + "n" * (i % 700))
            print(f"note {note} {i}", flush=True)
        elif step == 1:
            host = f"198.18.{(i // 250) % 250}.{i % 250 + 1}"
            store.confirm_pool(host, 3333, names=[f"p{i}.pool.example"], evidence=f"kill test {i}")
            print(f"pool {host} {i}", flush=True)
        else:
            capture = spool / f"cap{i}.pcap"
            capture.write_bytes(b"capture %d\n" % i)
            capture_id = store.add_capture(capture, packets=i)
            store.record_flows(capture_id, rows)
            print(f"capture {capture_id} {rows.height} {i}", flush=True)
        i += 1


def model_parts(seed: int) -> tuple[object, dict[str, object]]:
    """A small real booster over real feature names, and its sidecar metadata."""
    import numpy as np
    import xgboost

    from minerscope.features.schema import FEATURE_NAMES, SCHEMA_HASH, SCHEMA_VERSION

    features = list(FEATURE_NAMES[:4])
    rng = np.random.default_rng(seed)
    x = rng.random((200, len(features)))
    y = (x[:, 0] + rng.random(200) * 0.2 > 0.6).astype(int)
    data = xgboost.DMatrix(x, label=y, feature_names=features)
    booster = xgboost.train({"objective": "binary:logistic", "max_depth": 3, "nthread": 1}, data, 3 + seed)
    meta: dict[str, object] = {
        "schema_hash": SCHEMA_HASH,
        "schema_version": SCHEMA_VERSION,
        "window_s": 300.0,
        "binary": {"features": features, "threshold": 0.5},
    }
    return booster, meta


def _model_writer(path: Path, start: int) -> None:
    """Save two alternating models into one folder forever; acknowledge each save."""
    from minerscope.model.artifact import save_model

    parts = [model_parts(0), model_parts(1)]
    print("READY", flush=True)
    i = start
    while True:
        booster, meta = parts[i % 2]
        save_model(path, booster, {**meta, "seq": i})  # type: ignore[arg-type]
        print(f"saved {i}", flush=True)
        i += 1


if __name__ == "__main__":
    kind, target = sys.argv[1], Path(sys.argv[2])
    first = int(sys.argv[3]) if len(sys.argv) > 3 else 0
    {"store": _store_writer, "model": _model_writer}[kind](target, first)
