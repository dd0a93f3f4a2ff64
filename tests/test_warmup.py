"""After the warm-up, the packet path and scoring compile nothing more (live capture relies on it)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

# Run in a fresh interpreter: in the test process other tests have compiled kernels already.
SCRIPT = """
import importlib, json, pkgutil
import minerscope
from numba.core.registry import CPUDispatcher
from minerscope.warmup import compile_kernels

def kernels():
    found = {}
    for info in pkgutil.walk_packages(minerscope.__path__, "minerscope."):
        if info.name.startswith("minerscope.tui"):
            continue
        module = importlib.import_module(info.name)
        for name, obj in vars(module).items():
            if isinstance(obj, CPUDispatcher) and obj.__module__ == info.name:
                found[info.name + "." + name] = len(obj.signatures)
    return found

from minerscope.model.artifact import load_model
model = load_model(None)
compile_kernels(model)
before = kernels()
# a different cut of the same kind of input: small batches, the default window, a busy table
from minerscope.capture.pcap import iter_batches
from minerscope.features.windows import extract_features
from minerscope.flows.assemble import FlowAssembler
from minerscope.flows.records import FlowTable
from minerscope.resources import sample_capture
assembler = FlowAssembler(idle_timeout=5.0, active_timeout=300.0)
tables = [assembler.feed(b) for b in iter_batches(sample_capture(), batch_bytes=1 << 16)]
tables.append(assembler.finish())
table = FlowTable.concat([t for t in tables if len(t)])
extract_features(table, window_s=300.0, whole_flow=False)
from minerscope._pipeline import score_rows
rows = score_rows(table, model, None)
assert (rows["verdict"] == "mining").sum() >= 8 and rows["coin"].drop_nulls().len() >= 8
after = kernels()
print(json.dumps({"before": before, "after": after}))
"""


def test_no_kernel_compiles_after_the_warm_up() -> None:
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT], capture_output=True, text=True, cwd=REPO, timeout=240, check=False
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.strip().splitlines()[-1])
    before, after = result["before"], result["after"]
    grew = {name: (before.get(name, 0), n) for name, n in after.items() if n > before.get(name, 0)}
    assert grew == {}, f"compiled after the warm-up: {grew}"
    assert before["minerscope.capture.live.walk_blocks"] >= 1
    assert before["minerscope.flows._kernels.rebuild_hash"] >= 1
    for scoring in ("saabas._saabas_top", "predict._sigmoid", "predict._softmax", "treeshap._treeshap"):
        assert before.get("minerscope.model." + scoring, 0) >= 1, scoring
