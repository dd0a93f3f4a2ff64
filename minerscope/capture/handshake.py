"""Pure parsers of the metadata that survives encryption: TLS ClientHello, DNS, HTTP heads.

A miner hiding in TLS still announces a server name, an ALPN list and a client
fingerprint (JA3/JA4) in cleartext, and usually resolved its pool by DNS first; a
browser miner often upgrades a plaintext HTTP request to a WebSocket. These parsers turn
those bytes into values. They are sans-IO (bytes in, frozen records out), every loop
and buffer is bounded by a named limit, and garbage raises :class:`HandshakeParseError`
(a :class:`ValueError`) that says which field broke at which offset — never an
``IndexError`` from deep inside. The flow assembler calls them only on the first few KB
of each flow, so their speed matters per flow, not per packet.

JA4 follows FoxIO's specification (github.com/FoxIO-LLC/ja4, ``technical_details``);
JA3 follows salesforce/ja3 (GREASE values removed, as Wireshark does).
"""

from __future__ import annotations

import hashlib
import ipaddress
import re
from dataclasses import dataclass

MAX_CLIENT_HELLO_BYTES = 16_384 + 5 * 4
"""Security limit: a ClientHello larger than this (over all its records) is not parsed."""
MAX_TLS_LIST_ITEMS = 512
"""Security limit: cipher suites, extensions, groups ... per list."""
MAX_DNS_RECORDS = 64
"""Security limit: questions + answer records read from one DNS message."""
MAX_DNS_POINTER_JUMPS = 16
"""Security limit: compression pointers followed for one name (stops pointer loops)."""
MAX_DNS_NAME_CHARS = 255
"""RFC 1035 limit on a domain name; longer names are rejected."""
MAX_HTTP_HEAD_BYTES = 8_192
"""Security limit: bytes of an HTTP/1.x request head examined."""
MAX_HTTP_HEADERS = 100
"""Security limit: header lines read from one HTTP request head."""

TLS_VERSION_NAMES = {0x0300: "ssl3", 0x0301: "1.0", 0x0302: "1.1", 0x0303: "1.2", 0x0304: "1.3"}
_JA4_VERSIONS = {
    0x0304: "13",
    0x0303: "12",
    0x0302: "11",
    0x0301: "10",
    0x0300: "s3",
    0x0200: "s2",
    0xFEFF: "d1",
    0xFEFD: "d2",
    0xFEFC: "d3",
}
EXT_SNI, EXT_GROUPS, EXT_POINT_FORMATS, EXT_SIGALGS, EXT_ALPN, EXT_VERSIONS = 0, 10, 11, 13, 16, 43
HTTP_METHODS = (b"GET", b"POST", b"PUT", b"HEAD", b"DELETE", b"OPTIONS", b"PATCH", b"CONNECT", b"TRACE")


_HTTP_PREFIXES = tuple(m + b" " for m in HTTP_METHODS)


class HandshakeParseError(ValueError):
    """The bytes are not (a complete, well-formed) instance of the expected message."""


class TruncatedError(HandshakeParseError):
    """The message is cut short: more bytes were needed at the named field."""


def is_grease(value: int) -> bool:
    """True for the RFC 8701 GREASE values (0x0a0a, 0x1a1a, ... 0xfafa)."""
    return (value & 0x0F0F) == 0x0A0A and (value >> 8) == (value & 0xFF)


class _Reader:
    """Bounds-checked cursor over bytes; every read names its field for the error."""

    __slots__ = ("data", "pos", "end")

    def __init__(self, data: bytes, pos: int = 0, end: int | None = None) -> None:
        self.data = data
        self.pos = pos
        self.end = len(data) if end is None else end

    def take(self, n: int, field: str) -> bytes:
        if n < 0 or self.pos + n > self.end:
            raise TruncatedError(f"{field}: need {n} bytes at offset {self.pos}, have {self.end - self.pos}")
        out = self.data[self.pos : self.pos + n]
        self.pos += n
        return out

    def u8(self, field: str) -> int:
        return self.take(1, field)[0]

    def u16(self, field: str) -> int:
        return int.from_bytes(self.take(2, field), "big")

    def u24(self, field: str) -> int:
        return int.from_bytes(self.take(3, field), "big")

    def sub(self, n: int, field: str) -> _Reader:
        start = self.pos
        self.take(n, field)
        return _Reader(self.data, start, start + n)

    @property
    def left(self) -> int:
        return self.end - self.pos


def _u16_list(r: _Reader, field: str) -> list[int]:
    if r.left % 2:
        raise HandshakeParseError(f"{field}: odd length {r.left}")
    if r.left // 2 > MAX_TLS_LIST_ITEMS:
        raise HandshakeParseError(
            f"{field}: {r.left // 2} items exceed MAX_TLS_LIST_ITEMS={MAX_TLS_LIST_ITEMS}"
        )
    return [r.u16(field) for _ in range(r.left // 2)]


@dataclass(frozen=True, slots=True)
class ClientHello:
    """The fields of a TLS ClientHello that fingerprint a client.

    Lists keep wire order and include GREASE values; fingerprints drop them.
    """

    legacy_version: int
    cipher_suites: tuple[int, ...]
    extensions: tuple[int, ...]
    sni: str | None
    alpn: tuple[str, ...]
    supported_versions: tuple[int, ...]
    signature_algorithms: tuple[int, ...]
    groups: tuple[int, ...]
    ec_point_formats: tuple[int, ...]
    alpn_raw_first: bytes = b""

    @property
    def max_version(self) -> int:
        """Highest non-GREASE version offered (supported_versions, else legacy_version)."""
        offered = [v for v in self.supported_versions if not is_grease(v)]
        return max(offered) if offered else self.legacy_version

    @property
    def version_name(self) -> str:
        """``"1.3"``, ``"1.2"`` ... for :attr:`max_version` (hex when unknown)."""
        return TLS_VERSION_NAMES.get(self.max_version, f"0x{self.max_version:04x}")


def _unwrap_handshake(data: bytes, handshake_type: int, what: str) -> bytes:
    """Return the handshake message body, unwrapping TLS records when ``data`` starts with one."""
    if len(data) > MAX_CLIENT_HELLO_BYTES * 2:
        data = data[: MAX_CLIENT_HELLO_BYTES * 2]
    if data[:1] == b"\x16" and len(data) >= 5 and data[1] == 3:
        hs = bytearray()
        r = _Reader(data)
        while r.left >= 5:
            ctype = r.u8("record.type")
            r.u16("record.version")
            length = r.u16("record.length")
            if ctype != 22:
                break
            body = r.data[r.pos : r.pos + min(length, r.left)]
            r.pos += len(body)
            hs += body
            if len(hs) >= 4 and len(hs) >= 4 + int.from_bytes(hs[1:4], "big"):
                break
            if len(body) < length:
                break
        data = bytes(hs)
    r = _Reader(data)
    mtype = r.u8("handshake.type")
    if mtype != handshake_type:
        raise HandshakeParseError(f"not a {what}: handshake type {mtype}")
    length = r.u24("handshake.length")
    if length > MAX_CLIENT_HELLO_BYTES:
        raise HandshakeParseError(
            f"{what} of {length} bytes exceeds MAX_CLIENT_HELLO_BYTES={MAX_CLIENT_HELLO_BYTES}"
        )
    return r.take(length, f"{what} body")


def parse_client_hello(data: bytes) -> ClientHello:
    """Parse a ClientHello from the start of a client's byte stream.

    Args:
        data: the first bytes the client sent: TLS record(s) carrying the handshake, or a
            bare handshake message (as found inside a QUIC CRYPTO frame).

    Returns:
        The parsed :class:`ClientHello`.

    Raises:
        TruncatedError: the message ends before a field it announces.
        HandshakeParseError: the bytes are not a ClientHello or break a limit.
    """
    r = _Reader(_unwrap_handshake(data, 1, "ClientHello"))
    legacy = r.u16("client_version")
    r.take(32, "random")
    r.take(r.u8("session_id.length"), "session_id")
    ciphers = _u16_list(r.sub(r.u16("cipher_suites.length"), "cipher_suites"), "cipher_suites")
    r.take(r.u8("compression_methods.length"), "compression_methods")
    exts: list[int] = []
    sni: str | None = None
    alpn: list[str] = []
    alpn_first = b""
    versions: list[int] = []
    sigalgs: list[int] = []
    groups: list[int] = []
    points: list[int] = []
    if r.left:
        er = r.sub(r.u16("extensions.length"), "extensions")
        while er.left:
            etype = er.u16("extension.type")
            body = er.sub(er.u16("extension.length"), f"extension 0x{etype:04x}")
            exts.append(etype)
            if len(exts) > MAX_TLS_LIST_ITEMS:
                raise HandshakeParseError(f"extensions exceed MAX_TLS_LIST_ITEMS={MAX_TLS_LIST_ITEMS}")
            if etype == EXT_SNI and body.left:
                lr = body.sub(body.u16("server_name_list.length"), "server_name_list")
                while lr.left:
                    kind = lr.u8("server_name.type")
                    name = lr.take(lr.u16("server_name.length"), "server_name")
                    if kind == 0 and sni is None:
                        sni = name.decode("ascii", errors="backslashreplace")
            elif etype == EXT_ALPN and body.left:
                lr = body.sub(body.u16("alpn.length"), "alpn")
                while lr.left:
                    proto = lr.take(lr.u8("alpn.protocol.length"), "alpn.protocol")
                    if not alpn:
                        alpn_first = proto
                    alpn.append(proto.decode("ascii", errors="backslashreplace"))
                    if len(alpn) > MAX_TLS_LIST_ITEMS:
                        raise HandshakeParseError("alpn list exceeds MAX_TLS_LIST_ITEMS")
            elif etype == EXT_VERSIONS and body.left:
                versions = _u16_list(
                    body.sub(body.u8("supported_versions.length"), "supported_versions"), "supported_versions"
                )
            elif etype == EXT_SIGALGS and body.left:
                sigalgs = _u16_list(
                    body.sub(body.u16("signature_algorithms.length"), "signature_algorithms"),
                    "signature_algorithms",
                )
            elif etype == EXT_GROUPS and body.left:
                groups = _u16_list(
                    body.sub(body.u16("supported_groups.length"), "supported_groups"), "supported_groups"
                )
            elif etype == EXT_POINT_FORMATS and body.left:
                points = list(body.take(body.u8("ec_point_formats.length"), "ec_point_formats"))
    return ClientHello(
        legacy_version=legacy,
        cipher_suites=tuple(ciphers),
        extensions=tuple(exts),
        sni=sni,
        alpn=tuple(alpn),
        supported_versions=tuple(versions),
        signature_algorithms=tuple(sigalgs),
        groups=tuple(groups),
        ec_point_formats=tuple(points),
        alpn_raw_first=alpn_first,
    )


def parse_server_hello_version(data: bytes) -> int:
    """Return the TLS version a ServerHello selected (supported_versions, else legacy_version).

    Raises:
        HandshakeParseError: the bytes are not a ServerHello.
    """
    r = _Reader(_unwrap_handshake(data, 2, "ServerHello"))
    version = r.u16("server_version")
    r.take(32, "random")
    r.take(r.u8("session_id.length"), "session_id")
    r.u16("cipher_suite")
    r.u8("compression_method")
    if r.left:
        er = r.sub(r.u16("extensions.length"), "extensions")
        while er.left:
            etype = er.u16("extension.type")
            body = er.sub(er.u16("extension.length"), "extension")
            if etype == EXT_VERSIONS and body.left >= 2:
                version = body.u16("selected_version")
    return version


def ja3_string(hello: ClientHello) -> str:
    """The JA3 string: version,ciphers,extensions,groups,point formats (decimal, GREASE removed)."""

    def join(values: tuple[int, ...]) -> str:
        return "-".join(str(v) for v in values if not is_grease(v))

    return ",".join(
        [
            str(hello.legacy_version),
            join(hello.cipher_suites),
            join(hello.extensions),
            join(hello.groups),
            "-".join(str(v) for v in hello.ec_point_formats),
        ]
    )


def ja3(hello: ClientHello) -> str:
    """JA3 fingerprint: MD5 hex of :func:`ja3_string`."""
    return hashlib.md5(ja3_string(hello).encode("ascii"), usedforsecurity=False).hexdigest()


def _alpn_chars(first: bytes) -> str:
    if not first:
        return "00"
    a, b = first[0], first[-1]
    if chr(a).isascii() and chr(a).isalnum() and chr(b).isascii() and chr(b).isalnum():
        return chr(a) + chr(b)
    hexed = first.hex()
    return hexed[0] + hexed[-1]


def _sha12(text: str) -> str:
    if not text:
        return "000000000000"
    return hashlib.sha256(text.encode("ascii")).hexdigest()[:12]


def ja4(hello: ClientHello, transport: str = "t") -> str:
    """JA4 fingerprint (FoxIO): ``{t|q}{version}{d|i}{ciphers:02}{exts:02}{alpn}_{ciphers}_{exts+sigalgs}``.

    Args:
        hello: the parsed ClientHello.
        transport: ``"t"`` for TLS over TCP, ``"q"`` for QUIC, ``"d"`` for DTLS.
    """
    ciphers = [c for c in hello.cipher_suites if not is_grease(c)]
    exts = [e for e in hello.extensions if not is_grease(e)]
    versions = [v for v in hello.supported_versions if not is_grease(v)]
    version = _JA4_VERSIONS.get(max(versions) if versions else hello.legacy_version, "00")
    sni = "d" if EXT_SNI in exts else "i"
    part_a = f"{transport}{version}{sni}{min(len(ciphers), 99):02d}{min(len(exts), 99):02d}{_alpn_chars(hello.alpn_raw_first)}"
    part_b = _sha12(",".join(f"{c:04x}" for c in sorted(ciphers)))
    ext_text = ",".join(f"{e:04x}" for e in sorted(exts) if e not in (EXT_SNI, EXT_ALPN))
    sigs = [s for s in hello.signature_algorithms if not is_grease(s)]
    if sigs and ext_text:
        ext_text += "_" + ",".join(f"{s:04x}" for s in sigs)
    part_c = _sha12(ext_text)
    return f"{part_a}_{part_b}_{part_c}"


# --- DNS -------------------------------------------------------------------------------

DNS_A, DNS_CNAME, DNS_AAAA = 1, 5, 28


@dataclass(frozen=True, slots=True)
class DnsAnswer:
    """One answer record: owner name, type, and value (address text or CNAME target)."""

    name: str
    rtype: int
    value: str


@dataclass(frozen=True, slots=True)
class DnsMessage:
    """The parts of a DNS message that map addresses to names."""

    txid: int
    is_response: bool
    rcode: int
    questions: tuple[str, ...]
    answers: tuple[DnsAnswer, ...]

    def ip_names(self) -> dict[str, set[str]]:
        """Map each A/AAAA address to the names that led to it (owner and CNAME-chain names)."""
        aliases: dict[str, set[str]] = {}
        for ans in self.answers:
            if ans.rtype == DNS_CNAME:
                aliases.setdefault(ans.value, set()).add(ans.name)
        out: dict[str, set[str]] = {}
        for ans in self.answers:
            if ans.rtype not in (DNS_A, DNS_AAAA):
                continue
            names = out.setdefault(ans.value, set())
            todo = [ans.name]
            while todo and len(names) < MAX_DNS_RECORDS:
                name = todo.pop()
                if name in names:
                    continue
                names.add(name)
                todo.extend(aliases.get(name, ()))
        return out


def _dns_name(data: bytes, pos: int) -> tuple[str, int]:
    """Read a possibly compressed name at ``pos``; return it and the offset after it."""
    labels: list[str] = []
    total = 0
    jumps = 0
    end_pos = -1
    while True:
        if pos >= len(data):
            raise TruncatedError(f"dns name: offset {pos} beyond message of {len(data)} bytes")
        length = data[pos]
        if length & 0xC0 == 0xC0:
            if pos + 1 >= len(data):
                raise TruncatedError(f"dns name: pointer at offset {pos} cut short")
            jumps += 1
            if jumps > MAX_DNS_POINTER_JUMPS:
                raise HandshakeParseError(
                    f"dns name: more than MAX_DNS_POINTER_JUMPS={MAX_DNS_POINTER_JUMPS} pointers (loop?)"
                )
            if end_pos < 0:
                end_pos = pos + 2
            pos = ((length & 0x3F) << 8) | data[pos + 1]
            continue
        if length & 0xC0:
            raise HandshakeParseError(f"dns name: reserved label type 0x{length:02x} at offset {pos}")
        if length == 0:
            pos += 1
            break
        label = data[pos + 1 : pos + 1 + length]
        if len(label) < length:
            raise TruncatedError(f"dns name: label at offset {pos} cut short")
        total += length + 1
        if total > MAX_DNS_NAME_CHARS:
            raise HandshakeParseError(f"dns name longer than MAX_DNS_NAME_CHARS={MAX_DNS_NAME_CHARS}")
        labels.append(_label_text(label))
        pos += 1 + length
    return ".".join(labels).lower(), (end_pos if end_pos >= 0 else pos)


_PLAIN_LABEL = re.compile(rb"[!-+\-/-\[\]-~]*")
"""Label bytes shown as they are: printable ASCII but ``,`` ``.`` and ``\\``."""


def _label_text(label: bytes) -> str:
    """A DNS label as text that reads back as one label: a byte that is not printable
    ASCII, or is ``.`` (a label may hold one), ``,`` or ``\\``, becomes ``\\xNN``.

    Why: a hostile answer's name is chosen by whoever runs the resolver or the zone. With
    its bytes kept, a comma split one name into two in ``scan``'s ``dns_names`` list
    (names are joined with commas per flow), a dot inside a label made two labels of one,
    and an escape byte reached the JSONL raw while the SNI beside it was escaped."""
    if _PLAIN_LABEL.fullmatch(label):
        return label.decode("ascii")
    return "".join(chr(b) if 0x21 <= b <= 0x7E and b not in b".,\\" else f"\\x{b:02x}" for b in label)


def parse_dns(data: bytes) -> DnsMessage:
    """Parse a DNS message (UDP payload; strip the 2-byte length of DNS over TCP first).

    Only questions and A/AAAA/CNAME answers are decoded; other records are skipped.
    At most :data:`MAX_DNS_RECORDS` records are read.

    Raises:
        HandshakeParseError: the bytes are not a well-formed DNS message.
    """
    r = _Reader(data)
    txid = r.u16("dns.id")
    flags = r.u16("dns.flags")
    qd, an = r.u16("dns.qdcount"), r.u16("dns.ancount")
    r.u16("dns.nscount")
    r.u16("dns.arcount")
    if qd + an > MAX_DNS_RECORDS:
        raise HandshakeParseError(f"dns: {qd + an} records exceed MAX_DNS_RECORDS={MAX_DNS_RECORDS}")
    pos = r.pos
    questions: list[str] = []
    for _ in range(qd):
        name, pos = _dns_name(data, pos)
        if pos + 4 > len(data):
            raise TruncatedError(f"dns question at offset {pos} cut short")
        pos += 4
        questions.append(name)
    answers: list[DnsAnswer] = []
    for _ in range(an):
        name, pos = _dns_name(data, pos)
        if pos + 10 > len(data):
            raise TruncatedError(f"dns answer header at offset {pos} cut short")
        rtype = int.from_bytes(data[pos : pos + 2], "big")
        rdlen = int.from_bytes(data[pos + 8 : pos + 10], "big")
        pos += 10
        rdata = data[pos : pos + rdlen]
        if len(rdata) < rdlen:
            raise TruncatedError(f"dns rdata at offset {pos} cut short")
        if rtype == DNS_A and rdlen == 4:
            answers.append(DnsAnswer(name, rtype, str(ipaddress.IPv4Address(rdata))))
        elif rtype == DNS_AAAA and rdlen == 16:
            answers.append(DnsAnswer(name, rtype, str(ipaddress.IPv6Address(rdata))))
        elif rtype == DNS_CNAME:
            target, _ = _dns_name(data, pos)
            answers.append(DnsAnswer(name, rtype, target))
        pos += rdlen
    return DnsMessage(
        txid=txid,
        is_response=bool(flags & 0x8000),
        rcode=flags & 0xF,
        questions=tuple(questions),
        answers=tuple(answers),
    )


# --- HTTP/1.x --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class HttpRequestHead:
    """The request line and the headers minerscope uses."""

    method: str
    path: str
    version: str
    host: str | None
    websocket_upgrade: bool
    headers: tuple[tuple[str, str], ...]


def looks_like_http_request(data: bytes) -> bool:
    """Cheap test: does ``data`` start with an HTTP method and a space?"""
    return data.startswith(_HTTP_PREFIXES)


def parse_http_request(data: bytes) -> HttpRequestHead:
    """Parse an HTTP/1.x request head from the start of a client's byte stream.

    Only the first :data:`MAX_HTTP_HEAD_BYTES` are examined; a head that does not end
    within them is parsed as far as complete lines go.

    Raises:
        HandshakeParseError: the bytes do not start with an HTTP/1.x request line.
    """
    head = data[:MAX_HTTP_HEAD_BYTES]
    end = head.find(b"\r\n\r\n")
    if end >= 0:
        head = head[:end]
    lines = head.split(b"\r\n")
    parts = lines[0].split(b" ")
    if len(parts) != 3 or parts[0] not in HTTP_METHODS or not parts[2].startswith(b"HTTP/1."):
        raise HandshakeParseError(f"not an HTTP/1.x request line: {lines[0][:60]!r}")
    headers: list[tuple[str, str]] = []
    complete = lines[1:] if end >= 0 else lines[1:-1]
    for line in complete[:MAX_HTTP_HEADERS]:
        name, sep, value = line.partition(b":")
        if not sep:
            continue
        headers.append((name.strip().decode("latin-1").lower(), value.strip().decode("latin-1")))
    lookup = dict(headers)
    upgrade = lookup.get("upgrade", "").lower() == "websocket"
    return HttpRequestHead(
        method=parts[0].decode("ascii"),
        path=parts[1].decode("latin-1"),
        version=parts[2].decode("ascii", errors="replace"),
        host=lookup.get("host"),
        websocket_upgrade=upgrade,
        headers=tuple(headers),
    )
