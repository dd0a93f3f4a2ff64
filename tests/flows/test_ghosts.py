"""The memory bound on remembered 5-tuples ("ghosts"): a long capture of short flows.

Each of thousands of UDP conversations sends one packet and goes silent; at the end the
server of the first and of the last conversation speaks again, after the idle timeout.
A remembered conversation keeps its client (the server's late packet is s2c); a forgotten
one takes the server's packet as the first sender's.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from minerscope.capture.pcap import iter_batches
from minerscope.flows import assemble as assemble_mod
from minerscope.flows.assemble import FlowAssembler
from minerscope.flows.records import FlowTable
from tests.flows.frames import Frame, udp, write_pcap

N_CONVERSATIONS = 6000
SERVER = "192.0.2.1"


def client(i: int) -> str:
    return f"10.0.{i >> 8}.{i & 255}"


@pytest.fixture(scope="module")
def many_short_flows(tmp_path_factory: pytest.TempPathFactory) -> Path:
    frames: list[Frame] = [udp(i * 0.01, client(i), 40000, SERVER, 3333) for i in range(N_CONVERSATIONS)]
    late = N_CONVERSATIONS * 0.01 + 5.0
    frames += [udp(late + j, SERVER, 3333, client(i), 40000) for j, i in enumerate((0, N_CONVERSATIONS - 1))]
    return write_pcap(frames, tmp_path_factory.mktemp("ghosts") / "short.pcap")


def assemble_tracking_slots(path: Path) -> tuple[FlowTable, int]:
    """Streamed in small batches; also the largest slot table the assembler allocated."""
    asm = FlowAssembler(idle_timeout=1.0)
    chunks = []
    most = 0
    for batch in iter_batches(path, batch_rows=500):
        chunks.append(asm.feed(batch))
        most = max(most, asm._logs.fst.shape[0])
    chunks.append(asm.finish())
    return FlowTable.concat(chunks), most


def late_flow_sources(table: FlowTable) -> list[str]:
    s = table.summary.sort("first_seen")
    return s["src"].to_list()[-2:]


def test_ghosts_within_room_keep_the_client(many_short_flows: Path) -> None:
    table, _ = assemble_tracking_slots(many_short_flows)
    assert len(table) == N_CONVERSATIONS + 2
    assert late_flow_sources(table) == [client(0), client(N_CONVERSATIONS - 1)]


def test_slot_table_stops_growing_past_ghost_room(
    many_short_flows: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(assemble_mod, "GHOST_ROOM", 1024)
    table, most = assemble_tracking_slots(many_short_flows)
    # ~100 flows live at once: the table holds them and the newest ghosts, not all 6000
    assert most <= 2048
    assert len(table) == N_CONVERSATIONS + 2
    # the oldest conversation was forgotten (its server is taken for the client), the newest kept
    assert late_flow_sources(table) == [SERVER, client(N_CONVERSATIONS - 1)]
