"""Have every numba kernel compiled before a loop that cannot wait for it.

numba compiles a kernel on its first call and keeps the machine code in an on-disk cache:
the first run on a machine spends tens of seconds compiling (about 40 kernels: decoder,
flow assembler, feature series), later runs load them in well under a second. A file
scan can absorb that. A live capture cannot: the kernel's packet ring holds under two
seconds of traffic, so the first packets would be dropped while the decoder, the
assembler and the feature kernels compile on their first call. ``live`` therefore calls
:func:`compile_kernels` before it opens the ring.

The bundled sample is the workload: it exercises every path (TLS, DNS, WebSocket,
plaintext Stratum, window cuts) with real bytes, so no kernel is left for later. Given
the model, its flows are scored too: scoring's tree kernels (probabilities and Saabas
attributions for benign windows, exact TreeSHAP and the coin model for its miners) run
in the same loop as the ring.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from minerscope.capture.decode import LINKTYPE_ETHERNET
from minerscope.capture.live import walk_blocks
from minerscope.capture.packets import PACKET_DTYPE
from minerscope.capture.pcap import iter_batches
from minerscope.features.windows import extract_features
from minerscope.flows import _kernels as flow_kernels
from minerscope.flows.assemble import FlowAssembler
from minerscope.flows.records import FlowTable
from minerscope.resources import sample_capture

if TYPE_CHECKING:
    from minerscope.model.artifact import Model

WARMUP_WINDOW_S = 60.0
"""Window for the warm-up: short enough that the ten-minute sample's flows get cut."""


def kernels_cached() -> bool:
    """Whether numba's on-disk cache holds this build's kernels (False on a machine's first
    run, when ``scan`` spends ~20 s compiling before its first block and says so).

    Looks for the cache index of a kernel of each stage; numba keeps it next to the module
    (or under ``NUMBA_CACHE_DIR``). True when that cannot be told (another numba layout):
    the notice is a courtesy, not worth a false alarm.
    """
    from minerscope.capture.decode import walk_pcap
    from minerscope.features._kernels import series_kernel
    from minerscope.model.saabas import _saabas_top

    kernels: tuple[Any, ...] = (walk_pcap, flow_kernels.track, series_kernel, _saabas_top)
    try:
        return all(Path(kernel._cache._cache_file._index_path).is_file() for kernel in kernels)
    except AttributeError:
        return True


def compile_kernels(model: Model | None = None) -> float:
    """Run the sample through decode, assembly and features (and scoring with ``model``)
    once; returns seconds taken.

    After it returns, no kernel of the packet path compiles on first use any more in this
    process (numba keys compiled code by argument types, which the sample shares with
    every capture).
    """
    start = time.monotonic()
    # Kernels the sample does not reach compile from empty arrays of the right types: the
    # ring decoder (only the live loop calls it), the flow table's rehash on growth (the
    # sample never has 1024 flows open at once; a busy link does) and the prefix arena's
    # compaction (the sample's prefixes never fill it).
    walk_blocks(
        np.zeros(0, np.uint8), np.zeros(0, np.int64), LINKTYPE_ETHERNET, False, np.zeros(0, PACKET_DTYPE)
    )
    flow_kernels.rebuild_hash(
        np.zeros((1, flow_kernels.KEY_COLS), np.uint64),
        np.zeros((1, flow_kernels.STATE_COLS), np.int64),
        np.full(2, -1, np.int32),
    )
    flow_kernels.compact_prefixes(np.zeros((1, flow_kernels.STATE_COLS), np.int64), np.zeros(1, np.uint8), 0)
    assembler = FlowAssembler(active_timeout=WARMUP_WINDOW_S, capture="warm-up")
    tables = [assembler.feed(batch) for batch in iter_batches(sample_capture())]
    tables.append(assembler.finish())
    table = FlowTable.concat([t for t in tables if len(t)])
    extract_features(table, window_s=WARMUP_WINDOW_S)
    if model is not None:
        from minerscope._pipeline import score_rows
        from minerscope.model.dedupe import unique_rows

        score_rows(table, model, None)
        unique_rows(np.zeros((2, 2), np.float32))  # repeated windows (the sample has none)
    return time.monotonic() - start
