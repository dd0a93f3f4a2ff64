"""The writer produces captures that independent readers (scapy, dpkt) accept, byte-exactly."""

from __future__ import annotations

import gzip
import io
from pathlib import Path

import dpkt
import pytest
from scapy.layers.inet import IP, TCP
from scapy.layers.l2 import Ether
from scapy.utils import rdpcap

from minerscope.capture.writer import LINKTYPE_ETHERNET, LINKTYPE_RAW, PcapngWriter, PcapWriter

TS0 = 1_700_000_000_123_456_789


def _frames(n: int) -> list[bytes]:
    return [
        bytes(Ether() / IP(src="10.0.0.1", dst="10.0.0.2") / TCP(sport=1000 + i, dport=3333) / (b"x" * i))
        for i in range(n)
    ]


@pytest.mark.parametrize("big_endian", [False, True])
@pytest.mark.parametrize("nanosecond", [False, True])
def test_pcap_is_read_by_scapy_and_dpkt(tmp_path: Path, big_endian: bool, nanosecond: bool) -> None:
    frames = _frames(5)
    path = tmp_path / "w.pcap"
    with PcapWriter(path, LINKTYPE_ETHERNET, nanosecond=nanosecond, big_endian=big_endian) as w:
        for i, frame in enumerate(frames):
            w.write_packet(TS0 + i * 1_000_001_001, frame)
    got = rdpcap(str(path))
    assert [bytes(p) for p in got] == frames
    step = 1 if nanosecond else 1000
    for i, pkt in enumerate(got):
        expected_ns = (TS0 + i * 1_000_001_001) // step * step
        assert int(pkt.time * 1_000_000_000) == expected_ns
    with open(path, "rb") as f:
        assert [buf for _, buf in dpkt.pcap.Reader(f)] == frames


def test_pcap_orig_len_is_kept(tmp_path: Path) -> None:
    path = tmp_path / "snap.pcap"
    frame = _frames(1)[0]
    with PcapWriter(path, LINKTYPE_ETHERNET, snaplen=40) as w:
        w.write_packet(TS0, frame[:40], orig_len=len(frame))
    with open(path, "rb") as f:
        reader = dpkt.pcap.Reader(f)
        assert reader.snaplen == 40
        [(_, buf)] = list(reader)
    assert buf == frame[:40]
    raw = path.read_bytes()
    assert int.from_bytes(raw[24 + 12 : 24 + 16], "little") == len(frame)


def test_pcapng_is_read_by_scapy_and_dpkt(tmp_path: Path) -> None:
    frames = _frames(4)
    path = tmp_path / "w.pcapng"
    with PcapngWriter(path) as w:
        eth = w.add_interface(LINKTYPE_ETHERNET, name="eth0")
        for i, frame in enumerate(frames):
            w.write_packet(eth, TS0 + i, frame)
    got = rdpcap(str(path))
    assert [bytes(p) for p in got] == frames
    assert [int(p.time * 1_000_000_000) for p in got] == [TS0 + i for i in range(4)]
    with open(path, "rb") as f:
        assert [buf for _, buf in dpkt.pcapng.Reader(f)] == frames


def test_pcapng_multiple_interfaces_and_sections(tmp_path: Path) -> None:
    frames = _frames(3)
    path = tmp_path / "multi.pcapng"
    with PcapngWriter(path) as w:
        eth = w.add_interface(LINKTYPE_ETHERNET)
        raw = w.add_interface(LINKTYPE_RAW, tsresol_ns=False)
        assert (eth, raw) == (0, 1)
        w.write_packet(eth, TS0, frames[0])
        w.write_packet(raw, TS0, frames[1][14:])
        w.new_section()
        with pytest.raises(ValueError, match="interface 1"):
            w.write_packet(raw, TS0, frames[1])
        assert w.add_interface(LINKTYPE_ETHERNET) == 0
        w.write_packet(0, TS0, frames[2])
    got = rdpcap(str(path))
    assert [bytes(p) for p in got] == [frames[0], frames[1][14:], frames[2]]
    assert int(got[1].time * 1_000_000) == TS0 // 1000  # microsecond interface truncates


def test_output_is_deterministic_and_gzip_round_trips(tmp_path: Path) -> None:
    frames = _frames(3)

    def build(gz: bool) -> bytes:
        buf = io.BytesIO()
        with PcapngWriter(buf, gzip=gz) as w:
            iface = w.add_interface(LINKTYPE_ETHERNET)
            for i, frame in enumerate(frames):
                w.write_packet(iface, TS0 + i, frame)
        return buf.getvalue()

    plain = build(False)
    assert plain == build(False)
    compressed = build(True)
    assert compressed == build(True)  # no mtime/name in the gzip header
    assert compressed[:2] == b"\x1f\x8b"
    assert gzip.decompress(compressed) == plain
    path = tmp_path / "w.pcap.gz"
    with PcapWriter(path, gzip=True) as w:
        w.write_packet(TS0, frames[0])
    unpacked = tmp_path / "w.pcap"
    unpacked.write_bytes(gzip.decompress(path.read_bytes()))
    assert [bytes(p) for p in rdpcap(str(unpacked))] == frames[:1]
