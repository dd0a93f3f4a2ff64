"""ClientHello/JA3/JA4, DNS and HTTP parsers on real bytes (Python's own TLS client, built messages)."""

from __future__ import annotations

import shutil
import ssl
import struct
import subprocess
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from minerscope.capture import handshake as hs
from tests.flows.frames import tcp_session, write_pcap


def client_hello(
    sni: str | None, alpn: list[str] | None = None, max_version: ssl.TLSVersion | None = None
) -> bytes:
    """The ClientHello record(s) Python's ssl writes for these settings (memory BIOs, no socket)."""
    ctx = ssl.create_default_context()
    ctx.check_hostname = sni is not None
    if sni is None:
        ctx.verify_mode = ssl.CERT_NONE
    if alpn:
        ctx.set_alpn_protocols(alpn)
    if max_version is not None:
        ctx.maximum_version = max_version
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = ctx.wrap_bio(incoming, outgoing, server_hostname=sni)
    with pytest.raises(ssl.SSLWantReadError):
        obj.do_handshake()
    return outgoing.read()


def _ext(etype: int, body: bytes) -> bytes:
    return struct.pack("!HH", etype, len(body)) + body


def _u16s(values: list[int]) -> bytes:
    return b"".join(struct.pack("!H", v) for v in values)


def build_client_hello(
    ciphers: list[int], extensions: list[tuple[int, bytes]], legacy: int = 0x0303, record: bool = True
) -> bytes:
    """A ClientHello assembled field by field (as a TLS record unless ``record`` is False)."""
    body = struct.pack("!H", legacy) + bytes(32) + b"\x00"
    body += struct.pack("!H", 2 * len(ciphers)) + _u16s(ciphers) + b"\x01\x00"
    exts = b"".join(_ext(t, b) for t, b in extensions)
    body += struct.pack("!H", len(exts)) + exts
    msg = b"\x01" + len(body).to_bytes(3, "big") + body
    return b"\x16\x03\x01" + struct.pack("!H", len(msg)) + msg if record else msg


def _sni_ext(name: str) -> tuple[int, bytes]:
    entry = b"\x00" + struct.pack("!H", len(name)) + name.encode()
    return 0, struct.pack("!H", len(entry)) + entry


def _alpn_ext(protos: list[bytes]) -> tuple[int, bytes]:
    inner = b"".join(bytes([len(p)]) + p for p in protos)
    return 16, struct.pack("!H", len(inner)) + inner


# FoxIO's README example (Chrome): JA4 t13d1516h2_8daaf6152771_e5627efa2ab1.
CHROME_CIPHERS = [
    0x1301,
    0x1302,
    0x1303,
    0xC02B,
    0xC02F,
    0xC02C,
    0xC030,
    0xCCA9,
    0xCCA8,
    0xC013,
    0xC014,
    0x009C,
    0x009D,
    0x002F,
    0x0035,
]
CHROME_SIGALGS = [0x0403, 0x0804, 0x0401, 0x0503, 0x0805, 0x0501, 0x0806, 0x0601]


def chrome_like_hello() -> bytes:
    exts = [
        (0x1A1A, b""),  # GREASE
        _sni_ext("example.com"),
        (0x0017, b""),
        (0xFF01, b"\x00"),
        (0x000A, struct.pack("!H", 6) + _u16s([0x2A2A, 0x001D, 0x0017])),
        (0x000B, b"\x01\x00"),
        (0x0023, b""),
        _alpn_ext([b"h2", b"http/1.1"]),
        (0x0005, b"\x01\x00\x00\x00\x00"),
        (0x000D, struct.pack("!H", 2 * len(CHROME_SIGALGS)) + _u16s(CHROME_SIGALGS)),
        (0x0012, b""),
        (0x0033, struct.pack("!H", 0)),
        (0x002D, b"\x01\x01"),
        (0x002B, b"\x06" + _u16s([0x3A3A, 0x0304, 0x0303])),
        (0x001B, b"\x00\x02\x00\x02"),
        (0x4469, b"\x00\x03\x02h2"),
        (0x0015, bytes(10)),
        (0x4A4A, b"\x00"),  # GREASE
    ]
    return build_client_hello([0x0A0A, *CHROME_CIPHERS], exts)


def test_ja4_matches_foxio_reference_fingerprint() -> None:
    hello = hs.parse_client_hello(chrome_like_hello())
    assert hello.sni == "example.com"
    assert hello.alpn == ("h2", "http/1.1")
    assert hello.max_version == 0x0304 and hello.version_name == "1.3"
    assert hs.ja4(hello) == "t13d1516h2_8daaf6152771_e5627efa2ab1"
    assert hs.ja4(hello, transport="q").startswith("q13d1516h2_")


def test_ja3_string_drops_grease_and_keeps_wire_order() -> None:
    hello = hs.parse_client_hello(chrome_like_hello())
    version, ciphers, exts, groups, points = hs.ja3_string(hello).split(",")
    assert version == "771"
    assert ciphers.split("-")[:3] == ["4865", "4866", "4867"]
    assert "6682" not in exts.split("-") and exts.split("-")[0] == "0"
    assert groups == "29-23" and points == "0"
    assert len(hs.ja3(hello)) == 32


def test_ja4_edge_cases_alpn_and_missing_parts() -> None:
    bare = hs.parse_client_hello(build_client_hello([], [], legacy=0x0301))
    assert hs.ja4(bare) == "t10i000000_000000000000_000000000000"
    odd = hs.parse_client_hello(build_client_hello([0x002F], [_alpn_ext([b"\xab\xcd"])]))
    assert hs.ja4(odd)[8:10] == "ad"  # non-alphanumeric ALPN: first and last hex digits
    single = hs.parse_client_hello(build_client_hello([0x002F], [_alpn_ext([b"h"])]))
    assert hs.ja4(single)[8:10] == "hh"


def test_python_ssl_client_hello_parses() -> None:
    raw = client_hello("pool.example.com", ["h2", "http/1.1"])
    hello = hs.parse_client_hello(raw)
    assert hello.sni == "pool.example.com"
    assert hello.alpn == ("h2", "http/1.1")
    assert 0x0304 in hello.supported_versions
    assert hs.ja4(hello).startswith("t13d")
    tls12 = hs.parse_client_hello(client_hello("a.example", None, ssl.TLSVersion.TLSv1_2))
    assert tls12.version_name == "1.2" and hs.ja4(tls12).startswith("t12d") and hs.ja4(tls12)[8:10] == "00"
    # a bare handshake message (as inside QUIC CRYPTO frames) parses the same way
    assert hs.parse_client_hello(raw[5:]).sni == "pool.example.com"


def test_client_hello_split_over_records() -> None:
    raw = client_hello("split.example", ["h2"])
    msg = raw[5:]
    half = len(msg) // 2
    two = (
        b"\x16\x03\x01"
        + struct.pack("!H", half)
        + msg[:half]
        + b"\x16\x03\x01"
        + struct.pack("!H", len(msg) - half)
        + msg[half:]
    )
    assert hs.parse_client_hello(two).sni == "split.example"


def test_garbage_raises_value_errors_not_index_errors() -> None:
    raw = client_hello("cut.example")
    for cut in (0, 1, 5, 9, 40, 60, len(raw) - 1):
        with pytest.raises(hs.HandshakeParseError):
            hs.parse_client_hello(raw[:cut])
    with pytest.raises(hs.HandshakeParseError, match="not a ClientHello"):
        hs.parse_client_hello(b"\x16\x03\x01\x00\x04\x02\x00\x00\x00")
    assert issubclass(hs.HandshakeParseError, ValueError)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=600))
def test_fuzzed_bytes_never_crash(data: bytes) -> None:
    for parser in (hs.parse_client_hello, hs.parse_dns, hs.parse_http_request, hs.parse_server_hello_version):
        try:
            parser(data)
        except hs.HandshakeParseError:
            pass


@settings(max_examples=200, deadline=None)
@given(st.integers(0, 2000), st.integers(0, 255))
def test_mutated_client_hello_never_crashes(pos: int, value: int) -> None:
    raw = bytearray(chrome_like_hello())
    raw[pos % len(raw)] = value
    try:
        hs.parse_client_hello(bytes(raw))
    except hs.HandshakeParseError:
        pass


def dns_response() -> bytes:
    """www.pool.example CNAME edge.cdn.example, A 192.0.2.7, AAAA 2001:db8::7 (with compression)."""
    header = struct.pack("!HHHHHH", 0x1234, 0x8180, 1, 3, 0, 0)
    qname = b"\x03www\x04pool\x07example\x00"
    question = qname + struct.pack("!HH", 1, 1)
    target = b"\x04edge\x03cdn\xc0\x15"  # pointer to "example" in the question
    cname = b"\xc0\x0c" + struct.pack("!HHIH", 5, 1, 60, len(target)) + target
    target_ptr = 12 + len(question) + 12  # where the CNAME target starts
    a = struct.pack("!H", 0xC000 | target_ptr) + struct.pack("!HHIH", 1, 1, 60, 4) + bytes([192, 0, 2, 7])
    aaaa = (
        struct.pack("!H", 0xC000 | target_ptr)
        + struct.pack("!HHIH", 28, 1, 60, 16)
        + bytes.fromhex("20010db8" + "0" * 23 + "7")
    )
    return header + question + cname + a + aaaa


def test_dns_answers_map_addresses_to_names() -> None:
    msg = hs.parse_dns(dns_response())
    assert msg.is_response and msg.questions == ("www.pool.example",)
    names = msg.ip_names()
    assert names["192.0.2.7"] == {"edge.cdn.example", "www.pool.example"}
    assert names["2001:db8::7"] == {"edge.cdn.example", "www.pool.example"}


def test_dns_pointer_loop_is_refused() -> None:
    header = struct.pack("!HHHHHH", 1, 0x8180, 1, 0, 0, 0)
    with pytest.raises(hs.HandshakeParseError, match="MAX_DNS_POINTER_JUMPS"):
        hs.parse_dns(header + b"\xc0\x0c" + b"\x00\x01\x00\x01")
    with pytest.raises(hs.HandshakeParseError):
        hs.parse_dns(header)


def test_http_request_head() -> None:
    req = b"GET /proxy/ws?x=1 HTTP/1.1\r\nHost: miner.example:8080\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n"
    head = hs.parse_http_request(req)
    assert head.method == "GET" and head.path == "/proxy/ws?x=1"
    assert head.host == "miner.example:8080" and head.websocket_upgrade
    assert hs.looks_like_http_request(req)
    plain = hs.parse_http_request(b"POST / HTTP/1.0\r\nhost: a.example\r\n")
    assert plain.host == "a.example" and not plain.websocket_upgrade
    with pytest.raises(hs.HandshakeParseError):
        hs.parse_http_request(b"SSH-2.0-OpenSSH_9.6\r\n")


def _tshark_fields(pcap: Path, *fields: str) -> list[list[str]] | None:
    """Rows of tshark field values for ClientHello packets; None when a field is unknown to tshark."""
    tshark = shutil.which("tshark")
    assert tshark is not None
    args = [tshark, "-r", str(pcap), "-Y", "tls.handshake.type == 1", "-T", "fields"]
    for name in fields:
        args += ["-e", name]
    out = subprocess.run(args, capture_output=True, text=True, check=False)
    if out.returncode != 0:
        if "aren't valid" in out.stderr:
            return None
        raise AssertionError(out.stderr)
    return [line.split("\t") for line in out.stdout.splitlines() if line.strip()]


@pytest.mark.tshark
@pytest.mark.skipif(shutil.which("tshark") is None, reason="tshark is not installed")
def test_sni_ja3_ja4_agree_with_tshark(tmp_path: Path) -> None:
    cases = [
        ("pool.example.com", ["h2", "http/1.1"], None),
        ("b.example", None, ssl.TLSVersion.TLSv1_2),
        ("xmr.pool.example", ["stratum"], None),
    ]
    frames = []
    ours = []
    for i, (sni, alpn, maxv) in enumerate(cases):
        raw = client_hello(sni, alpn, maxv)
        frames += tcp_session(100.0 + i, ("10.0.0.1", 40000 + i), ("10.0.0.2", 443), [(0, raw)])
        hello = hs.parse_client_hello(raw)
        ours.append([hello.sni or "", hs.ja3(hello), hs.ja4(hello)])
    pcap = write_pcap(frames, tmp_path / "hellos.pcap")
    rows = _tshark_fields(pcap, "tls.handshake.extensions_server_name", "tls.handshake.ja3")
    assert rows == [o[:2] for o in ours]
    ja4_rows = _tshark_fields(pcap, "tls.handshake.ja4")
    if ja4_rows is None:
        pytest.skip(
            "this tshark has no tls.handshake.ja4 field (Wireshark < 4.2); JA4 checked against FoxIO's example"
        )
    assert [r[0] for r in ja4_rows] == [o[2] for o in ours]


def test_a_dns_name_reads_back_as_the_labels_it_had() -> None:
    """Names come from whoever runs the zone: a comma split one name into two in scan's
    ``dns_names`` (joined with commas per flow), a dot inside a label made two labels, and
    an escape byte reached the JSONL raw while the SNI beside it was escaped."""
    header = struct.pack("!HHHHHH", 0x1234, 0x8180, 1, 1, 0, 0)
    qname = b"\x05a,b.c\x04x\x1by\\\x07Example\x00"
    question = qname + struct.pack("!HH", 1, 1)
    a = b"\xc0\x0c" + struct.pack("!HHIH", 1, 1, 60, 4) + bytes([192, 0, 2, 9])
    msg = hs.parse_dns(header + question + a)
    name = "a\\x2cb\\x2ec.x\\x1by\\x5c.example"
    assert msg.questions == (name,)
    assert msg.ip_names() == {"192.0.2.9": {name}}
    assert "," not in name and "\x1b" not in name and name.count(".") == 2
