"""Capture filters (tcpdump syntax) for files: libpcap compiles, a compiled VM runs.

Why: a pre-ingest filter is what people ask for first on big captures (brimdata/super
#1987, PROTOCOLS.md 4): ``not net 10.9.0.0/16`` or ``tcp and not port 22`` shrinks the
work before any flow is assembled, with the syntax every analyst knows. For a live
interface the kernel runs the program (:mod:`minerscope.capture.live`); for a file the
reader runs it on each record's bytes, before decoding, so a left-out packet costs no
decode and reaches no later stage.

The expression is compiled by libpcap itself (a dead handle per link type, no privileges
needed), so ``host``, ``port``, ``vlan``, ``tcp[13] & 2`` ... mean exactly what
they mean to tcpdump and Wireshark. :func:`accepts` is a classic BPF interpreter in numba
following libpcap's ``bpf_filter`` (``bpf_filter.c``) instruction by instruction: 32-bit
unsigned arithmetic, a load past the captured bytes or a division by zero rejects the
packet, ``len`` is the original wire length. ``tests/capture/test_bpf.py`` checks it
against libpcap's own ``bpf_filter`` on real captures and on random programs.

A pcapng file may hold interfaces of different link types; the filter is compiled once
per link type the reader can decode (:func:`programs_by_linktype`). Packets of a link
type the expression does not apply to (``ether host`` on raw IP) are left out, like
packets the filter rejects, and the reader's report says so.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
from collections.abc import Iterable
from typing import Any

import numpy as np
import numpy.typing as npt
from numba import njit

from minerscope.errors import InputError

I64 = npt.NDArray[np.int64]
U8 = npt.NDArray[np.uint8]

INSN_DTYPE = np.dtype([("code", "<u2"), ("jt", "u1"), ("jf", "u1"), ("k", "<u4")])
"""``struct bpf_insn`` as libpcap lays it out (8 bytes, host byte order: little-endian here)."""

MEMWORDS = 16
"""Scratch memory slots of a classic BPF machine (``BPF_MEMWORDS``)."""

MAX_INSNS = 4096
"""Longest program accepted (``BPF_MAXINSNS``)."""

# instruction classes, sizes, modes, operations (linux/filter.h, pcap/bpf.h)
LD, LDX, ST, STX, ALU, JMP, RET, MISC = range(8)
W, H, B = 0x00, 0x08, 0x10
IMM, ABS, IND, MEM, LEN, MSH = 0x00, 0x20, 0x40, 0x60, 0x80, 0xA0
ADD, SUB, MUL, DIV, OR, AND, LSH, RSH, NEG, MOD, XOR = (
    0x00, 0x10, 0x20, 0x30, 0x40, 0x50, 0x60, 0x70, 0x80, 0x90, 0xA0,
)  # fmt: skip
JA, JEQ, JGT, JGE, JSET = 0x00, 0x10, 0x20, 0x30, 0x40
SRC_K, SRC_X = 0x00, 0x08
RVAL_K, RVAL_A = 0x00, 0x10
TAX, TXA = 0x00, 0x80

_M32 = 0xFFFFFFFF

NO_PROGRAM = -1
"""``prog_at`` length of a link type the filter cannot apply to: its packets are left out."""


def _valid_codes() -> frozenset[int]:
    codes = {LD | W | ABS, LD | H | ABS, LD | B | ABS, LD | W | IND, LD | H | IND, LD | B | IND}
    codes |= {LD | W | LEN, LDX | W | LEN, LD | IMM, LDX | IMM, LD | MEM, LDX | MEM, LDX | MSH | B}
    codes |= {ST, STX, JMP | JA, RET | RVAL_K, RET | RVAL_A, MISC | TAX, MISC | TXA, ALU | NEG}
    codes |= {
        ALU | op | src for op in (ADD, SUB, MUL, DIV, OR, AND, LSH, RSH, MOD, XOR) for src in (SRC_K, SRC_X)
    }
    codes |= {JMP | op | src for op in (JEQ, JGT, JGE, JSET) for src in (SRC_K, SRC_X)}
    return frozenset(codes)


VALID_CODES = _valid_codes()


def program_from_bytes(raw: bytes) -> I64:
    """``struct bpf_insn`` bytes -> the ``(n, 4)`` int64 array :func:`accepts` runs, validated.

    Raises:
        ValueError: the program would make the machine misbehave (see :func:`validate`).
    """
    if len(raw) % INSN_DTYPE.itemsize:
        raise ValueError(f"a BPF program is a whole number of 8-byte instructions, got {len(raw)} bytes")
    insns = np.frombuffer(raw, INSN_DTYPE)
    prog = np.stack([insns[f].astype(np.int64) for f in ("code", "jt", "jf", "k")], axis=1)
    validate(prog)
    return np.ascontiguousarray(prog)


def validate(prog: I64) -> None:
    """Refuse what libpcap's ``bpf_validate`` refuses, so :func:`accepts` needs no checks
    of its own on the program: unknown opcodes, jumps out of the program or backwards,
    scratch slots past 15, division by a constant zero, shifts by a constant of 32 or
    more, and a last instruction that is not a return. (Programs libpcap compiled always
    pass; the check guards hand-made ones.)

    Raises:
        ValueError: naming the first bad instruction.
    """
    n = prog.shape[0]
    if prog.ndim != 2 or prog.shape[1] != 4 or not 0 < n <= MAX_INSNS:
        raise ValueError(f"a BPF program has 1 to {MAX_INSNS} instructions, got shape {prog.shape}")
    for pc, (code, jt, jf, k) in enumerate(prog.tolist()):
        where = f"BPF instruction {pc} (code {code:#06x})"
        if code not in VALID_CODES:
            raise ValueError(f"{where}: unknown opcode")
        if not 0 <= k <= _M32 or not 0 <= jt <= 255 or not 0 <= jf <= 255:
            raise ValueError(f"{where}: field out of range")
        cls = code & 0x07
        if cls in (ST, STX) or (cls in (LD, LDX) and code & 0xE0 == MEM):
            if k >= MEMWORDS:
                raise ValueError(f"{where}: scratch slot {k} (0-{MEMWORDS - 1})")
        elif cls == JMP:
            targets = [k] if code == JMP | JA else [jt, jf]
            if any(pc + 1 + t >= n for t in targets):
                raise ValueError(f"{where}: jumps past the end of the program")
        elif cls == ALU and code & 0x08 == SRC_K and code & 0xF0 in (DIV, MOD) and k == 0:
            raise ValueError(f"{where}: divides by the constant 0")
        elif cls == ALU and code & 0x08 == SRC_K and code & 0xF0 in (LSH, RSH) and k >= 32:
            raise ValueError(f"{where}: shifts by {k} (a 32-bit register; Linux refuses it too)")
    if prog[-1, 0] & 0x07 != RET:
        raise ValueError(f"BPF instruction {n - 1}: a program must end with a return")


@njit(cache=True, inline="always")
def _load(buf: Any, off: Any, buflen: Any, k: Any, size: int) -> Any:
    """``size`` big-endian bytes at ``k`` of the packet, or -1 when they were not captured."""
    if k < 0 or k > buflen or size > buflen - k:
        return np.int64(-1)
    v = np.int64(0)
    for i in range(size):
        v = (v << 8) | np.int64(buf[off + k + i])
    return v


@njit(cache=True)
def accepts(prog: Any, buf: Any, off: Any, buflen: Any, wirelen: Any, mem: Any) -> bool:
    """Run a validated program over the packet ``buf[off:off + buflen]`` (``wirelen`` bytes
    on the wire, as ``len`` sees it); whether it is kept (a non-zero return). ``mem`` is
    the scratch memory (:data:`MEMWORDS` int64), zeroed here: the caller allocates it
    once, not once per packet (an allocation costs more than a short program)."""
    a = np.int64(0)
    x = np.int64(0)
    mem[:] = 0
    pc = 0
    while True:
        code = prog[pc, 0]
        k = prog[pc, 3]
        cls = code & 0x07
        if cls == RET:
            kept: bool = (a if code & 0x18 == RVAL_A else k) != 0
            return kept
        if cls == LD or cls == LDX:
            mode = code & 0xE0
            if mode == IMM:
                v = k
            elif mode == LEN:
                v = wirelen & _M32
            elif mode == MEM:
                v = mem[k]
            elif mode == MSH:
                v = _load(buf, off, buflen, k, 1)
                if v < 0:
                    return False
                v = (v & 0xF) << 2
            else:
                size = 4 if code & 0x18 == W else (2 if code & 0x18 == H else 1)
                at = k if mode == ABS else k + x  # int64: no 32-bit wrap past the packet
                v = _load(buf, off, buflen, at, size)
                if v < 0:
                    return False
            if cls == LD:
                a = v
            else:
                x = v
        elif cls == ST:
            mem[k] = a
        elif cls == STX:
            mem[k] = x
        elif cls == ALU:
            op = code & 0xF0
            s = x if code & 0x08 == SRC_X else k
            if op == ADD:
                a = (a + s) & _M32
            elif op == SUB:
                a = (a - s) & _M32
            elif op == MUL:
                a = (a * s) & _M32
            elif op == DIV:
                if s == 0:
                    return False
                a = a // s
            elif op == MOD:
                if s == 0:
                    return False
                a = a % s
            elif op == OR:
                a = a | s
            elif op == AND:
                a = a & s
            elif op == XOR:
                a = a ^ s
            elif op == LSH:
                a = (a << s) & _M32 if s < 32 else np.int64(0)
            elif op == RSH:
                a = a >> s if s < 32 else np.int64(0)
            else:  # NEG
                a = (-a) & _M32
        elif cls == JMP:
            op = code & 0xF0
            if op == JA:
                pc += k
            else:
                s = x if code & 0x08 == SRC_X else k
                if op == JEQ:
                    hit = a == s
                elif op == JGT:
                    hit = a > s
                elif op == JGE:
                    hit = a >= s
                else:  # JSET
                    hit = (a & s) != 0
                pc += prog[pc, 1] if hit else prog[pc, 2]
        elif code & 0xF8 == TXA:
            a = x
        else:  # TAX
            x = a
        pc += 1


class _Program(ctypes.Structure):
    _fields_ = [("bf_len", ctypes.c_uint), ("bf_insns", ctypes.c_void_p)]


_LINKTYPE_TO_DLT = {101: 12}
"""File link types whose DLT_ value differs (LINKTYPE_RAW is DLT_RAW, 12 on Linux)."""
_SNAPLEN = 262144
_NETMASK_UNKNOWN = 0xFFFFFFFF


@functools.cache
def _libpcap() -> Any:
    """libpcap's compiler entry points through ctypes (no scapy: its import costs a second,
    and its binding takes link type 0, BSD loopback, for "none given")."""
    name = ctypes.util.find_library("pcap")
    if name is None:
        raise InputError("--bpf needs libpcap (e.g. apt install libpcap0.8); run without a filter")
    lib = ctypes.CDLL(name)
    lib.pcap_open_dead.argtypes = [ctypes.c_int, ctypes.c_int]
    lib.pcap_open_dead.restype = ctypes.c_void_p
    lib.pcap_compile.argtypes = [
        ctypes.c_void_p, ctypes.POINTER(_Program), ctypes.c_char_p, ctypes.c_int, ctypes.c_uint,
    ]  # fmt: skip
    lib.pcap_compile.restype = ctypes.c_int
    lib.pcap_geterr.argtypes = [ctypes.c_void_p]
    lib.pcap_geterr.restype = ctypes.c_char_p
    lib.pcap_freecode.argtypes = [ctypes.POINTER(_Program)]
    lib.pcap_close.argtypes = [ctypes.c_void_p]
    return lib


def compile_bpf(expression: str, linktype: int) -> bytes:
    """Compile a tcpdump-style filter with libpcap into classic BPF instructions (8 bytes
    each), for packets of ``linktype`` (a pcap LINKTYPE_ value).

    Raises:
        InputError: the filter does not compile (libpcap's message), or libpcap is missing.
    """
    lib = _libpcap()
    handle = lib.pcap_open_dead(_LINKTYPE_TO_DLT.get(linktype, linktype), _SNAPLEN)
    if not handle:
        raise InputError(f"--bpf {expression!r}: libpcap cannot open a handle for link type {linktype}")
    program = _Program()
    try:
        if lib.pcap_compile(handle, ctypes.byref(program), expression.encode(), 1, _NETMASK_UNKNOWN) != 0:
            why = (lib.pcap_geterr(handle) or b"does not compile").decode(errors="replace")
            raise InputError(f"--bpf {expression!r}: {why.strip()}")
        try:
            return ctypes.string_at(program.bf_insns, int(program.bf_len) * INSN_DTYPE.itemsize)
        finally:
            lib.pcap_freecode(ctypes.byref(program))
    finally:
        lib.pcap_close(handle)


def programs_by_linktype(expression: str, linktypes: Iterable[int]) -> tuple[I64, I64]:
    """The filter compiled for each of ``linktypes``, laid out for the walkers.

    Returns:
        ``(progs, prog_at)``: every program's instructions one after another, and per link
        type (the row index) the ``(start, length)`` of its program in ``progs``; length
        :data:`NO_PROGRAM` for link types the expression does not apply to, and for every
        link type not listed.

    Raises:
        InputError: the expression applies to none of ``linktypes`` (libpcap's message).
    """
    wanted = sorted(set(linktypes))
    prog_at = np.zeros((max(wanted, default=-1) + 1, 2), np.int64)
    prog_at[:, 1] = NO_PROGRAM
    parts: list[I64] = []
    first_error: InputError | None = None
    start = 0
    for linktype in wanted:
        try:
            prog = program_from_bytes(compile_bpf(expression, linktype))
        except InputError as exc:
            first_error = first_error or exc
            continue
        prog_at[linktype] = (start, prog.shape[0])
        parts.append(prog)
        start += prog.shape[0]
    if not parts:
        raise first_error or InputError(f"--bpf {expression!r}: no link type to compile it for")
    return np.concatenate(parts), prog_at


NO_FILTER: tuple[I64, I64] = (np.zeros((1, 4), np.int64), np.zeros((0, 2), np.int64))
"""``(progs, prog_at)`` of a reader without a filter: ``prog_at`` is empty, every packet is kept."""


@njit(cache=True, inline="always")
def applies(prog_at: Any, linktype: Any) -> bool:
    """Whether packets of ``linktype`` get a program (True) or are all left out (False) by
    a reader holding ``prog_at``; always True without a filter. The walkers' rule; the
    reader's report asks it too."""
    if prog_at.shape[0] == 0:
        return True
    has: bool = linktype < prog_at.shape[0] and prog_at[linktype, 1] > 0
    return has


@njit(cache=True, inline="always")
def keeps(
    progs: Any, prog_at: Any, linktype: Any, buf: Any, off: Any, buflen: Any, wirelen: Any, mem: Any
) -> bool:
    """Whether the filter of ``linktype`` (from :func:`programs_by_linktype`) keeps the packet."""
    if not applies(prog_at, linktype):
        return False
    if prog_at.shape[0] == 0:
        return True
    s = prog_at[linktype, 0]
    return accepts(progs[s : s + prog_at[linktype, 1]], buf, off, buflen, wirelen, mem)
