"""The fuzz targets: bytes in, parser driven, invariants checked.

Each target is a function ``(data: bytes) -> None``. It returns normally when the parser
either produced a valid result or refused the input with one of its *documented* error
types, and raises :class:`PropertyFailure` when an invariant broke. Any other exception
escaping a target is a crash: an ``IndexError``, ``struct.error``, ``KeyError`` or numpy
error from deep inside a parser is exactly what these targets exist to find.

What "correct" means, per target:

``pcap``      :class:`~minerscope.capture.pcap.CaptureReader` on a file. Only
              ``NotACaptureError``/``UnsupportedLinkTypeError`` at open, only
              ``UnsupportedLinkTypeError`` (all packets undecodable) at the end; their
              message is one line naming the file. Every row's payload lies inside the
              batch's bytes; the report's counts match the rows; damage is reported with a
              one-line warning naming the file and byte offset. The result does not depend
              on the window/batch sizes, nor on compression (gzip, xz, bzip2 or zstd, by
              the cut selector's low bits). **Truncation**: a capture read
              complete, cut at any byte, yields exactly the packets whose records end at or
              before the cut, and is complete only when the cut falls on a boundary.
``flows``     the same file through :func:`~minerscope.flows.assemble.assemble_capture`:
              reader errors only; offsets consistent; at most one flow per packet;
              durations >= 0; prefixes within ``DEFAULT_PREFIX_BYTES``; TLS record
              messages within ``TLS_MAX_RECORD``.
``tls``       ClientHello/ServerHello/HTTP-head parsers raise only
              ``HandshakeParseError``; lists within ``MAX_TLS_LIST_ITEMS``; JA3/JA4 well
              formed; :func:`~minerscope.flows.assemble.handshake_metadata` never raises
              (a proxy's target: a host and a port 1-65535, or neither).
``dns``       ``parse_dns`` raises only ``HandshakeParseError``; records within
              ``MAX_DNS_RECORDS``, names within ``MAX_DNS_NAME_CHARS`` (as escaped text);
              ``ip_names`` never raises.
``framing``   ``LineBuffer`` splits exactly like ``bytes.split`` whatever the chunking,
              never returns a line over ``max_line_bytes`` and fails only with
              ``LimitExceededError`` (sticky); ``decode_json`` raises only
              ``LimitExceededError``/``RemoteProtocolError`` and returns strict JSON;
              ``decode_ws_frames`` raises only those, respects ``max_frames`` and
              ``max_payload_bytes``, and its frames survive an encode/decode round trip.
``stratum``   :func:`~minerscope.prefilter.stratum.detect_stratum` never raises; a match
              has a known framing, confidence in [0, 1] and string evidence.
``dialects``  every dialect's ``classify`` (with and without control replies) and
              ``passive_match`` never raise and give a result for themselves with
              confidence in [0, 1]; the reply parsers raise only ``RemoteProtocolError``;
              the resulting :class:`~minerscope.probe.verdict.Verdict` exports to strict
              JSON with every peer string inert (no control characters).
"""

from __future__ import annotations

import bz2
import ctypes.util
import gzip
import json
import lzma
import os
import re
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from fuzz import refwalk


class PropertyFailure(AssertionError):
    """An invariant of a target does not hold for this input."""


def check(condition: object, message: str) -> None:
    """Raise :class:`PropertyFailure` with ``message`` unless ``condition`` holds."""
    if not condition:
        raise PropertyFailure(message)


def split2(data: bytes) -> tuple[bytes, bytes]:
    """Two byte strings from one input: a 2-byte big-endian length, the first, the rest."""
    if len(data) < 2:
        return data, b""
    n = int.from_bytes(data[:2], "big")
    return data[2 : 2 + n], data[2 + n :]


def join2(a: bytes, b: bytes) -> bytes:
    """Inverse of :func:`split2` (for building seeds)."""
    return len(a).to_bytes(2, "big") + a + b


_CONTROL_RE = re.compile("[\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def _inert(text: str, what: str) -> None:
    check(not _CONTROL_RE.search(text), f"{what}: control/bidi character survived clean(): {text[:80]!r}")


KERNEL_MODULES = ("minerscope.capture.decode", "minerscope.flows._kernels")


def python_kernels() -> None:
    """Let the numba kernels run as plain Python (``NUMBA_DISABLE_JIT=1``, set by the campaign).

    Compiled, ``rows[i].field`` is a record access; in Python a structured array's element
    has no attributes, but a :class:`numpy.recarray` view's does, and writes through. So
    every kernel function gets its structured-array arguments as recarray views. Without
    JIT the kernels can be instrumented and measured, and an index past the end of a
    buffer raises ``IndexError`` where compiled code would read out of bounds silently.
    """
    import functools
    import importlib
    import inspect

    def as_records(value: object) -> object:
        if (
            isinstance(value, np.ndarray)
            and value.dtype.names is not None
            and not isinstance(value, np.recarray)
        ):
            return value.view(np.recarray)
        return value

    for name in KERNEL_MODULES:
        module = importlib.import_module(name)
        for attr, fn in list(vars(module).items()):
            if not inspect.isfunction(fn) or fn.__module__ != name or getattr(fn, "_records", False):
                continue

            def wrapper(*args: Any, __fn: Callable[..., Any] = fn) -> Any:
                return __fn(*(as_records(a) for a in args))

            wrapped = functools.wraps(fn)(wrapper)
            wrapped._records = True  # type: ignore[attr-defined]
            setattr(module, attr, wrapped)


# ---------------------------------------------------------------------------------------
# pcap / pcapng reader

_BATCH_BYTES = (None, 256, 1000, 4099)
_BATCH_ROWS = (None, 1, 3, 64)
PCAP_CONFIG_BYTES = 3
"""A pcap input is: flags byte, 2-byte cut selector, then the capture file's bytes."""


def pcap_input(file_bytes: bytes, *, flags: int = 0, cut: int = 0) -> bytes:
    """Build a ``pcap`` target input (flags: bits 0-1 batch bytes, 2-3 batch rows, 4 compressed
    (the format by the cut's low two bits), 5 cut, 6 gzip cut, 7 capture filters)."""
    return bytes([flags & 0xFF]) + (cut & 0xFFFF).to_bytes(2, "big") + file_bytes


class _Scratch:
    """One temporary file per process on a RAM disk when there is one (the reader needs a path)."""

    def __init__(self) -> None:
        base = "/dev/shm" if os.path.isdir("/dev/shm") and os.access("/dev/shm", os.W_OK) else None
        fd, name = tempfile.mkstemp(prefix="minerscope-fuzz-", suffix=".cap", dir=base)
        os.close(fd)
        self.path = Path(name)

    def write(self, data: bytes) -> Path:
        self.path.write_bytes(data)
        return self.path


_scratch: _Scratch | None = None


def scratch_path(data: bytes) -> Path:
    """Write ``data`` to this process's scratch file and return its path."""
    global _scratch
    if _scratch is None:
        _scratch = _Scratch()
    return _scratch.write(data)


def cleanup() -> None:
    """Remove the scratch file (drivers call this at exit)."""
    if _scratch is not None:
        _scratch.path.unlink(missing_ok=True)


@dataclass(slots=True)
class ReadResult:
    """What one read of a capture gave: the error (if any), packet keys, report fields."""

    error: str | None = None  # class name of the documented error raised
    at_open: bool = False
    packets: list[tuple[Any, ...]] = field(default_factory=list)
    linktypes: list[int] = field(default_factory=list)
    complete: bool = True
    damage_offset: int | None = None
    packet_offsets: list[tuple[int, int]] = field(default_factory=list)  # per batch data, (off, cap)
    filtered: int = 0  # packets the capture filter left out


_KEY_FIELDS = (
    "ts_ns", "wire_len", "cap_len", "iface", "linktype", "ip_version", "proto", "frag", "tcp_flags",
    "vlan", "src_hi", "src_lo", "dst_hi", "dst_lo", "sport", "dport", "seq", "ack", "payload_len",
)  # fmt: skip


def _one_line_naming(exc: BaseException, path: Path) -> None:
    text = str(exc)
    check("\n" not in text, f"{type(exc).__name__} message is not one line: {text!r}")
    check(str(path) in text, f"{type(exc).__name__} message does not name the file: {text!r}")


def read_capture_bytes(
    data: bytes, batch_bytes: int | None = None, batch_rows: int | None = None, bpf: str | None = None
) -> ReadResult:
    """Read ``data`` as a capture file (through the capture filter ``bpf``, if given) and
    check the per-read invariants."""
    from minerscope.capture import decode
    from minerscope.capture.pcap import CaptureReader
    from minerscope.errors import NotACaptureError, UnsupportedLinkTypeError

    path = scratch_path(data)
    kwargs: dict[str, int] = {}
    if batch_bytes is not None:
        kwargs["batch_bytes"] = batch_bytes
    if batch_rows is not None:
        kwargs["batch_rows"] = batch_rows
    out = ReadResult()
    try:
        reader = CaptureReader(path, bpf=bpf, **kwargs)
    except (NotACaptureError, UnsupportedLinkTypeError) as exc:
        _one_line_naming(exc, path)
        out.error, out.at_open = type(exc).__name__, True
        return out
    try:
        for batch in reader.batches():
            rows, buf = batch.packets, batch.data
            off = rows["payload_off"].astype(np.int64)
            cap = rows["payload_cap"].astype(np.int64)
            check(bool((off >= 0).all()), "payload_off < 0")
            check(bool((off + cap <= buf.shape[0]).all()), "payload runs past the batch's bytes")
            check(bool((cap <= rows["payload_len"]).all()), "payload_cap > payload_len")
            check(bool(np.isin(rows["ip_version"], (0, 4, 6)).all()), "ip_version not in {0, 4, 6}")
            check(bool((rows["cap_len"] <= decode.MAX_RECORD_BYTES).all()), "cap_len over MAX_RECORD_BYTES")
            for i in range(rows.shape[0]):
                row = rows[i]
                o, c = int(off[i]), int(cap[i])
                out.packets.append(tuple(row[f].item() for f in _KEY_FIELDS) + (buf[o : o + c].tobytes(),))
                out.linktypes.append(int(row["linktype"]))
    except UnsupportedLinkTypeError as exc:
        _one_line_naming(exc, path)
        out.error = type(exc).__name__
        check(
            out.packets and all(t not in decode.SUPPORTED_LINKTYPES for t in out.linktypes),
            "UnsupportedLinkTypeError although some packets were decodable",
        )
    report = reader.report
    out.filtered = report.filtered
    check(report.packets == len(out.packets), f"report.packets {report.packets} != rows {len(out.packets)}")
    check(report.ip_packets + report.non_ip_packets == report.packets, "ip + non-ip != packets")
    ip_rows = sum(1 for p in out.packets if p[5] != 0)
    check(report.ip_packets == ip_rows, f"report.ip_packets {report.ip_packets} != IP rows {ip_rows}")
    out.complete, out.damage_offset = report.complete, report.damage_offset
    if report.complete:
        check(report.damage_offset is None, "complete but damage_offset set")
    else:
        check(report.damage_offset is not None and report.damage_offset >= 0, "damage without an offset")
        assert report.damage_offset is not None
        warning = report.warning or ""
        check("\n" not in warning, f"warning is not one line: {warning!r}")
        check(
            str(path) in warning and f"byte {report.damage_offset}" in warning,
            f"warning does not name file and offset: {warning!r}",
        )
        if "+" not in report.file_format:  # an offset in decompressed bytes may lie beyond
            check(report.damage_offset <= len(data), "damage_offset beyond the end of the file")
    return out


def _same(a: ReadResult, b: ReadResult, what: str) -> None:
    check(a.error == b.error, f"{what}: error {a.error} != {b.error}")
    check(a.complete == b.complete, f"{what}: complete {a.complete} != {b.complete}")
    check(a.damage_offset == b.damage_offset, f"{what}: damage at {a.damage_offset} != {b.damage_offset}")
    check(len(a.packets) == len(b.packets), f"{what}: {len(a.packets)} packets != {len(b.packets)}")
    for i, (x, y) in enumerate(zip(a.packets, b.packets, strict=True)):
        check(x == y, f"{what}: packet {i} differs: {x} != {y}")


def _compress(body: bytes, selector: int) -> tuple[str, bytes]:
    """``body`` compressed in the format the selector's low two bits pick."""
    from minerscope.capture.compressed import zstd

    packers: tuple[tuple[str, Callable[[bytes], bytes]], ...] = (
        ("gzip", lambda b: gzip.compress(b, compresslevel=1, mtime=0)),
        ("xz", lambda b: lzma.compress(b, preset=0)),
        ("bzip2", lambda b: bz2.compress(b, 1)),
        ("zstd", zstd.compress),
    )
    name, pack = packers[selector & 3]
    return name, pack(body)


def target_pcap(data: bytes) -> None:
    """The reader: per-read invariants, batch-size/gzip invariance, truncation property."""
    if len(data) < PCAP_CONFIG_BYTES:
        return
    flags = data[0]
    selector = int.from_bytes(data[1:3], "big")
    body = data[PCAP_CONFIG_BYTES:]
    bb, br = _BATCH_BYTES[flags & 3], _BATCH_ROWS[(flags >> 2) & 3]
    result = read_capture_bytes(body, bb, br)
    if bb is not None or br is not None:
        _same(read_capture_bytes(body, None, None), result, f"batch_bytes={bb} batch_rows={br} vs default")
    from minerscope.capture.compressed import codec_for

    plain = codec_for(body[:4]) is None
    if flags & 0x10 and plain:
        name, packed = _compress(body, selector)
        _same(read_capture_bytes(packed, bb, br), result, f"{name} vs plain")
    if flags & 0x80 and result.error is None and _LIBPCAP:
        check_filtered(body, result)
    if result.error is None and result.complete and plain:
        if flags & 0x20:
            check_truncation(body, result, selector % (len(body) + 1))
        if flags & 0x40:
            check_gzip_truncation(body, result, selector)


_LIBPCAP = ctypes.util.find_library("pcap") is not None
KEEP_ALL = "len >= 0"
"""A capture filter that keeps every packet (its program still runs on each one)."""
SOME = "udp or ip6 or (tcp[tcpflags] & tcp-syn != 0) or len < 80"
"""A filter with absolute, indexed and length loads: it keeps some packets of most inputs."""


def check_filtered(body: bytes, full: ReadResult) -> None:
    """The capture filter on hostile bytes: a filter that keeps everything keeps every packet
    the reader can decode (a link type it cannot is left out: the filter cannot apply to
    it); another keeps an ordered subset, with the same damage, and counts what it left out."""
    from minerscope.capture.decode import SUPPORTED_LINKTYPES

    decodable = ReadResult(
        packets=[p for p, lt in zip(full.packets, full.linktypes, strict=True) if lt in SUPPORTED_LINKTYPES],
        complete=full.complete,
        damage_offset=full.damage_offset,
    )
    _same(read_capture_bytes(body, bpf=KEEP_ALL), decodable, f"--bpf {KEEP_ALL!r} vs no filter")
    some = read_capture_bytes(body, bpf=SOME)
    check(some.error is None, f"--bpf {SOME!r}: {some.error}")
    check(
        (some.complete, some.damage_offset) == (full.complete, full.damage_offset), "filter moved the damage"
    )
    check(len(some.packets) + some.filtered == len(full.packets), "kept + left out != packets read")
    rest = iter(full.packets)
    check(all(any(p == q for q in rest) for p in some.packets), "a kept packet is not one read unfiltered")


def check_truncation(body: bytes, full: ReadResult, cut: int) -> None:
    """A complete capture cut at ``cut`` keeps exactly the packets that end by ``cut``."""
    ends, bounds = refwalk.packet_ends(body)
    check(
        len(ends) == len(full.packets),
        f"reference walk found {len(ends)} packets, reader {len(full.packets)}",
    )
    part = read_capture_bytes(body[:cut])
    is_pcapng = body[:4] == b"\x0a\x0d\x0d\x0a"
    if part.at_open:
        check(
            cut < (4 if is_pcapng else refwalk.PCAP_HEADER), f"cut at {cut}: refused at open ({part.error})"
        )
        return
    keep = sum(1 for e in ends if e <= cut)
    check(len(part.packets) == keep, f"cut at {cut}: {len(part.packets)} packets, expected {keep}")
    for i in range(keep):
        check(part.packets[i] == full.packets[i], f"cut at {cut}: packet {i} differs from the full read")
    on_boundary = cut in bounds or cut == len(body)
    check(
        part.complete == on_boundary, f"cut at {cut}: complete={part.complete}, on a boundary: {on_boundary}"
    )
    if not on_boundary:
        last = max([0, *(b for b in bounds if b <= cut)])
        check(part.damage_offset == last, f"cut at {cut}: damage at {part.damage_offset}, expected {last}")


def check_gzip_truncation(body: bytes, full: ReadResult, selector: int) -> None:
    """A gzip-compressed capture cut anywhere keeps every packet zlib can still decompress."""
    import zlib

    packed = gzip.compress(body, compresslevel=1, mtime=0)
    cut = selector % (len(packed) + 1)
    try:
        readable = zlib.decompressobj(31).decompress(packed[:cut])
    except zlib.error:  # only possible inside the gzip header: nothing is readable
        readable = b""
    part = read_capture_bytes(packed[:cut])
    is_pcapng = body[:4] == b"\x0a\x0d\x0d\x0a"
    if part.at_open:
        check(
            cut < 2 or len(readable) < (4 if is_pcapng else refwalk.PCAP_HEADER),
            f"gzip cut at {cut}: refused at open ({part.error}) with {len(readable)} bytes readable",
        )
        return
    ends, _ = refwalk.packet_ends(body)
    keep = sum(1 for e in ends if e <= len(readable))
    check(len(part.packets) == keep, f"gzip cut at {cut}: {len(part.packets)} packets, expected {keep}")
    check(part.packets == full.packets[:keep], f"gzip cut at {cut}: packets differ from the full read")
    check(
        part.complete == (cut == len(packed)), f"gzip cut at {cut} of {len(packed)}: complete={part.complete}"
    )


# ---------------------------------------------------------------------------------------
# flows


def target_flows(data: bytes) -> None:
    """A capture through the flow assembler (TLS record cutting, handshake metadata)."""
    from minerscope.errors import NotACaptureError, UnsupportedLinkTypeError
    from minerscope.flows import _kernels
    from minerscope.flows.assemble import DEFAULT_PREFIX_BYTES, assemble_capture

    path = scratch_path(data)
    try:
        table, report = assemble_capture(path)
    except (NotACaptureError, UnsupportedLinkTypeError) as exc:
        _one_line_naming(exc, path)
        return
    n = len(table)
    check(n <= report.packets, f"{n} flows from {report.packets} packets")
    for name, offs, size in (
        ("pkt", table.pkt_offsets, table.pkt_ts.shape[0]),
        ("msg", table.msg_offsets, table.msg_len.shape[0]),
    ):
        check(offs.shape[0] == n + 1 and offs[0] == 0 and offs[-1] == size, f"{name}_offsets do not span")
        check(bool((np.diff(offs) >= 0).all()), f"{name}_offsets decrease")
    s = table.summary
    if n:
        check(bool((s["duration"] >= 0).all()), "negative flow duration")
        check(
            np.array_equal(s["packets"].to_numpy(), np.diff(table.pkt_offsets)),
            "summary packets != pkt offsets",
        )
        check(int(s["packets"].sum()) <= report.packets, "more flow packets than packets read")
        tls = table.msg_type != 0
        check(bool((table.msg_len[tls] <= _kernels.TLS_MAX_RECORD).all()), "TLS message over TLS_MAX_RECORD")
        check(bool(np.isin(table.msg_type, (0, 20, 21, 22, 23, 24)).all()), "unknown TLS message type")
        check(bool(np.isin(table.pkt_dir, (0, 1)).all()), "packet direction not 0/1")
    for c2s, s2c in table.payload_prefixes or []:
        check(len(c2s) <= DEFAULT_PREFIX_BYTES and len(s2c) <= DEFAULT_PREFIX_BYTES, "prefix over its limit")


# ---------------------------------------------------------------------------------------
# TLS ClientHello / ServerHello / HTTP head

_JA4_RE = re.compile(r"[tqd][0-9a-z]{2}[di]\d{2}\d{2}[0-9A-Za-z]{2}_[0-9a-f]{12}_[0-9a-f]{12}")


def target_tls(data: bytes) -> None:
    """Handshake parsers on a (client bytes, server bytes) pair."""
    from minerscope.capture import handshake as hs
    from minerscope.flows.assemble import handshake_metadata

    c2s, s2c = split2(data)
    try:
        hello = hs.parse_client_hello(c2s)
    except hs.HandshakeParseError:
        hello = None
    if hello is not None:
        limit = hs.MAX_TLS_LIST_ITEMS
        for name in (
            "cipher_suites",
            "extensions",
            "alpn",
            "supported_versions",
            "signature_algorithms",
            "groups",
        ):
            check(len(getattr(hello, name)) <= limit, f"ClientHello.{name} over MAX_TLS_LIST_ITEMS")
        check(hello.sni is None or len(hello.sni) <= 4 * 0xFFFF, "SNI longer than its 16-bit length allows")
        check(re.fullmatch(r"[0-9a-f]{32}", hs.ja3(hello)) is not None, "JA3 is not 32 hex digits")
        ja4 = hs.ja4(hello)
        check(_JA4_RE.fullmatch(ja4) is not None, f"malformed JA4 {ja4!r}")
        check(isinstance(hello.version_name, str), "version_name")
    try:
        version = hs.parse_server_hello_version(s2c)
        check(0 <= version <= 0xFFFF, "ServerHello version out of 16 bits")
    except hs.HandshakeParseError:
        pass
    if hs.looks_like_http_request(c2s):
        try:
            head = hs.parse_http_request(c2s)
            check(len(head.headers) <= hs.MAX_HTTP_HEADERS, "HTTP headers over MAX_HTTP_HEADERS")
        except hs.HandshakeParseError:
            pass
    for proto in (6, 17):
        meta = handshake_metadata(c2s, s2c, proto)
        for key, value in meta.items():
            if key == "proxy_port":
                check(isinstance(value, int) and 0 <= value < 65536, f"handshake_metadata[{key}] = {value!r}")
                check((value == 0) == (meta["proxy_host"] == ""), "a proxy port without a host or back")
            else:
                check(isinstance(value, str | bool), f"handshake_metadata[{key}] is {type(value).__name__}")


# ---------------------------------------------------------------------------------------
# DNS


def target_dns(data: bytes) -> None:
    """The DNS message parser and the address -> names map built from it."""
    from minerscope.capture import handshake as hs

    try:
        msg = hs.parse_dns(data)
    except hs.HandshakeParseError:
        return
    check(len(msg.questions) + len(msg.answers) <= hs.MAX_DNS_RECORDS, "DNS records over MAX_DNS_RECORDS")
    names = list(msg.questions) + [a.name for a in msg.answers]
    names += [a.value for a in msg.answers if a.rtype == hs.DNS_CNAME]
    for name in names:
        check(len(name) <= 4 * hs.MAX_DNS_NAME_CHARS, f"DNS name of {len(name)} characters")
    for address, owners in msg.ip_names().items():
        check(isinstance(address, str) and len(owners) <= hs.MAX_DNS_RECORDS + 1, "ip_names out of bounds")


# ---------------------------------------------------------------------------------------
# framing: lines, JSON, WebSocket frames

_MAX_LINE = (16, 64, 256, 65536)
_MAX_TOTAL = (64, 512, 4096, 1 << 20)


def _reference_lines(stream: bytes) -> tuple[list[bytes], bytes]:
    parts = stream.split(b"\n")
    lines = []
    for line in parts[:-1]:
        if line.endswith(b"\r"):
            line = line[:-1]
        if line.strip():
            lines.append(line)
    return lines, parts[-1].rstrip(b"\r")


def _is_strict_json(value: object) -> bool:
    try:
        json.dumps(value, allow_nan=False)
    except ValueError:
        return False
    return True


def target_framing(data: bytes) -> None:
    """LineBuffer, decode_json and decode_ws_frames under small named limits."""
    from minerscope.errors import LimitExceededError, RemoteProtocolError
    from minerscope.probe import framing as fr

    if len(data) < 2:
        return
    cfg, chunk_seed, stream = data[0], data[1], data[2:]
    max_line, max_total = _MAX_LINE[cfg & 3], _MAX_TOTAL[(cfg >> 2) & 3]
    chunk = 1 + chunk_seed % 97
    buf = fr.LineBuffer(max_line, max_total)
    got: list[bytes] = []
    failed: LimitExceededError | None = None
    for i in range(0, max(len(stream), 1), chunk):
        try:
            got += buf.feed(stream[i : i + chunk])
        except LimitExceededError as exc:
            failed = exc
            break
    ref_lines, ref_tail = _reference_lines(stream)
    check(all(len(line) <= max_line for line in got), "LineBuffer returned a line over max_line_bytes")
    check(got == ref_lines[: len(got)], "LineBuffer lines differ from bytes.split")
    if failed is None:
        try:
            tail = buf.flush()
            check(len(stream) <= max_total, "max_total_bytes exceeded without an error")
            check(got == ref_lines and tail == ref_tail, "LineBuffer lost or changed bytes")
        except LimitExceededError:
            failed = LimitExceededError("sticky", 0)
    else:
        check(failed.limit in ("max_line_bytes", "max_total_bytes"), f"unknown limit {failed.limit}")
        try:
            buf.feed(b"x\n")
        except LimitExceededError:
            pass
        else:
            raise PropertyFailure("LineBuffer accepted bytes after a limit error")
    depth = 1 + (cfg >> 4)
    for line in [*got, stream[:4096]]:
        try:
            value = fr.decode_json(line, max_bytes=2048, max_depth=depth)
        except (LimitExceededError, RemoteProtocolError):
            continue
        check(_is_strict_json(value), f"decode_json returned non-strict JSON from {line[:60]!r}")
    max_frames = 1 + chunk_seed % 8
    max_payload = _MAX_TOTAL[cfg >> 6]
    try:
        frames, used = fr.decode_ws_frames(stream, max_frames=max_frames, max_payload_bytes=max_payload)
    except (LimitExceededError, RemoteProtocolError):
        return
    check(0 <= used <= len(stream), "decode_ws_frames consumed more than it was given")
    check(len(frames) <= max_frames, "more frames than max_frames")
    for i, frame in enumerate(frames):
        check(len(frame.payload) <= max_payload, "frame payload over max_payload_bytes")
        check(frame.complete or i == len(frames) - 1, "an incomplete frame is not the last")
        if frame.complete:
            wire = fr.encode_ws_frame(
                frame.payload, opcode=frame.opcode, mask=b"\x01\x02\x03\x04", fin=frame.fin
            )
            again, n = fr.decode_ws_frames(wire, max_frames=1, max_payload_bytes=len(wire))
            check(n == len(wire) and again == [frame], "WebSocket frame does not survive encode/decode")


# ---------------------------------------------------------------------------------------
# stratum (stage 0) and the dialects


def target_stratum(data: bytes) -> None:
    """Stage-0 plaintext mining recognition on a (client bytes, server bytes) pair."""
    from minerscope.prefilter.stratum import detect_stratum
    from minerscope.untrusted import clean

    c2s, s2c = split2(data)
    for max_bytes in (4096, 256):
        found = detect_stratum(c2s, s2c, max_bytes=max_bytes)
        if found is None:
            continue
        check(found.framing in ("line", "ws", "http"), f"unknown framing {found.framing!r}")
        check(0.0 <= found.confidence <= 1.0, f"confidence {found.confidence}")
        check(isinstance(found.dialect, str) and found.dialect, "empty dialect")
        check(all(isinstance(m, str) for m in found.methods), "non-string method")
        for ev in found.evidence:
            check(isinstance(ev.key, str) and isinstance(ev.value, str), "non-string evidence")
            _inert(clean(ev.value), "stage-0 evidence")


def _replies(part: bytes, http: bool) -> list[Any]:
    from minerscope.errors import LimitExceededError, RemoteProtocolError
    from minerscope.probe.dialects import http_jsonrpc

    out: list[Any] = []
    for piece in part.split(b"\x1e")[:16]:
        if http:
            try:
                out.append(http_jsonrpc.parse_http_response(piece))
                continue
            except (RemoteProtocolError, LimitExceededError):
                pass
        out.append(piece)
    return out


def _parsers() -> list[Callable[[object], object]]:
    from minerscope.probe.dialects import bitcoin, browser_ws, ethereum, http_jsonrpc, monero, zcash

    return [
        bitcoin.parse_subscribe_result, bitcoin.parse_notify, bitcoin.parse_difficulty, bitcoin.parse_submit,
        monero.parse_job, monero.parse_login_result, monero.parse_login_params, monero.parse_submit_params,
        ethereum.parse_work, ethereum.parse_submit_work, ethereum.parse_nh_notify,
        zcash.parse_notify, zcash.parse_submit, browser_ws.parse_ws_message, http_jsonrpc.parse_block_template,
    ]  # fmt: skip


DIALECT_FLAGS_BYTES = 2
"""A dialects input is: dialect index, flags (bit 0: control run), then probe/control replies."""


def dialects_input(dialect_index: int, probe: Sequence[bytes], control: Sequence[bytes] | None) -> bytes:
    """Build a ``dialects`` target input (replies joined by 0x1e; probe and control by :func:`join2`)."""
    flags = 1 if control is not None else 0
    return bytes([dialect_index, flags]) + join2(b"\x1e".join(probe), b"\x1e".join(control or []))


def target_dialects(data: bytes) -> None:
    """One dialect's classifier, every dialect's passive matcher, the reply parsers, the verdict."""
    from minerscope.errors import RemoteProtocolError
    from minerscope.probe.dialects import DIALECTS
    from minerscope.probe.dialects.base import Framing, decode_messages
    from minerscope.probe.verdict import Outcome, ProbeAttempt, Verdict, excerpt

    if len(data) < DIALECT_FLAGS_BYTES:
        return
    names = list(DIALECTS)
    dialect = DIALECTS[names[data[0] % len(names)]]
    probe_raw, control_raw = split2(data[DIALECT_FLAGS_BYTES:])
    http = dialect.framing is Framing.HTTP
    replies = _replies(probe_raw, http)
    control = _replies(control_raw, http) if data[1] & 1 else None
    attempts = []
    for ctrl in (None, control) if control is not None else (None,):
        result = dialect.classify(replies, ctrl)
        check(result.dialect == dialect.name, f"{dialect.name} result names {result.dialect}")
        check(0.0 <= result.confidence <= 1.0, f"{dialect.name} confidence {result.confidence}")
        check(result.outcome in tuple(Outcome), "unknown outcome")
        check(all(isinstance(e.value, str) and isinstance(e.key, str) for e in result.evidence), "evidence")
        attempts.append(
            ProbeAttempt(dialect.name, dialect.transports[0], b"", excerpt(probe_raw), 0.01, result)
        )
    msgs = decode_messages(replies)
    client = decode_messages(control or [])
    for other in DIALECTS.values():
        found = other.passive_match(client, msgs)
        if found is not None:
            check(0.0 <= found.confidence <= 1.0, f"{other.name} passive confidence {found.confidence}")
    for msg in msgs[:8]:
        for key in ("result", "params", "error"):
            if key not in msg:
                continue
            for parse in _parsers():
                try:
                    parse(msg[key])
                except RemoteProtocolError:
                    pass
    verdict = Verdict.from_attempts("fuzz:1", "fuzz", 1, attempts)
    check(0.0 <= verdict.confidence <= 1.0, "verdict confidence")
    exported = verdict.to_json()
    line = json.dumps(exported, allow_nan=False)
    for attempt in exported["attempts"]:
        for key in ("reply", "reason", "request"):
            _inert(attempt[key], f"exported attempt {key}")
    for item in exported.get("evidence", []):
        _inert(str(item), "exported evidence")
    check("\n" not in verdict.to_jsonl() and "\n" not in line, "JSONL export spans lines")


# ---------------------------------------------------------------------------------------

_JSON_TOKENS = (
    '{"id":', '"method":', '"params":', '"result":', '"error":', '"jsonrpc":"2.0"', '"type":', "null", "true",
    "false", "[]", "{}", '":"', '","', "],[", "-1", "0.5", "4294967296", "1e-8", '"\\u0000"', '"job_id"',
    '"blob"', '"target"', '"login"', '"algo"', '"height"', '"seed_hash"', '"site_key"', '"token"', '"hashes"',
    '"extranonce"', '"version"', '"previousblockhash"', '"bits"', '"transactions"', '"blocktemplate_blob"',
    "HTTP/1.1 200 OK\r\n", "Content-Length: ", "\r\n\r\n", "Upgrade: websocket\r\n", "POST / HTTP/1.1\r\n",
    "GET / HTTP/1.1\r\n", "HTTP/1.1 101 Switching Protocols\r\n",
)  # fmt: skip


def dictionary(name: str) -> list[bytes]:
    """libFuzzer dictionary tokens for the JSON/HTTP targets: protocol words, not answers.

    Method and message names come from the dialect modules themselves, so the fuzzer can
    build messages the classifiers actually look at; None for the binary targets.
    """
    if name not in ("framing", "stratum", "dialects"):
        return []
    from minerscope.probe.dialects import bitcoin, browser_ws, ethereum, http_jsonrpc, monero

    words = set(bitcoin.BITCOIN_CLIENT_METHODS | bitcoin.SERVER_PUSH_METHODS | browser_ws.SERVER_TYPES)
    words |= browser_ws.CLIENT_TYPES | ethereum.ETHPROXY_CLIENT_METHODS | http_jsonrpc.DAEMON_METHODS
    words |= monero.CLIENT_METHODS
    tokens = [t.encode() for t in _JSON_TOKENS] + [f'"{w}"'.encode() for w in sorted(words)]
    tokens += [bytes([0x81, 0x7E]), bytes([0x81, 0xFF]), bytes([0x88, 0x00])]  # WebSocket frame heads
    return tokens


def dictionary_file(tokens: Sequence[bytes], path: Path) -> Path:
    """Write ``tokens`` in libFuzzer's ``-dict`` format (one ``"..."`` line each, bytes escaped)."""
    lines = [
        '"' + "".join(chr(b) if 32 <= b < 127 and b not in (34, 92) else f"\\x{b:02x}" for b in t) + '"'
        for t in tokens
    ]
    path.write_text("\n".join(lines) + "\n")
    return path


@dataclass(frozen=True, slots=True)
class Target:
    """A fuzz target and what it covers."""

    name: str
    run: Callable[[bytes], None]
    modules: tuple[str, ...]
    """Source files (relative to the repository) whose coverage the campaign reports."""
    max_len: int
    """Longest input the fuzzer generates."""
    needs_jit_off: bool = False
    """The target runs numba kernels: the campaign runs them as Python so they are instrumented."""
    instrument: tuple[str, ...] = ()
    """More source files to instrument for coverage feedback (not reported)."""


TARGETS: dict[str, Target] = {
    t.name: t
    for t in (
        Target(
            "pcap", target_pcap, ("minerscope/capture/pcap.py", "minerscope/capture/decode.py"), 8192, True
        ),
        Target(
            "flows",
            target_flows,
            ("minerscope/flows/assemble.py", "minerscope/flows/_kernels.py"),
            16384,
            True,
            ("minerscope/capture/pcap.py", "minerscope/capture/decode.py", "minerscope/capture/handshake.py"),
        ),
        Target("tls", target_tls, ("minerscope/capture/handshake.py",), 4096),
        Target("dns", target_dns, ("minerscope/capture/handshake.py",), 1024),
        Target("framing", target_framing, ("minerscope/probe/framing.py",), 4096),
        Target("stratum", target_stratum, ("minerscope/prefilter/stratum.py",), 8192),
        Target(
            "dialects",
            target_dialects,
            (
                "minerscope/probe/dialects/base.py",
                "minerscope/probe/dialects/bitcoin.py",
                "minerscope/probe/dialects/monero.py",
                "minerscope/probe/dialects/ethereum.py",
                "minerscope/probe/dialects/zcash.py",
                "minerscope/probe/dialects/browser_ws.py",
                "minerscope/probe/dialects/http_jsonrpc.py",
                "minerscope/probe/dialects/sv2.py",
                "minerscope/probe/verdict.py",
            ),
            8192,
        ),
    )
}
"""Every target by name (``python -m fuzz.run --target NAME``)."""
