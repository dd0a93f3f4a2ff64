"""The same traffic scores the same whatever link layer the capture framed it in.

A sensor sees the sample's packets as Ethernet padded to 60 bytes by the wire, as raw IP
(a VPN or tun interface), Linux cooked v2 (``tcpdump -i any``), 802.1Q-tagged on a trunk
port, or inside ERSPAN from a remote SPAN session. The packet sizes the features read are
Ethernet-equivalent (IP length + 14), so every framing gives the sample's scores exactly;
the flows' byte counts stay bytes on the wire.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from minerscope import resources
from minerscope.capture import writer as W
from minerscope.flows.assemble import assemble_capture
from minerscope.triage import triage_rows

SAMPLE = resources.sample_capture()

pytestmark = pytest.mark.skipif(not SAMPLE.is_file(), reason="bundled sample capture not generated")

_MACS = bytes.fromhex("020000000001020000000002")
_SENSOR_A, _SENSOR_B = bytes([192, 0, 2, 1]), bytes([192, 0, 2, 2])


def _outer_ipv4(payload: bytes, proto: int) -> bytes:
    """A router-to-sensor IPv4 header around ``payload`` (no options; checksum not checked)."""
    return (
        struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(payload), 0, 0, 64, proto, 0, _SENSOR_A, _SENSOR_B)
        + payload
    )


def _erspan2(frame: bytes) -> bytes:
    """``frame`` mirrored by ERSPAN type II: Ethernet / IPv4 / GRE (sequenced) / ERSPAN / frame."""
    gre = struct.pack("!HHI", 0x1000, 0x88BE, 7)
    erspan = struct.pack("!II", 0x10010064, 0)
    return _MACS + b"\x08\x00" + _outer_ipv4(gre + erspan + frame, 47)


FRAMINGS: dict[str, tuple[int, Callable[[bytes], bytes]]] = {
    "ethernet-padded": (W.LINKTYPE_ETHERNET, lambda f: f + bytes(max(0, 60 - len(f)))),
    "raw-ip": (W.LINKTYPE_RAW, lambda f: f[14:]),
    "linux-cooked-v2": (
        W.LINKTYPE_LINUX_SLL2,
        lambda f: f[12:14] + bytes(2) + struct.pack("!IHBB8s", 3, 1, 0, 6, f[6:12] + bytes(2)) + f[14:],
    ),
    "vlan": (W.LINKTYPE_ETHERNET, lambda f: f[:12] + struct.pack("!HH", 0x8100, 42) + f[12:]),
    "erspan": (W.LINKTYPE_ETHERNET, _erspan2),
}


@pytest.fixture(scope="module")
def sample_frames() -> list[tuple[int, bytes]]:
    """The sample's frames with their nanosecond timestamps (one interface, if_tsresol 9:
    the writer's own layout, read here without the reader under test)."""
    data = SAMPLE.read_bytes()
    frames: list[tuple[int, bytes]] = []
    pos = 0
    while pos < len(data):
        btype, blen = struct.unpack_from("<II", data, pos)
        if btype == 1:
            assert (
                data[pos + 8 : pos + 10] == b"\x01\x00" and b"\x09\x00\x01\x00\x09" in data[pos : pos + blen]
            )
        if btype == 6:
            _, hi, lo, caplen, _ = struct.unpack_from("<IIIII", data, pos + 8)
            frames.append(((hi << 32) | lo, data[pos + 28 : pos + 28 + caplen]))
        pos += blen
    assert all(frame[12:14] in (b"\x08\x00", b"\x86\xdd") for _, frame in frames)  # plain Ethernet
    assert sum(len(frame) < 60 for _, frame in frames) > 100  # so padding changes something
    return frames


def _reframed(tmp: Path, name: str, frames: list[tuple[int, bytes]]) -> Path:
    linktype, wrap = FRAMINGS[name]
    path = tmp / f"{name}.pcap"
    with W.PcapWriter(path, linktype, nanosecond=True) as w:
        for ts, frame in frames:
            w.write_packet(ts, wrap(frame))
    return path


@pytest.mark.parametrize("name", sorted(FRAMINGS))
def test_every_framing_gives_the_sample_s_packet_sizes_and_scores(
    tmp_path: Path, sample_frames: list[tuple[int, bytes]], name: str
) -> None:
    path = _reframed(tmp_path, name, sample_frames)
    ours, _ = assemble_capture(path)
    theirs, _ = assemble_capture(SAMPLE)
    key = ["src", "sport", "dst", "dport", "proto", "first_seen", "packets"]
    assert ours.summary.select(key).equals(theirs.summary.select(key))
    assert np.array_equal(ours.pkt_offsets, theirs.pkt_offsets)
    assert np.array_equal(ours.pkt_size, theirs.pkt_size)
    # the summary still counts bytes as they were on this wire
    wire = sum(len(FRAMINGS[name][1](frame)) for _, frame in sample_frames)
    assert int(ours.summary["bytes"].sum()) == wire != int(theirs.summary["bytes"].sum())

    rows, _ = triage_rows(path)
    sample_rows, _ = triage_rows(SAMPLE)
    scored = ["src", "sport", "dst", "dport", "p_mining", "coin", "stage1"]
    assert rows.select(scored).equals(sample_rows.select(scored))
    assert rows.filter(pl.col("stage1") == "mining").height >= 8
