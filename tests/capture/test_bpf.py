"""Capture filters on files, checked against libpcap's own ``bpf_filter``.

libpcap (the library tcpdump and Wireshark capture with) compiles the expressions, and
its interpreter, called through ctypes, is the oracle: on real capture bytes (the bundled
sample, and frames of every link type the reader decodes) and on random programs that
exercise every instruction, including loads past the captured bytes and division by zero.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import random
from pathlib import Path

import numpy as np
import pytest
from scapy.utils import RawPcapNgReader

from minerscope.capture import bpf
from minerscope.capture import writer as W
from minerscope.capture.pcap import CaptureReader, read_all
from minerscope.errors import InputError
from minerscope.resources import sample_capture
from tests.capture.test_pcap import LINKS, STEP, TS0, _ip_packets
from tests.conftest import needs_libpcap

_PCAP = ctypes.util.find_library("pcap")
pytestmark = needs_libpcap

EXPRESSIONS = (
    "tcp port 443",
    "not port 53",
    "udp",
    "host 127.20.0.53",
    "net 127.20.0.0/16 and tcp",
    "tcp[tcpflags] & (tcp-syn|tcp-fin) != 0",
    "ip6 or icmp",
    "vlan and tcp",
    "less 120",
    "greater 1000",
    "ip[8] < 64",
    "tcp[((tcp[12:1] & 0xf0) >> 2):4] = 0x16030100",  # a TLS ClientHello, found by offset arithmetic
    "ip and ip[6:2] & 0x1fff != 0",  # fragments
    "len % 7 = 3",
)


class _Insn(ctypes.Structure):
    _fields_ = [
        ("code", ctypes.c_ushort),
        ("jt", ctypes.c_ubyte),
        ("jf", ctypes.c_ubyte),
        ("k", ctypes.c_uint),
    ]


def _libpcap_filter() -> ctypes._CFuncPtr:
    lib = ctypes.CDLL(str(_PCAP))
    fn = lib.bpf_filter
    fn.argtypes = [ctypes.POINTER(_Insn), ctypes.c_char_p, ctypes.c_uint, ctypes.c_uint]
    fn.restype = ctypes.c_uint
    return fn


def _oracle(prog: np.ndarray, frame: bytes, wirelen: int) -> bool:
    insns = (_Insn * prog.shape[0])(*[_Insn(*map(int, row)) for row in prog])
    return _libpcap_filter()(insns, frame, wirelen, len(frame)) != 0


def _ours(prog: np.ndarray, frame: bytes, wirelen: int) -> bool:
    buf = np.frombuffer(frame + b"\0", np.uint8)[: len(frame) + 1]  # a byte past the end: never read
    mem = np.zeros(bpf.MEMWORDS, np.int64)
    mem[:] = 0xDEAD  # what an earlier packet left: the program must not see it
    return bool(bpf.accepts(prog, buf, 0, len(frame), wirelen, mem))


def _sample_frames() -> list[tuple[bytes, int]]:
    with RawPcapNgReader(str(sample_capture())) as reader:
        return [(bytes(frame), int(meta.wirelen)) for frame, meta in reader]


@pytest.mark.skipif(not sample_capture().is_file(), reason="bundled sample not generated")
@pytest.mark.parametrize("expression", EXPRESSIONS)
def test_the_reader_keeps_exactly_what_libpcap_keeps_on_the_sample(expression: str) -> None:
    frames = _sample_frames()
    prog = bpf.program_from_bytes(bpf.compile_bpf(expression, 1))
    wanted = [i for i, (frame, wirelen) in enumerate(frames) if _oracle(prog, frame, wirelen)]
    assert [i for i, (f, w) in enumerate(frames) if _ours(prog, f, w)] == wanted

    everything, _ = read_all(sample_capture())
    reader = CaptureReader(sample_capture(), bpf=expression)
    kept = np.concatenate([b.packets["ts_ns"] for b in reader.batches()] or [np.zeros(0, np.int64)])
    assert kept.tolist() == everything.packets["ts_ns"][wanted].tolist()
    assert reader.report.packets == len(wanted)
    assert reader.report.filtered == len(frames) - len(wanted)
    assert sum(reader.report.linktypes.values()) == len(frames)
    assert reader.report.warning is None


def test_every_link_type_is_filtered_with_its_own_program(tmp_path: Path) -> None:
    """One pcapng, one interface per link type: the filter compiled per link type keeps
    what libpcap keeps; a link type the expression cannot apply to is left out, and said."""
    path = tmp_path / "links.pcapng"
    frames: list[tuple[int, bytes]] = []
    with W.PcapngWriter(path) as w:
        for name in sorted(LINKS):
            linktype, wrap = LINKS[name]
            iface = w.add_interface(linktype)
            for ip in _ip_packets():
                w.write_packet(iface, TS0 + len(frames) * STEP, wrap(ip))
                frames.append((linktype, wrap(ip)))
    for expression in ("tcp", "udp port 53", "ip6", "ether host 02:02:02:02:02:02 or ip6"):
        wanted = []
        for i, (linktype, frame) in enumerate(frames):
            try:
                prog = bpf.program_from_bytes(bpf.compile_bpf(expression, linktype))
            except InputError:
                continue
            if _oracle(prog, frame, len(frame)):
                wanted.append(i)
        reader = CaptureReader(path, bpf=expression)
        kept = np.concatenate([b.packets["ts_ns"] for b in reader.batches()])
        assert kept.tolist() == [TS0 + i * STEP for i in wanted], expression
        assert reader.report.filtered == len(frames) - len(wanted)
        if expression.startswith("ether"):
            assert "--bpf does not apply to link type" in (reader.report.warning or "")
            assert "RAW" in (reader.report.warning or "")
        else:
            assert reader.report.warning is None


def test_classic_pcap_and_gzip(tmp_path: Path) -> None:
    ips = _ip_packets()
    for compress in (False, True):
        path = tmp_path / f"raw{compress}.pcap"
        with W.PcapWriter(path, W.LINKTYPE_RAW, gzip=compress) as w:
            for i, ip in enumerate(ips):
                w.write_packet(TS0 + i * STEP, ip)
        prog = bpf.program_from_bytes(bpf.compile_bpf("udp or icmp", W.LINKTYPE_RAW))
        wanted = [i for i, ip in enumerate(ips) if _oracle(prog, ip, len(ip))]
        assert 0 < len(wanted) < len(ips)
        reader = CaptureReader(path, bpf="udp or icmp")
        kept = np.concatenate([b.packets["ts_ns"] for b in reader.batches()])
        assert kept.tolist() == [(TS0 + i * STEP) // 1000 * 1000 for i in wanted]  # microsecond pcap


def test_a_filter_that_keeps_nothing_still_reports_every_packet(tmp_path: Path) -> None:
    path = tmp_path / "raw.pcap"
    with W.PcapWriter(path, W.LINKTYPE_RAW) as w:
        for i, ip in enumerate(_ip_packets()):
            w.write_packet(TS0 + i * STEP, ip)
    reader = CaptureReader(path, bpf="port 1")
    assert [len(b.packets) for b in reader.batches()] == []
    assert reader.report.packets == 0 and reader.report.filtered == len(_ip_packets())
    assert reader.report.complete


def test_bad_expressions_are_one_line_input_errors(tmp_path: Path) -> None:
    path = tmp_path / "raw.pcap"
    with W.PcapWriter(path, W.LINKTYPE_RAW) as w:
        w.write_packet(TS0, _ip_packets()[0])
    with pytest.raises(InputError, match=r"--bpf 'tcp prot 443'") as err:
        CaptureReader(path, bpf="tcp prot 443")
    assert "\n" not in str(err.value)
    with pytest.raises(InputError, match="--bpf 'ether host 1:2:3:4:5:6'"):
        CaptureReader(path, bpf="ether host 1:2:3:4:5:6")  # no Ethernet header on raw IP


def _random_program(rnd: random.Random) -> np.ndarray:
    """A valid program of 1-24 instructions over every opcode, ending in a return. It first
    zeroes the scratch memory: libpcap leaves it uninitialised (its compiler never reads a
    slot before storing to it), so a read of a fresh slot would compare garbage."""
    codes = sorted(bpf.VALID_CODES)
    n = rnd.randint(1, 24)
    rows = [(bpf.ST, 0, 0, slot) for slot in range(bpf.MEMWORDS)]  # A is 0 at the start
    for pc in range(n - 1):
        code = rnd.choice(codes)
        cls, op = code & 0x07, code & 0xF0
        k = rnd.choice([rnd.randint(0, 70), rnd.randint(0, 0xFFFFFFFF), rnd.randint(0, 3)])
        jt = jf = 0
        if cls in (bpf.ST, bpf.STX) or (cls in (bpf.LD, bpf.LDX) and code & 0xE0 == bpf.MEM):
            k %= bpf.MEMWORDS
        elif cls == bpf.JMP:
            room = n - pc - 2  # instructions between this jump and the final return
            jt, jf = rnd.randint(0, min(room, 255)), rnd.randint(0, min(room, 255))
            if code == bpf.JMP | bpf.JA:
                k = rnd.randint(0, room)
        elif cls == bpf.ALU and code & 0x08 == bpf.SRC_K:
            if op in (bpf.DIV, bpf.MOD):
                k = k or 1
            elif op in (bpf.LSH, bpf.RSH):
                k %= 32
        rows.append((code, jt, jf, k))
    rows.append((rnd.choice([bpf.RET | bpf.RVAL_A, bpf.RET | bpf.RVAL_K]), 0, 0, rnd.choice([0, 1, 262144])))
    prog = np.array(rows, np.int64)
    bpf.validate(prog)
    return prog


def test_random_programs_agree_with_libpcap_instruction_by_instruction() -> None:
    """Every opcode, on packets of 0-80 bytes: loads past the captured bytes, indexed loads
    whose offset overflows, division and modulus by a zero X, shifts by X >= 32."""
    rnd = random.Random(20261207)
    disagreements = []
    for _ in range(3000):
        prog = _random_program(rnd)
        for _ in range(8):
            frame = bytes(rnd.getrandbits(8) for _ in range(rnd.randint(0, 80)))
            wirelen = len(frame) + rnd.choice([0, 0, 7, 100000])
            if _ours(prog, frame, wirelen) != _oracle(prog, frame, wirelen):
                disagreements.append((prog.tolist(), frame.hex(), wirelen))
    assert not disagreements, disagreements[:3]


@pytest.mark.parametrize(
    ("rows", "needle"),
    [
        ([(0xFFFF, 0, 0, 0)], "unknown opcode"),
        ([(bpf.JMP | bpf.JEQ, 5, 0, 0), (bpf.RET, 0, 0, 1)], "jumps past the end"),
        ([(bpf.ST, 0, 0, 16), (bpf.RET, 0, 0, 1)], "scratch slot 16"),
        ([(bpf.ALU | bpf.DIV, 0, 0, 0), (bpf.RET, 0, 0, 1)], "divides by the constant 0"),
        ([(bpf.ALU | bpf.LSH, 0, 0, 32), (bpf.RET, 0, 0, 1)], "shifts by 32"),
        ([(bpf.LD | bpf.IMM, 0, 0, 1)], "must end with a return"),
    ],
)
def test_programs_that_would_misbehave_are_refused(
    rows: list[tuple[int, int, int, int]], needle: str
) -> None:
    with pytest.raises(ValueError, match=needle):
        bpf.validate(np.array(rows, np.int64))


def test_a_filtered_read_of_a_truncated_capture_keeps_what_it_keeps_whole(tmp_path: Path) -> None:
    """Damage with a filter on: every complete packet before the damage that the filter
    keeps is delivered, the report names the same offset, and nothing is read past it."""
    ips = _ip_packets()
    path = tmp_path / "small.pcapng"
    with W.PcapngWriter(path) as w:
        iface = w.add_interface(W.LINKTYPE_RAW)
        for i, ip in enumerate(ips):
            w.write_packet(iface, TS0 + i, ip)
    raw = path.read_bytes()
    cut = tmp_path / "cut.pcapng"
    for k in range(4, len(raw) + 1, 7):
        cut.write_bytes(raw[:k])
        everything, plain = read_all(cut)
        wanted = everything.packets["ts_ns"][everything.packets["ip_version"] == 6].tolist()
        reader = CaptureReader(cut, bpf="ip6")
        kept = [int(t) for b in reader.batches() for t in b.packets["ts_ns"]]
        assert kept == wanted, k
        report = reader.report
        assert (report.complete, report.damage_offset) == (plain.complete, plain.damage_offset), k
        assert report.packets + report.filtered == plain.packets, k
