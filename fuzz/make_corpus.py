"""Rebuild the committed seed corpus ``fuzz/corpus/<target>/`` from real generated traffic.

Seeds come from the traffic lab (:mod:`minerscope.lab`: plaintext Stratum of every
family, WebSocket browser mining, solo-mining HTTP JSON-RPC, DNS, benign web), from the
bundled sample capture (real OpenSSL TLS handshakes) and from the writers the reader is
tested against (:mod:`minerscope.capture.writer`: every byte order, resolution, block
type and link type), plus a few hand-made edge cases (fragments, IPv6 extension headers,
QinQ/PPPoE/MPLS, damaged tails). Everything is seeded, so running this again gives the
same files (named by their SHA-1, as libFuzzer names corpus units).

Usage: ``python -m fuzz.make_corpus [--out fuzz/corpus]``.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import random
import shutil
import struct
import tempfile
from collections.abc import Iterable
from pathlib import Path

from fuzz import refwalk
from fuzz.targets import TARGETS, dialects_input, join2, pcap_input

ROOT = Path(__file__).resolve().parent.parent
CORPUS = Path(__file__).resolve().parent / "corpus"
SAMPLE = ROOT / "sample_pcaps" / "campus-gateway.pcapng"

Flow = tuple[dict[str, object], bytes, bytes]  # summary row, c2s prefix, s2c prefix


# ---------------------------------------------------------------------------------------
# sources


def _lab_captures(tmp: Path) -> list[Path]:
    """Two small lab captures: a drawn mix (plaintext mining of every coin) and fixed extras."""
    from minerscope.lab.generate import LabConfig, SessionSpec, World, generate, render, write_capture

    drawn = generate(
        LabConfig(seed=7, hours=0.05, sessions=40, benign_ratio=0.2, tls_ratio=0.0), tmp, "drawn"
    )
    world = World(LabConfig(seed=11, loopback_only=True))
    specs = [
        SessionSpec("mining", 0, 40, coin="xmr", scenario="browser", transport="ws", port=80, dns=True),
        SessionSpec("mining", 1, 40, coin="xmr", scenario="solo", transport="tcp", dns=False),
        SessionSpec("mining", 2, 40, coin="etc", scenario="solo", transport="tcp", dns=False),
        SessionSpec("mining", 3, 40, coin="btc", scenario="solo", transport="tcp", dns=False),
        SessionSpec("mining", 3, 40, coin="btc", scenario="proxy", transport="tcp", dns=False),
        SessionSpec("benign", 4, 40, benign_kind="ws-app"),
        SessionSpec("benign", 4, 40, benign_kind="web"),
    ]
    packets, _ = render(world, specs)
    extra = tmp / "extra.pcapng"
    write_capture(extra, packets)
    return [drawn.pcap, extra]


def _flows(path: Path) -> list[Flow]:
    from minerscope.flows.assemble import assemble_capture

    table, _ = assemble_capture(path)
    rows = table.summary.to_dicts()
    return [(row, c2s, s2c) for row, (c2s, s2c) in zip(rows, table.payload_prefixes or [], strict=True)]


def _frames(path: Path) -> list[tuple[bytes, dict[str, int]]]:
    """(Ethernet frame, its decoded row fields) for every packet of a capture."""
    from minerscope.capture.pcap import read_all

    batch, _ = read_all(path)
    records = [r for r in refwalk.walk(path.read_bytes()) if r.is_packet]
    out = []
    for rec, row in zip(records, batch.packets, strict=True):
        fields = {k: int(row[k]) for k in ("proto", "sport", "dport", "payload_cap", "ip_version", "vlan")}
        out.append((rec.frame, fields))
    return out


def _ip_of(frame: bytes) -> bytes:
    """The IP packet inside an Ethernet frame (VLAN tags skipped)."""
    p = 12
    while frame[p : p + 2] in (b"\x81\x00", b"\x88\xa8"):
        p += 4
    return frame[p + 2 :]


def _ethertype(ip: bytes) -> bytes:
    return b"\x86\xdd" if ip[:1] and ip[0] >> 4 == 6 else b"\x08\x00"


# ---------------------------------------------------------------------------------------
# capture files


def _pcap(frames: Iterable[bytes], linktype: int = 1, *, snap: int = 600, **kw: object) -> bytes:
    from minerscope.capture.writer import PcapWriter

    out = io.BytesIO()
    with PcapWriter(out, linktype, **kw) as w:  # type: ignore[arg-type]
        for i, f in enumerate(frames):
            w.write_packet(1_700_000_000_000_000_000 + i * 1_234_567, f[:snap], orig_len=len(f))
    return out.getvalue()


def _modified_pcap(frames: Iterable[bytes]) -> bytes:
    """The "modified" (Kuznetsov) pcap: 24-byte record headers (ifindex, protocol, type, pad)."""
    out = bytearray(struct.pack("<IHHiIII", 0xA1B2CD34, 2, 4, 0, 0, 65535, 1))
    for i, f in enumerate(frames):
        f = f[:300]
        out += struct.pack("<IIII", 1_700_000_000 + i, i * 10, len(f), len(f)) + struct.pack(
            "<IHBB4x", 2, 8, 0, 0
        )
        out += f
    return bytes(out)


def _pcapng_mixed(eth: list[bytes], big_endian: bool = False, gz: bool = False) -> bytes:
    from minerscope.capture.writer import PcapngWriter

    out = io.BytesIO()
    with PcapngWriter(out, big_endian=big_endian, gzip=gz) as w:
        a = w.add_interface(1, name="eth0")
        b = w.add_interface(101, tsresol_ns=False, snaplen=128)
        c = w.add_interface(1, tsresol=0x80 | 20)
        for i, f in enumerate(eth):
            t = 1_700_000_000_000_000_000 + i * 999_999
            if i % 4 == 0:
                w.write_packet(a, t, f[:400], orig_len=len(f))
            elif i % 4 == 1:
                w.write_packet(b, t, _ip_of(f)[:128], orig_len=len(f) - 14)
            elif i % 4 == 2:
                w.write_obsolete_packet(c, t, f[:200])
            else:
                w.write_block(0x0BAD, b"custom block body")
        w.new_section()
        w.add_interface(1, snaplen=96)
        for f in eth[:3]:
            w.write_simple_packet(f[:200], orig_len=len(f))
    return out.getvalue()


def _pcapng_tsoffset(eth: list[bytes]) -> bytes:
    """Big-endian pcapng with an IDB carrying if_tsresol=3 and if_tsoffset, built by hand."""

    def block(btype: int, body: bytes) -> bytes:
        body += b"\x00" * (-len(body) % 4)
        n = len(body) + 12
        return struct.pack(">II", btype, n) + body + struct.pack(">I", n)

    out = block(0x0A0D0D0A, struct.pack(">IHHq", 0x1A2B3C4D, 1, 0, -1))
    opts = (
        struct.pack(">HH", 9, 1)
        + b"\x03\x00\x00\x00"
        + struct.pack(">HHQ", 14, 8, 86400)
        + struct.pack(">HH", 0, 0)
    )
    out += block(1, struct.pack(">HHI", 113, 0, 0) + opts)
    for i, f in enumerate(eth[:5]):
        sll = struct.pack(">HHH8sH", 0, 1, 6, b"\x02" * 8, int.from_bytes(_ethertype(_ip_of(f)), "big"))
        frame = sll + _ip_of(f)[:300]
        units = 1_700_000_000_000 + i
        out += block(
            6, struct.pack(">IIIII", 0, units >> 32, units & 0xFFFFFFFF, len(frame), len(frame)) + frame
        )
    return out


def _linktype_variants(eth: list[bytes]) -> list[bytes]:
    ips = [_ip_of(f) for f in eth]
    sll = [
        struct.pack(">HHH8sH", 0, 1, 6, b"\x02" * 8, int.from_bytes(_ethertype(p), "big")) + p for p in ips
    ]
    sll2 = [
        struct.pack(">HHIHBB8s", int.from_bytes(_ethertype(p), "big"), 0, 2, 1, 0, 6, b"\x02" * 8) + p
        for p in ips
    ]
    null = [struct.pack("<I", 30 if p[0] >> 4 == 6 else 2) + p for p in ips]
    loop = [struct.pack(">I", 24 if p[0] >> 4 == 6 else 2) + p for p in ips]
    ppp = [b"\xff\x03" + (b"\x00\x57" if p[0] >> 4 == 6 else b"\x00\x21") + p for p in ips]
    hdlc = [(b"\x57" if p[0] >> 4 == 6 else b"\x21") + p for p in ips]
    v4 = [p for p in ips if p[0] >> 4 == 4]
    v6 = [p for p in ips if p[0] >> 4 == 6]
    out = [
        _pcap(ips, 101),
        _pcap(sll, 113, big_endian=True),
        _pcap(sll2, 276, nanosecond=True),
        _pcap(null, 0),
        _pcap(loop, 108, big_endian=True),
        _pcap(ppp, 9),
        _pcap(hdlc, 50),
        _pcap(v4, 228),
    ]
    if v6:
        out.append(_pcap(v6, 229))
    return out


def _edge_frames(eth: list[bytes]) -> list[bytes]:
    """Ethernet frames exercising the rarer decoder paths."""
    mac = b"\x02\x00\x00\x00\x00\x01\x02\x00\x00\x00\x00\x02"
    ip4 = next(_ip_of(f) for f in eth if _ip_of(f)[0] >> 4 == 4 and len(_ip_of(f)) > 60)
    udp = struct.pack(">HHHH", 5353, 53, 20, 0) + b"x" * 12
    frag1 = bytearray(ip4[:20])
    frag1[6:8] = b"\x20\x00"  # more fragments, offset 0
    frag2 = bytearray(ip4[:20])
    frag2[6:8] = b"\x00\x10"  # offset 128

    def v6_hdr(nh: int, plen: int) -> bytes:
        src, dst = b"\xfd" + b"\x00" * 14 + b"\x01", b"\xfd" + b"\x00" * 14 + b"\x02"
        return struct.pack(">IHBB", 6 << 28, plen, nh, 64) + src + dst

    hop = bytes([44, 0]) + b"\x01\x04\x00\x00\x00\x00"  # hop-by-hop -> fragment
    fragh = bytes([51, 0]) + struct.pack(">HI", 1, 7)  # fragment (offset 0, M) -> AH
    ah = bytes([17, 1]) + b"\x00" * 6  # AH (len 1 -> 12 bytes) -> UDP
    ah += b"\x00" * 4
    ext_payload = hop + fragh + ah + udp
    v6_ext = v6_hdr(0, len(ext_payload)) + ext_payload
    v6_frag_later = v6_hdr(44, 8 + len(udp)) + bytes([17, 0]) + struct.pack(">HI", 0x100, 9) + udp
    tcp_short = bytearray(ip4[:20])
    tcp_short[2:4] = (20 + 10).to_bytes(2, "big")
    tcp_short[9] = 6
    frames = [
        mac + b"\x08\x00" + bytes(frag1) + ip4[20:60],
        mac + b"\x08\x00" + bytes(frag2) + ip4[20:60],
        mac + b"\x86\xdd" + v6_ext,
        mac + b"\x86\xdd" + v6_frag_later,
        mac + b"\x81\x00\x00\x64\x88\xa8\x00\xc8\x08\x00" + ip4,  # 802.1Q then 802.1ad
        mac
        + b"\x88\x64"
        + b"\x11\x00\x00\x01"
        + struct.pack(">H", len(ip4) + 2)
        + b"\x00\x21"
        + ip4,  # PPPoE
        mac + b"\x88\x47" + b"\x00\x01\x00\x40" + b"\x00\x02\x01\x40" + ip4,  # MPLS, 2 labels
        mac + b"\x08\x00" + bytes(tcp_short) + b"\x00\x50\x01\xbb\x00\x00",  # TCP header cut short
        mac + b"\x08\x00" + b"\x45\x00\x00\x00" + ip4[4:],  # total length 0 (TSO)
        mac + b"\x08\x06" + b"\x00\x01\x08\x00\x06\x04\x00\x01" + b"\x00" * 20,  # ARP
    ]
    return frames


def _damaged(eth: list[bytes]) -> list[bytes]:
    good = _pcap(eth[:5])
    ng = _pcapng_mixed(eth[:6])
    bad_len = bytearray(good)
    bad_len[24 + 8 : 24 + 12] = struct.pack("<I", 0x7FFFFFF0)
    bad_trailer = bytearray(ng)
    bad_trailer[-1] ^= 0x40
    usb = bytearray(_pcap(eth[:2]))
    usb[20:24] = struct.pack("<I", 189)
    return [
        good[: len(good) - 7],
        bytes(bad_len),
        bytes(bad_trailer),
        ng[: len(ng) // 2],
        bytes(usb),
        b"this is not a capture\n",
        b"\x28\xb5\x2f\xfd" + b"\x00" * 20,
        good[:30],
        ng[:40],
    ]


# ---------------------------------------------------------------------------------------
# per-target seeds


def _pick_frames(frames: list[tuple[bytes, dict[str, int]]], limit: int) -> list[bytes]:
    """A varied selection: one frame per (IP version, VLAN, protocol, ports, has payload)."""
    seen: set[tuple[int, ...]] = set()
    out = []
    for frame, f in frames:
        key = (f["ip_version"], f["vlan"] > 0, f["proto"], min(f["sport"], f["dport"]), f["payload_cap"] > 0)
        if key in seen:
            continue
        seen.add(key)
        out.append(frame)
        if len(out) >= limit:
            break
    return out


def pcap_seeds(frames: list[tuple[bytes, dict[str, int]]]) -> list[bytes]:
    eth = _pick_frames(frames, 24)
    files = [
        _pcap(eth[:8]),
        _pcap(eth[8:16], nanosecond=True, big_endian=True),
        _pcap(eth[16:24], snap=96),
        _modified_pcap(eth[:6]),
        _pcapng_mixed(eth[:10]),
        _pcapng_mixed(eth[10:20], big_endian=True),
        _pcapng_tsoffset(eth),
        _pcap(eth[:4], gzip=True),
        _pcapng_mixed(eth[:5], gz=True),
        _pcap(_edge_frames(eth)),
        *_linktype_variants(eth[:6]),
        *_damaged(eth),
    ]
    rng = random.Random(0xF022)
    seeds = []
    for i, body in enumerate(files):
        flags = 0x20 | (i % 4) | (((i // 4) % 4) << 2) | (0x10 if i % 3 == 0 else 0) | (0x40 if i % 2 else 0)
        seeds.append(pcap_input(body, flags=flags, cut=rng.randrange(1 << 16)))
    return seeds


def flows_seeds(frames: list[tuple[bytes, dict[str, int]]]) -> list[bytes]:
    """Whole short conversations (DNS, plaintext Stratum, HTTP, TLS) as small captures."""
    by_flow: dict[tuple[int, int, int], list[bytes]] = {}
    for frame, f in frames:
        key = (f["proto"], min(f["sport"], f["dport"]), max(f["sport"], f["dport"]))
        by_flow.setdefault(key, []).append(frame)
    picks: dict[int, list[list[bytes]]] = {}
    for (proto, lo, _hi), group in by_flow.items():
        picks.setdefault(lo if proto == 6 else -lo, []).append(group)
    seeds = []
    for port in sorted(picks):
        group = picks[port][0][:14]
        body = _pcap(group, snap=1 << 16)
        if len(body) <= 12_000:
            seeds.append(body)
        if len(seeds) >= 16:
            break
    return seeds


def _tls_hello_openssl() -> list[bytes]:
    """ClientHellos straight from this machine's OpenSSL (TLS 1.3 with ALPN, TLS 1.2 only)."""
    import ssl

    from minerscope.lab.tls import _scrub_handshake

    out: list[bytes] = []
    for alpn, maxv in ((["h2", "http/1.1"], None), (None, ssl.TLSVersion.TLSv1_2)):
        ctx = ssl.create_default_context()
        if alpn:
            ctx.set_alpn_protocols(alpn)
        if maxv is not None:
            ctx.maximum_version = maxv
        incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
        obj = ctx.wrap_bio(incoming, outgoing, server_hostname="pool.example.test")
        try:
            obj.do_handshake()
        except ssl.SSLWantReadError:
            pass
        hello = bytearray(outgoing.read())
        # the lab's scrubber makes random, session id and key shares seeded (same seed, same bytes)
        rng = random.Random(f"hello:{len(out)}")
        _scrub_handshake(hello, 5, len(hello), rng.randbytes)
        out.append(bytes(hello))
    return out


def tls_seeds(flows: list[Flow]) -> list[bytes]:
    seeds: list[bytes] = []
    seen: set[bytes] = set()
    for row, c2s, s2c in flows:
        if not (row["is_tls"] or c2s[:4] in (b"GET ", b"POST")):
            continue
        key = c2s[:1] + str(row["ja4"]).encode() + s2c[:1]
        if key in seen:
            continue
        seen.add(key)
        seeds.append(join2(c2s[:2048], s2c[:1024]))
    for hello in _tls_hello_openssl():
        seeds.append(join2(hello, b""))
        seeds.append(join2(hello[5:], b""))  # bare handshake message (as inside QUIC)
        seeds.append(join2(b"STARTTLS\r\n" + hello, b""))
        half = 5 + (len(hello) - 5) // 2  # the same hello split over two records
        first, second = hello[5:half], hello[half:]
        two = b"\x16\x03\x01" + len(first).to_bytes(2, "big") + first
        two += b"\x16\x03\x01" + len(second).to_bytes(2, "big") + second
        seeds.append(join2(two, b""))
    return seeds[:40] + proxy_seeds(_tls_hello_openssl()[0])


def proxy_seeds(hello: bytes) -> list[bytes]:
    """A ClientHello through each explicit proxy (HTTP CONNECT, SOCKS 4, 4a, 5), replies included."""
    from minerscope.capture.proxyreq import socks5_connect

    port = (443).to_bytes(2, "big")
    socks5_ok = b"\x05\x00\x05\x00\x00\x01" + bytes(6)
    socks4_ok = b"\x00\x5a" + bytes(6)
    openings = [
        (b"".join(socks5_connect("pool.example", 443)), socks5_ok),
        (b"".join(socks5_connect("2001:db8::5", 443)), socks5_ok),
        (
            b"\x05\x02\x00\x02\x01\x03bob\x06secret" + socks5_connect("203.0.113.5", 443)[1],
            b"\x05\x02\x01\x00" + socks5_ok[2:],
        ),
        (b"\x04\x01" + port + bytes([203, 0, 113, 5]) + b"bob\x00", socks4_ok),
        (b"\x04\x01" + port + b"\x00\x00\x00\x01\x00pool.example\x00", socks4_ok),
        (b"CONNECT pool.example:443 HTTP/1.1\r\nHost: pool.example:443\r\n\r\n", b"HTTP/1.1 200 OK\r\n\r\n"),
    ]
    forward = b"POST http://[2001:db8::5]:8332/ HTTP/1.1\r\nHost: [2001:db8::5]:8332\r\n\r\n{}"
    return [join2(opening + hello, reply) for opening, reply in openings] + [
        join2(forward, b"HTTP/1.1 401 No\r\n\r\n")
    ]


def _dns_name(name: str) -> bytes:
    return b"".join(bytes([len(p)]) + p.encode() for p in name.split(".")) + b"\x00"


def dns_seeds(flows: list[Flow]) -> list[bytes]:
    seeds: list[bytes] = []
    for row, c2s, s2c in flows:
        if row["proto"] == 17 and 53 in (row["sport"], row["dport"]) and len(seeds) < 24:
            seeds += [c2s[:512], s2c[:512]]
    # hand-made: CNAME chain with compression, AAAA, a pointer loop, a reserved label type
    q = _dns_name("pool.example.test")
    head = struct.pack(">HHHHHH", 0x1234, 0x8180, 1, 3, 0, 0)
    msg = head + q + b"\x00\x01\x00\x01"
    msg += b"\xc0\x0c" + struct.pack(">HHIH", 5, 1, 60, 6) + b"\x03cdn\xc0\x11"
    msg += b"\xc0\x29" + struct.pack(">HHIH", 1, 1, 60, 4) + bytes([127, 20, 0, 9])
    msg += b"\xc0\x29" + struct.pack(">HHIH", 28, 1, 60, 16) + bytes(15) + b"\x01"
    seeds.append(msg)
    seeds.append(struct.pack(">HHHHHH", 1, 0x8180, 1, 0, 0, 0) + b"\xc0\x0c")
    seeds.append(struct.pack(">HHHHHH", 1, 0x0100, 1, 0, 0, 0) + b"\x45abc\x00\x00\x01\x00\x01")
    return seeds


def _ws_frames(rng: random.Random) -> list[bytes]:
    from minerscope.lab import ws
    from minerscope.probe.dialects import browser_ws, monero

    job = monero.make_job(rng)
    msgs = [
        browser_ws.auth_message(browser_ws.FAKE_SITE_KEY),
        browser_ws.authed_message("tok", 0),
        browser_ws.job_message(job),
        browser_ws.hash_accepted_message(256),
        browser_ws.error_message(),
    ]
    out = []
    for i, m in enumerate(msgs):
        payload = json.dumps(m).encode()
        out.append(ws.frame(payload, masked=i % 2 == 0, rng=rng))
    out.append(ws.frame(b"x" * 300, masked=True, rng=rng, opcode=ws.OP_BINARY))
    out.append(ws.frame(b"", masked=False, rng=rng, opcode=ws.OP_PING))
    return out


def framing_seeds(flows: list[Flow]) -> list[bytes]:
    rng = random.Random(0xF4A)
    seeds: list[bytes] = []
    for row, c2s, s2c in flows:
        if row["proto"] == 6 and (c2s[:1] == b"{" or s2c[:1] == b"{") and len(seeds) < 12:
            seeds.append(bytes([rng.randrange(256), rng.randrange(256)]) + s2c[:1024])
    frames = _ws_frames(rng)
    seeds.append(b"\x0f\x05" + b"".join(frames))
    seeds.append(b"\xc3\x02" + b"".join(frames[:3]))
    seeds.append(b"\x00\x01" + frames[2][:40])
    seeds.append(
        b"\x0a\x10"
        + b'{"id":1,"result":[[["mining.notify","ae6812eb4cd7735a302a8a9dd95cf71f"]],"08000002",4]}\r\n\r\n{"a":[[[[1]]]]}\n'
    )
    seeds.append(b"\x01\x01" + b'{"x":1e400}\n{"y":"\\ud800"}\n' + b"\xff\xfe\n")
    return seeds


def stratum_seeds(flows: list[Flow]) -> list[bytes]:
    from minerscope.lab import ws

    seeds = []
    seen: dict[str, int] = {}
    for row, c2s, s2c in flows:
        if row["proto"] != 6:
            continue
        kind = str(row["dport"]) if not (c2s[:1] in b"{GP" or s2c[:1] == b"{") else c2s[:6].decode("latin-1")
        if seen.get(kind, 0) >= 2:
            continue
        seen[kind] = seen.get(kind, 0) + 1
        seeds.append(join2(c2s[:2048], s2c[:2048]))
    rng = random.Random(0x57A)
    frames = _ws_frames(rng)
    seeds.append(join2(frames[0], frames[1] + frames[2]))  # bare frames, mid-connection
    req, resp = ws.upgrade(rng, "ws.example.test", "/proxy", "https://site.example", "Mozilla/5.0")
    seeds.append(join2(req + frames[0], resp + frames[1] + frames[2]))
    return seeds[:40]


def dialects_seeds(flows: list[Flow]) -> list[bytes]:
    from minerscope.prefilter.stratum import detect_stratum
    from minerscope.probe.dialects import DIALECTS, http_jsonrpc
    from minerscope.probe.dialects import ethereum as eth
    from minerscope.probe.dialects.base import HttpReply
    from minerscope.probe.framing import encode_json_line

    names = list(DIALECTS)
    rng = random.Random(0xD1A)
    control_err = b'{"id":909,"result":null,"error":[20,"Unknown method",null]}'
    seeds = []
    per: dict[str, int] = {}
    for _row, c2s, s2c in flows:
        found = detect_stratum(c2s, s2c)
        if found is None:
            continue
        name = {"stratum1-zcash": "stratum1-zcash"}.get(found.dialect, found.dialect)
        if name not in DIALECTS or per.get(name, 0) >= 2:
            continue
        per[name] = per.get(name, 0) + 1
        if DIALECTS[name].framing.value == "http":
            replies = [s2c[:2048]]
        elif found.framing == "ws":
            replies = [m for m in s2c.split(b"\r\n\r\n", 1)[-1].split(b"\x81")[1:4]]
        else:
            replies = [line for line in s2c[:2048].split(b"\n") if line][:8]
        seeds.append(dialects_input(names.index(name), replies, None))
        seeds.append(dialects_input(names.index(name), replies, [control_err]))
    # dialects the lab flows may not cover, from the builders the pool emulators use
    template = http_jsonrpc.make_block_template(rng, curtime=1_700_000_000)
    gbt = http_jsonrpc.http_response_bytes(http_jsonrpc.json_http_reply(http_jsonrpc.gbt_result(1, template)))
    seeds.append(
        dialects_input(
            names.index("bitcoind"), [gbt], [http_jsonrpc.http_response_bytes(HttpReply(404, "Not Found"))]
        )
    )
    mon = http_jsonrpc.http_response_bytes(
        http_jsonrpc.json_http_reply(http_jsonrpc.monerod_template_result(rng, "1"))
    )
    seeds.append(dialects_input(names.index("monerod"), [mon], None))
    work = encode_json_line(eth.work_result(1, eth.make_work(rng))).rstrip(b"\n")
    geth = http_jsonrpc.http_response_bytes(http_jsonrpc.json_http_reply(json.loads(work)))
    seeds.append(dialects_input(names.index("geth"), [geth], None))
    seeds.append(dialects_input(names.index("sv2"), [rng.randbytes(234)], [b""]))
    seeds.append(dialects_input(names.index("ethproxy"), [work], [control_err]))
    return seeds


def build(out: Path = CORPUS) -> dict[str, int]:
    """Write every target's seeds under ``out``; return files per target."""
    with tempfile.TemporaryDirectory() as tmp:
        lab = _lab_captures(Path(tmp))
        lab_flows = [f for path in lab for f in _flows(path)]
        sample_flows = _flows(SAMPLE) if SAMPLE.exists() else []
        frames = [fr for path in lab for fr in _frames(path)]
    flows = lab_flows + sample_flows
    seeds = {
        "pcap": pcap_seeds(frames),
        "flows": flows_seeds(frames),
        "tls": tls_seeds(sample_flows + lab_flows),
        "dns": dns_seeds(flows),
        "framing": framing_seeds(lab_flows),
        "stratum": stratum_seeds(lab_flows + sample_flows[:40]),
        "dialects": dialects_seeds(lab_flows),
    }
    counts = {}
    for name, items in seeds.items():
        assert name in TARGETS
        folder = out / name
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
        for item in items:
            (folder / hashlib.sha1(item).hexdigest()).write_bytes(item)
        counts[name] = len(list(folder.iterdir()))
    return counts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=CORPUS)
    args = parser.parse_args()
    counts = build(args.out)
    total = sum(f.stat().st_size for f in args.out.rglob("*") if f.is_file())
    for name, n in counts.items():
        print(f"{name:10s} {n:4d} seeds")
    print(f"total {total / 1024:.0f} KiB in {args.out}")


if __name__ == "__main__":
    main()
