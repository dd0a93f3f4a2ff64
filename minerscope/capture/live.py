"""Live capture from a network interface, decoded by the same kernel as the capture reader.

Why a TPACKET_V3 ring and not scapy's sniffer: the kernel writes frames, with their
nanosecond timestamps, into blocks of a ring shared with us (``PACKET_RX_RING``), and
hands a block over when it is full or ``BLOCK_TIMEOUT_MS`` old. Python then touches a
*block*, not a packet: it copies the ready blocks into one buffer, gives them back, and
a numba walker decodes every frame into :data:`~minerscope.capture.packets.PACKET_DTYPE`
rows with the reader's own frame decoder. The flow assembler cannot tell a live batch
from a file batch, so live verdicts are the pipeline's verdicts.

Capture filters (``bpf``) are compiled by libpcap (through scapy, imported only when a
filter is given) and attached to the socket, so unwanted frames never leave the kernel.
On the loopback interface every packet is seen twice by a packet socket (on the way
out and on the way in); like libpcap, the outgoing copy is dropped.

``any`` captures on every interface at once, as with libpcap: a datagram packet socket
bound to no interface, whose frames start at the network header (interfaces with
different link layers, and tunnels with none, share one decoder: raw IP); the filter is
compiled for raw IP, which is what the kernel runs it on for such a socket. Loopback's
outgoing copies are dropped there too (by the frame's hardware type), the other
interfaces' outgoing packets kept: they are this machine's own traffic.

Opening a packet socket needs root or ``CAP_NET_RAW``; without it
:class:`~minerscope.errors.CapturePrivilegeError` says exactly that. Linux only.

A sensor elsewhere (the span port is rarely on the analyst's laptop) streams its capture
instead: ``ssh sensor tcpdump -U -w - | minerscope live -i -``, as Wireshark reads
``-i -``. :class:`PipeCapture` reads that stream (or a FIFO) with the file reader's
decoder as bytes arrive, behind the same interface; :func:`capture_source` picks one.
"""

from __future__ import annotations

import mmap
import os
import select
import socket
import struct
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

import numpy as np
import numpy.typing as npt
from numba import njit

from minerscope.capture.bpf import compile_bpf
from minerscope.capture.decode import LINKTYPE_ETHERNET, LINKTYPE_RAW, _decode_frame
from minerscope.capture.discover import STDIN, is_stream, require_piped_stdin
from minerscope.capture.packets import PACKET_DTYPE, PacketBatch, ReadReport
from minerscope.capture.pcap import CaptureReader
from minerscope.errors import CaptureError, CapturePrivilegeError, InputError

U8 = npt.NDArray[np.uint8]
I64 = npt.NDArray[np.int64]

BLOCK_BYTES = 1 << 20
"""Bytes per ring block (a block must hold the largest frame: 64 KiB on loopback with GSO)."""
BLOCKS = 32
"""Blocks in the ring: 32 MiB of kernel buffer between us and dropped packets."""
BLOCK_TIMEOUT_MS = 50
"""The kernel hands over a block this old even when it is not full (bounds verdict latency)."""
FRAME_BYTES = 2048
"""Nominal frame size the kernel checks the ring geometry against (V3 frames are variable)."""

# Linux constants (linux/if_packet.h, linux/if_ether.h, linux/if_arp.h).
_ETH_P_ALL = 0x0003
_SOL_PACKET = 263
_PACKET_ADD_MEMBERSHIP = 1
_PACKET_MR_PROMISC = 1
_PACKET_RX_RING = 5
_PACKET_STATISTICS = 6
_PACKET_VERSION = 10
_PACKET_IGNORE_OUTGOING = 23
_TPACKET_V3 = 2
_SO_ATTACH_FILTER = 26
_TP_STATUS_USER = 1
_PACKET_OUTGOING = 4

_ARPHRD_LINKTYPES = {
    1: LINKTYPE_ETHERNET,  # ARPHRD_ETHER
    772: LINKTYPE_ETHERNET,  # ARPHRD_LOOPBACK: Linux gives loopback frames a zeroed Ethernet header
    512: LINKTYPE_RAW,  # ARPHRD_PPP: frames start at the IP header
    776: LINKTYPE_RAW,  # ARPHRD_SIT
    65534: LINKTYPE_RAW,  # ARPHRD_NONE: tun devices, WireGuard
}
_ARPHRD_LOOPBACK = 772
ANY = "any"
"""The pseudo-interface that captures on every interface (libpcap's name for it)."""


def privilege_hint(interface: str) -> str:
    """One line saying what capturing on ``interface`` needs and how to grant it."""
    python = Path(sys.executable).resolve()
    return (
        f"capturing on {interface} needs root or the CAP_NET_RAW capability: run as root, or "
        f"grant it to this interpreter: sudo setcap cap_net_raw,cap_net_admin+eip {python}"
    )


def interface_linktype(interface: str) -> int:
    """The pcap link type of ``interface``'s frames (from its ARPHRD type in sysfs).

    Raises:
        CaptureError: no such interface, or a link type the decoder does not know.
    """
    if interface == ANY:
        return LINKTYPE_RAW  # a datagram socket: frames start at the network header
    if not interface or "/" in interface or interface in (".", ".."):
        raise CaptureError(f"{interface!r} is not an interface name")
    node = Path("/sys/class/net") / interface / "type"
    try:
        arphrd = int(node.read_text().strip())
    except (OSError, ValueError):
        raise CaptureError(f"no network interface named {interface!r}") from None
    linktype = _ARPHRD_LINKTYPES.get(arphrd)
    if linktype is None:
        raise CaptureError(f"interface {interface!r} has hardware type {arphrd}, which is not supported")
    return linktype


@njit(cache=True)
def _le32(buf: U8, p: int) -> Any:
    return (
        np.int64(buf[p])
        | (np.int64(buf[p + 1]) << 8)
        | (np.int64(buf[p + 2]) << 16)
        | (np.int64(buf[p + 3]) << 24)
    )


@njit(cache=True)
def _le16(buf: U8, p: int) -> Any:
    return np.int64(buf[p]) | (np.int64(buf[p + 1]) << 8)


@njit(cache=True)
def walk_blocks(buf: U8, starts: I64, linktype: int, skip_outgoing: bool, out: Any) -> Any:
    """Decode every frame of the TPACKET_V3 blocks at ``starts`` in ``buf`` into ``out``.

    ``buf`` holds copies of whole blocks (block descriptor included). Each frame header
    (``struct tpacket3_hdr``) gives the next frame's offset, the timestamp, captured and
    wire lengths, the link-layer offset and an out-of-band VLAN tag; the ``sockaddr_ll``
    after it says whether the frame was outgoing and on what kind of interface
    (``skip_outgoing``: drop loopback's outgoing copies). Returns the number of rows written.
    """
    n = 0
    cap_out = out.shape[0]
    end_buf = buf.shape[0]
    for b in range(starts.shape[0]):
        base = starts[b]
        num = _le32(buf, base + 12)
        p = base + _le32(buf, base + 16)
        for _ in range(num):
            if p + 60 > end_buf or n >= cap_out:
                break
            nxt = _le32(buf, p)
            snap = _le32(buf, p + 12)
            mac = _le16(buf, p + 24)
            hatype = _le16(buf, p + 56)  # sockaddr_ll.sll_hatype, after the 48-byte aligned header
            pkttype = buf[p + 58]  # sockaddr_ll.sll_pkttype
            looped = skip_outgoing and pkttype == 4 and hatype == 772  # ARPHRD_LOOPBACK, PACKET_OUTGOING
            if not looped and p + mac + snap <= end_buf:
                out[n].ts_ns = _le32(buf, p + 4) * np.int64(1_000_000_000) + _le32(buf, p + 8)
                out[n].cap_len = snap
                out[n].wire_len = _le32(buf, p + 16)
                out[n].linktype = linktype
                _decode_frame(out, n, buf, p + mac, snap, linktype)
                status = _le32(buf, p + 20)
                if (status & 0x10) != 0 and out[n].vlan == 0:  # TP_STATUS_VLAN_VALID: tag stripped by the NIC
                    out[n].vlan = _le32(buf, p + 32) & 0xFFF
                n += 1
            if nxt == 0:
                break
            p += nxt
    return n


def _bind_every_interface(sock: socket.socket) -> None:
    """Bind a packet socket to interface index 0 (every interface) for all protocols.

    Python's ``bind`` for ``AF_PACKET`` looks an interface name up and has no name for
    index 0, so ``sockaddr_ll`` goes to libc's ``bind`` directly.
    """
    import ctypes
    import ctypes.util

    libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
    # struct sockaddr_ll: family, protocol (network order), ifindex, hatype, pkttype, halen, addr[8]
    addr = struct.pack("=HHiHBB8s", socket.AF_PACKET, socket.htons(_ETH_P_ALL), 0, 0, 0, 0, b"")
    buf = ctypes.create_string_buffer(addr, len(addr))
    if libc.bind(sock.fileno(), buf, len(addr)) != 0:
        err = ctypes.get_errno()
        raise CaptureError(f"cannot capture on {ANY}: {os.strerror(err)}")


@dataclass(slots=True)
class CaptureStats:
    """Counters of one live capture (``dropped`` comes from the kernel: the ring overflowed)."""

    packets: int = 0
    blocks: int = 0
    kernel_received: int = 0
    dropped: int = 0


def capture_source(
    interface: str, *, bpf: str | None = None, promisc: bool = False
) -> LiveCapture | PipeCapture:
    """What ``live -i`` names: ``-`` (standard input) or a path is a stream piped in, any
    other name an interface (interface names hold no ``/``).

    Raises:
        InputError: ``promisc`` for a stream.
    """
    if interface == "-" or os.sep in interface:
        if promisc:
            raise InputError(f"{interface}: --promisc is for a network interface, not a stream")
        return PipeCapture(interface, bpf=bpf)
    return LiveCapture(interface, bpf=bpf, promisc=promisc)


class LiveCapture:
    """A packet socket with a TPACKET_V3 ring on one interface; :meth:`read` returns batches.

    Use as a context manager::

        with LiveCapture("eth0", bpf="tcp port 443") as cap:
            batch = cap.read(timeout_s=0.5)   # a PacketBatch, possibly empty

    Raises (on open):
        CapturePrivilegeError: no root / CAP_NET_RAW.
        CaptureError: no such interface, unsupported link type, not Linux.
        InputError: the filter does not compile.
    """

    def __init__(
        self,
        interface: str,
        *,
        bpf: str | None = None,
        promisc: bool = False,
        block_bytes: int = BLOCK_BYTES,
        blocks: int = BLOCKS,
    ) -> None:
        self.interface = interface
        self.bpf = bpf
        self.promisc = promisc
        self.block_bytes = block_bytes
        self.blocks = blocks
        self.linktype = LINKTYPE_ETHERNET
        self.stats = CaptureStats()
        self._sock: socket.socket | None = None
        self._mm: mmap.mmap | None = None
        self._ring: U8 | None = None
        self._status: npt.NDArray[np.uint32] | None = None
        self._next = 0
        self._poll: Any = None
        self._skip_outgoing = False

    @property
    def name(self) -> str:
        """What records and the case file call this capture."""
        return self.interface

    @property
    def ended(self) -> bool:
        """An interface never ends (a stop condition ends the capture)."""
        return False

    def now_ns(self) -> int:
        """The capture's clock: the kernel stamps packets with this machine's time."""
        return time.time_ns()

    def finish_report(self, report: ReadReport) -> None:
        """Say in ``report`` what was lost: packets the kernel dropped when the ring overflowed."""
        stats = self.kernel_stats()
        if stats.dropped:
            report.complete = False
            report.warning = (
                f"{self.interface}: the kernel dropped {stats.dropped:,} packets (the ring overflowed); "
                "flows around them are incomplete"
            )

    def __enter__(self) -> LiveCapture:
        self.open()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def check(self) -> None:
        """Everything :meth:`open` would refuse, without mapping a ring: platform,
        interface, filter, privilege. Lets a caller fail fast before slow set-up work
        that must happen before the ring starts filling."""
        self._prepare()[0].close()

    def _prepare(self) -> tuple[socket.socket, bytes | None]:
        if not hasattr(socket, "AF_PACKET"):
            raise CaptureError("live capture needs Linux packet sockets (AF_PACKET)")
        self.linktype = interface_linktype(self.interface)
        if self.interface == ANY and self.promisc:
            raise CaptureError("--promisc needs one interface; 'any' cannot be put in promiscuous mode")
        program = compile_bpf(self.bpf, self.linktype) if self.bpf else None
        kind = socket.SOCK_DGRAM if self.interface == ANY else socket.SOCK_RAW
        try:
            # protocol 0: no packet arrives before bind() chose the interface and the filter is on
            sock = socket.socket(socket.AF_PACKET, kind, 0)
        except PermissionError:
            raise CapturePrivilegeError(privilege_hint(self.interface)) from None
        return sock, program

    def open(self) -> None:
        """Create the socket, attach the filter, map the ring, bind to the interface."""
        sock, program = self._prepare()
        self._sock = sock
        try:
            self._setup(sock, program)
        except BaseException:
            self.close()
            raise

    def _setup(self, sock: socket.socket, program: bytes | None) -> None:
        import ctypes

        sock.setsockopt(_SOL_PACKET, _PACKET_VERSION, _TPACKET_V3)
        if program is not None:
            insns = ctypes.create_string_buffer(program, len(program))
            fprog = struct.pack("HL", len(program) // 8, ctypes.addressof(insns))
            sock.setsockopt(socket.SOL_SOCKET, _SO_ATTACH_FILTER, fprog)
        req = struct.pack(
            "7I",
            self.block_bytes,
            self.blocks,
            FRAME_BYTES,
            self.block_bytes * self.blocks // FRAME_BYTES,
            BLOCK_TIMEOUT_MS,
            0,
            0,
        )
        try:
            sock.setsockopt(_SOL_PACKET, _PACKET_RX_RING, req)
        except PermissionError:
            raise CapturePrivilegeError(privilege_hint(self.interface)) from None
        size = self.block_bytes * self.blocks
        self._mm = mmap.mmap(sock.fileno(), size, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE)
        self._ring = np.frombuffer(self._mm, dtype=np.uint8)
        self._status = np.frombuffer(self._mm, dtype=np.uint32)
        if self.interface == ANY:
            _bind_every_interface(sock)
            self._skip_outgoing = True  # loopback's copies only (every other outgoing packet stays)
            self._ready_to_poll(sock)
            return
        try:
            sock.bind((self.interface, _ETH_P_ALL))
        except OSError as exc:
            raise CaptureError(f"cannot capture on {self.interface}: {exc.strerror or exc}") from None
        ifindex = socket.if_nametoindex(self.interface)
        self._skip_outgoing = Path(f"/sys/class/net/{self.interface}/type").read_text().strip() == str(
            _ARPHRD_LOOPBACK
        )
        if self._skip_outgoing:
            try:  # Linux >= 4.20: the kernel keeps loopback's outgoing copies out of the ring
                sock.setsockopt(_SOL_PACKET, _PACKET_IGNORE_OUTGOING, 1)
            except OSError:
                pass  # older kernels: walk_blocks drops them
        if self.promisc:
            mreq = struct.pack("IHH8s", ifindex, _PACKET_MR_PROMISC, 0, b"")
            sock.setsockopt(_SOL_PACKET, _PACKET_ADD_MEMBERSHIP, mreq)
        self._ready_to_poll(sock)

    def _ready_to_poll(self, sock: socket.socket) -> None:
        self._poll = select.poll()
        self._poll.register(sock.fileno(), select.POLLIN | select.POLLERR)
        # compile (or load from cache) the walker now, not while the first packets wait
        walk_blocks(
            np.zeros(0, np.uint8), np.zeros(0, np.int64), self.linktype, False, np.zeros(0, PACKET_DTYPE)
        )

    def _ready(self) -> list[int]:
        """Indices of the blocks the kernel has handed over, in ring order."""
        assert self._status is not None
        ready: list[int] = []
        i = self._next
        step = self.block_bytes // 4
        for _ in range(self.blocks):
            if not int(self._status[i * step + 2]) & _TP_STATUS_USER:  # tpacket_hdr_v1.block_status
                break
            ready.append(i)
            i = (i + 1) % self.blocks
        return ready

    def read(self, timeout_s: float = 0.25) -> PacketBatch:
        """Wait up to ``timeout_s`` for packets; return every packet the kernel has handed over."""
        if self._ring is None or self._status is None:
            raise CaptureError("live capture is not open")
        ready = self._ready()
        if not ready:
            self._poll.poll(max(0, int(timeout_s * 1000)))
            ready = self._ready()
        if not ready:
            return PacketBatch(np.zeros(0, PACKET_DTYPE), np.zeros(0, np.uint8), self.interface)
        ring, status = self._ring, self._status
        lengths: list[int] = []
        total_pkts = 0
        for i in ready:
            base = i * self.block_bytes
            word = base // 4
            total_pkts += int(status[word + 3])
            lengths.append(min(int(status[word + 5]), self.block_bytes))  # blk_len: header + frames
        buf = np.empty(sum(lengths), np.uint8)
        starts = np.zeros(len(ready), np.int64)
        pos = 0
        for j, (i, length) in enumerate(zip(ready, lengths, strict=True)):
            base = i * self.block_bytes
            buf[pos : pos + length] = ring[base : base + length]
            starts[j] = pos
            pos += length
            status[base // 4 + 2] = 0  # TP_STATUS_KERNEL: the block goes back to the kernel
        self._next = (ready[-1] + 1) % self.blocks
        out = np.zeros(total_pkts, PACKET_DTYPE)
        n = int(walk_blocks(buf, starts, self.linktype, self._skip_outgoing, out))
        self.stats.blocks += len(ready)
        self.stats.packets += n
        return PacketBatch(out[:n], buf, self.interface)

    def kernel_stats(self) -> CaptureStats:
        """Add the kernel's received/dropped counters (they reset on every read) to :attr:`stats`."""
        if self._sock is not None:
            try:
                raw = self._sock.getsockopt(_SOL_PACKET, _PACKET_STATISTICS, 12)
            except OSError:
                return self.stats
            received, dropped, _freeze = struct.unpack("3I", raw)
            self.stats.kernel_received += received
            self.stats.dropped += dropped
        return self.stats

    def close(self) -> None:
        """Unmap the ring and close the socket (idempotent)."""
        self._poll = None
        self._ring = None
        self._status = None
        if self._mm is not None:
            try:
                self._mm.close()
            except BufferError:  # a numpy view still exists somewhere: the GC closes it later
                pass
            self._mm = None
        if self._sock is not None:
            self._sock.close()
            self._sock = None


class PipeCapture:
    """A pcap or pcapng stream piped in (``-``: standard input) or written to a FIFO, read
    as its bytes arrive; the interface of :class:`LiveCapture`.

    No privilege is needed here: the sensor that captures holds it. The stream must be
    uncompressed and packet-buffered (``tcpdump -U``; without ``-U`` tcpdump holds packets
    back until its buffer fills, and verdicts come late).

    Its clock is the capture's: the newest packet's timestamp plus the time since it
    arrived. A sensor whose clock differs from this machine's, or a capture replayed
    through the pipe, still has its idle flows and closed windows end on time.
    """

    def __init__(self, source: str, *, bpf: str | None = None) -> None:
        self.source = source
        self.bpf = bpf
        self.path = STDIN if source == "-" else Path(source)
        self.stats = CaptureStats()
        self._reader: CaptureReader | None = None
        self._newest_ns: int | None = None
        self._arrived_ns = 0

    @property
    def name(self) -> str:
        """``stdin`` for ``-``, else the path given."""
        return "stdin" if self.source == "-" else self.source

    def check(self) -> None:
        """Refuse what cannot be a stream piped in, before the model loads."""
        if self.source == "-":
            require_piped_stdin("live -i -")
        elif not self.path.exists():
            raise CaptureError("no such interface, file or FIFO", path=self.source)
        elif not is_stream(self.path):
            raise CaptureError("a file, not a stream: read it with minerscope scan", path=self.source)

    def open(self) -> None:
        """Read the stream's header (this waits for the sensor's first bytes)."""
        reader = CaptureReader(self.path, bpf=self.bpf)
        _, plus, codec = reader.report.file_format.partition("+")
        if plus:
            reader.close()
            raise CaptureError(
                f"a stream compressed with {codec}: decompress it on the way in (| {codec} -dc |)",
                path=self.source,
            )
        self._reader = reader

    def read(self, timeout_s: float = 0.25) -> PacketBatch:
        """Wait up to ``timeout_s``; return the complete records that arrived."""
        if self._reader is None:
            raise CaptureError("the stream is not open", path=self.source)
        batch = self._reader.read_available(timeout_s)
        if len(batch.packets):
            self._newest_ns = max(int(batch.packets["ts_ns"].max()), self._newest_ns or 0)
            self._arrived_ns = time.monotonic_ns()
            self.stats.packets += len(batch.packets)
        return batch

    @property
    def ended(self) -> bool:
        """The writer closed the stream (or it was damaged): nothing more will come."""
        return self._reader is not None and self._reader.ended

    def now_ns(self) -> int:
        """Capture time now: the newest packet's, moved on by the time since it arrived."""
        if self._newest_ns is None:
            return time.time_ns()
        return self._newest_ns + time.monotonic_ns() - self._arrived_ns

    def kernel_stats(self) -> CaptureStats:
        """Counters (nothing is dropped here: a full pipe makes the writer wait)."""
        return self.stats

    def finish_report(self, report: ReadReport) -> None:
        """Carry into ``report`` what the stream's reader found: where it was damaged or
        cut, what it left out, what the sensor says it dropped (pcapng statistics)."""
        if self._reader is None:
            return
        found = self._reader.report
        if found.warning:
            report.warning = f"{report.warning}; {found.warning}" if report.warning else found.warning
        report.capture_dropped, report.capture_received = found.capture_dropped, found.capture_received
        if not found.complete:
            report.complete = False
            report.damage_offset = found.damage_offset
            report.damage = found.damage  # ("damaged at byte N: why", as scan records it)

    def close(self) -> None:
        """Close the stream (idempotent)."""
        if self._reader is not None:
            self._reader.close()
