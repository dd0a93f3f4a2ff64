"""The live ring's block walker against the file reader, on the real frames of the bundled sample.

No socket is needed: the frames of ``sample_pcaps`` are laid out in TPACKET_V3 blocks as
the kernel writes them (block descriptor, ``tpacket3_hdr``, ``sockaddr_ll``, frame), and
:func:`walk_blocks` must give exactly the rows the pcap reader gives for the same frames,
drop loopback's outgoing copies when asked, and restore a VLAN tag the NIC stripped.
The real kernel layout is exercised by the loopback tests in ``tests/cli/test_live.py``.
"""

from __future__ import annotations

import itertools
import struct
from typing import Any

import dpkt
import numpy as np
import pytest

from minerscope import resources
from minerscope.capture.live import interface_linktype, privilege_hint, walk_blocks
from minerscope.capture.packets import PACKET_DTYPE
from minerscope.capture.pcap import read_all
from minerscope.errors import CaptureError

FRAMES = 3000
HDR = 48  # sizeof(struct tpacket3_hdr), already 16-aligned
MAC = 80  # TPACKET_ALIGN(HDR + sizeof(struct sockaddr_ll))
TP_STATUS_VLAN_VALID = 0x10
PACKET_HOST, PACKET_OUTGOING = 0, 4


def _align(n: int) -> int:
    return (n + 15) & ~15


def frame_record(
    ts: float, frame: bytes, *, pkttype: int = PACKET_HOST, vlan_tci: int | None = None, hatype: int = 1
) -> bytes:
    sec, nsec = int(ts), round((ts - int(ts)) * 1e9)
    status = TP_STATUS_VLAN_VALID if vlan_tci is not None else 0
    hdr = struct.pack(
        "<IIIIIIHHIIHH8x", 0, sec, nsec, len(frame), len(frame), status, MAC, MAC + 14, 0, vlan_tci or 0, 0, 0
    )
    sll = struct.pack("<HHiHBB8s", 17, 0x0008, 1, hatype, pkttype, 6, b"")
    body = hdr + sll + bytes(MAC - HDR - len(sll)) + frame
    return body + bytes(_align(len(body)) - len(body))


def block(records: list[bytes]) -> bytes:
    """One TPACKET_V3 block: descriptor, then the frames chained by ``tp_next_offset``."""
    chained = [
        struct.pack("<I", len(r) if i < len(records) - 1 else 0) + r[4:] for i, r in enumerate(records)
    ]
    payload = b"".join(chained)
    first = 48
    desc = struct.pack("<IIIIII", 3, 0, 1, len(records), first, first + len(payload))
    return desc + bytes(first - len(desc)) + payload


@pytest.fixture(scope="module")
def sample_frames() -> list[tuple[float, bytes]]:
    with resources.sample_capture().open("rb") as fh:
        reader = dpkt.pcapng.Reader(fh)
        assert reader.datalink() == dpkt.pcap.DLT_EN10MB
        return [(ts, bytes(buf)) for ts, buf in itertools.islice(reader, FRAMES)]


def walk(blocks: list[bytes], skip_outgoing: bool, capacity: int) -> tuple[Any, Any]:
    buf = np.frombuffer(b"".join(blocks), np.uint8).copy()
    starts = np.cumsum([0] + [len(b) for b in blocks[:-1]]).astype(np.int64)
    out = np.zeros(capacity, PACKET_DTYPE)
    n = walk_blocks(buf, starts, 1, skip_outgoing, out)
    return out[:n], buf


def test_blocks_decode_to_the_rows_the_file_reader_gives(sample_frames: list[tuple[float, bytes]]) -> None:
    records = [frame_record(ts, frame) for ts, frame in sample_frames]
    blocks = [block(records[i : i + 700]) for i in range(0, len(records), 700)]
    rows, buf = walk(blocks, skip_outgoing=True, capacity=FRAMES)

    expected, _report = read_all(resources.sample_capture())
    want = expected.packets[:FRAMES]
    assert rows.shape[0] == FRAMES
    for name in PACKET_DTYPE.names or ():
        if name in ("payload_off", "iface"):
            continue
        if name == "ts_ns":  # dpkt's float seconds lose the last digits of a nanosecond stamp
            assert np.abs(rows[name] - want[name]).max() < 1000
            continue
        assert np.array_equal(rows[name], want[name]), name
    for i in range(0, FRAMES, 97):
        off, cap = int(rows[i]["payload_off"]), int(rows[i]["payload_cap"])
        assert buf[off : off + cap].tobytes() == expected.payload(i)


def test_loopback_outgoing_copies_are_dropped_only_when_asked(
    sample_frames: list[tuple[float, bytes]],
) -> None:
    """Loopback's outgoing copy goes (the incoming one is the same packet); an outgoing
    packet of an Ethernet interface stays (``-i any``: this machine's own traffic)."""
    ts, frame = sample_frames[0]
    looped = [
        frame_record(ts, frame, pkttype=PACKET_OUTGOING, hatype=772),
        frame_record(ts, frame, hatype=772),
    ]
    sent = frame_record(ts, frame, pkttype=PACKET_OUTGOING)
    blocks = [block([*looped, sent])]
    assert walk(blocks, skip_outgoing=True, capacity=4)[0].shape[0] == 2
    assert walk(blocks, skip_outgoing=False, capacity=4)[0].shape[0] == 3


def test_a_vlan_tag_the_nic_stripped_is_restored(sample_frames: list[tuple[float, bytes]]) -> None:
    ts, frame = sample_frames[0]
    rows, _ = walk([block([frame_record(ts, frame, vlan_tci=0x2123)])], skip_outgoing=True, capacity=1)
    assert int(rows[0]["vlan"]) == 0x123 and int(rows[0]["ip_version"]) in (4, 6)


def test_interface_names_are_checked_before_any_socket() -> None:
    assert interface_linktype("lo") == 1
    for bad in ("no-such-if0", "../etc", ""):
        with pytest.raises(CaptureError):
            interface_linktype(bad)
    assert "CAP_NET_RAW" in privilege_hint("eth0") and "setcap" in privilege_hint("eth0")
