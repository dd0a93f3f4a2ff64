"""Stage 0's prefilter (``may_be_stratum`` + column-wise candidates) never hides evidence.

The fast path of :func:`apply_stage0` must give exactly the column that running
:func:`flow_evidence` on every flow gives (``_values_one_by_one``), on real captures and on
hand-made edge cases of every framing ``detect_stratum`` accepts.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from minerscope.flows.assemble import assemble, assemble_capture
from minerscope.flows.records import FlowTable
from minerscope.prefilter.blacklist import Blacklist, parse_indicator
from minerscope.prefilter.stage0 import apply_stage0, flow_evidence, stratum_detector
from minerscope.prefilter.stratum import detect_stratum, may_be_stratum
from minerscope.probe.dialects import bitcoin as v1
from minerscope.probe.dialects import browser_ws as ws
from minerscope.probe.dialects import http_jsonrpc as h
from minerscope.probe.dialects import monero as xmr
from minerscope.probe.framing import encode_json_line, encode_ws_frame
from minerscope.resources import sample_capture
from tests.flows.frames import tcp_session, to_batch

REAL = ["ndpi/mining.pcapng", "ndpi/jsonrpc.pcap", "ndpi/ssh.pcap", "ndpi/bitcoin.pcap"]
REAL += ["zeek-traces/websocket.pcap", "zeek-traces/jupyter-websocket.pcap", "ndpi/443-curl.pcap"]

LOGIN = b'{"id":1,"jsonrpc":"2.0","method":"login","params":{"login":"4A","pass":"x","agent":"XMRig/6.21.0"}}'
REPLY = (
    b'{"id":1,"jsonrpc":"2.0","error":null,"result":{"id":"a1","job":{"blob":"0707",'
    b'"job_id":"1","target":"b88d0600"},"status":"OK"}}'
)


def _stratum_kinds(values: list[str]) -> int:
    return sum(1 for v in values if v and any(e["kind"] == "stratum" for e in json.loads(v)))


def _values_one_by_one(
    table: FlowTable, blacklist: Blacklist | None, payload_prefixes: list[tuple[bytes, bytes]] | None = None
) -> list[str]:
    """The ``stage0`` column by definition: :func:`flow_evidence` on every flow, no prefilter."""
    prefixes = payload_prefixes if payload_prefixes is not None else table.payload_prefixes
    detector = stratum_detector() if prefixes is not None else None
    values = []
    for i, row in enumerate(table.summary.iter_rows(named=True)):
        items = flow_evidence(row, blacklist, prefixes[i] if prefixes is not None else None, detector)
        values.append(json.dumps(items, separators=(",", ":")) if items else "")
    return values


def test_sample_capture_fast_path_equals_one_by_one() -> None:
    path = sample_capture()
    if not path.is_file():
        pytest.skip("the bundled sample capture has not been generated")
    table, _ = assemble_capture(path)
    expected = _values_one_by_one(table, None)
    assert _stratum_kinds(expected) >= 1  # the sample has plaintext Stratum: this can fail
    assert apply_stage0(table, None).summary["stage0"].to_list() == expected
    dsts = table.summary["dst"].unique().sort().to_list()[:3]
    bl = Blacklist([parse_indicator(d, "test") for d in dsts])
    expected = _values_one_by_one(table, bl)
    assert apply_stage0(table, bl).summary["stage0"].to_list() == expected


@pytest.mark.realdata
def test_real_captures_fast_path_equals_one_by_one(real_datasets: Path) -> None:
    real = real_datasets / "real"
    paths = [real / name for name in REAL if (real / name).is_file()]
    paths += sorted((real / "cj-sniffer").glob("*.pcap"))[:3]
    assert len(paths) >= 5
    flagged = 0
    for path in paths:
        table, _ = assemble_capture(path)
        expected = _values_one_by_one(table, None)
        assert apply_stage0(table, None).summary["stage0"].to_list() == expected, path.name
        flagged += _stratum_kinds(expected)
    assert flagged >= 5


def _ws_pair(*, bare: bool = False) -> tuple[bytes, bytes]:
    rng = random.Random(7)
    c2s = b"GET /proxy HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n"
    s2c = b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n"
    if bare:
        c2s = s2c = b""
    c2s += encode_ws_frame(ws.encode_ws_json(ws.auth_message(ws.make_site_key(rng))), mask=rng.randbytes(4))
    s2c += encode_ws_frame(ws.encode_ws_json(ws.authed_message("", 0)))
    return c2s, s2c


def _http_pair(*, indent: bytes = b"") -> tuple[bytes, bytes]:
    rng = random.Random(5)
    spec = h.json_rpc_http_request("/", h.gbt_request(1), auth=("rpc", "pw"))
    spec = type(spec)(spec.method, spec.path, spec.headers, indent + spec.body)
    reply = h.http_response_bytes(h.json_http_reply(h.gbt_result(1, h.make_block_template(rng, tx_count=1))))
    return h.http_request_bytes(spec, "127.0.0.1:8332"), reply


def _subscribe_pair() -> tuple[bytes, bytes]:
    rng = random.Random(1)
    c2s = encode_json_line(v1.subscribe_request(1, "bmminer/2.0.0")) + encode_json_line(
        v1.authorize_request(2, "bc1q.s19")
    )
    s2c = encode_json_line(v1.subscribe_result(1, v1.make_extranonce1(rng), 8)) + encode_json_line(
        v1.notify(v1.make_notify_job(rng))
    )
    return c2s, s2c


# each positive is a candidate for one reason only (the other side does not rescue it)
POSITIVE = {
    "indented first line": (b" \t" + _subscribe_pair()[0], b""),
    "after a banner line": (b"hello\n\x0b\x0c " + _subscribe_pair()[0], b""),
    "server, after a banner line": (b"", b"banner\r\n\t" + _subscribe_pair()[1]),
    "server side only": (b"", _subscribe_pair()[1]),
    "crlf lines": (LOGIN + b"\r\n", REPLY + b"\r\n"),
    "directions swapped": (REPLY + b"\n", LOGIN + b"\n"),
    "websocket upgrade": _ws_pair(),
    "websocket upgrade, client only": (_ws_pair()[0], b""),
    "bare websocket frames": _ws_pair(bare=True),
    "http json-rpc": _http_pair(),
    "http json-rpc, indented body": (_http_pair(indent=b"\r\n \t")[0], b""),
    "monerod over http": (
        h.http_request_bytes(
            h.json_rpc_http_request("/json_rpc", h.monerod_template_request(xmr.PROBE_WALLET)), "n"
        ),
        b"",
    ),
    "stratum v1": _subscribe_pair(),
}
NEGATIVE = {
    "binary counter": (bytes(range(256)) * 16, b""),
    "bom before the only line": (b"\xef\xbb\xbf" + LOGIN + b"\n", b""),
    "brace mid-line": (b"x " + LOGIN + b"\n", b"y" + REPLY),
    "tls": (b"\x16\x03\x01\x02\x00" + b"\n" + LOGIN + b"\n", b""),
    "ssh": (b"SSH-2.0-OpenSSH_9.6\r\n" + LOGIN + b"\n", b""),
    "plain http": (
        b"GET / HTTP/1.1\r\nHost: example\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
    ),
    "empty": (b"", b""),
}


@pytest.mark.parametrize("name", sorted(POSITIVE))
def test_every_framing_is_a_candidate(name: str) -> None:
    c2s, s2c = POSITIVE[name]
    assert detect_stratum(c2s, s2c) is not None, name
    assert may_be_stratum(c2s, s2c)


@pytest.mark.parametrize("name", sorted(NEGATIVE))
def test_what_cannot_be_stratum_is_skipped(name: str) -> None:
    c2s, s2c = NEGATIVE[name]
    assert detect_stratum(c2s, s2c) is None
    assert not may_be_stratum(c2s, s2c), name


def _table(n: int) -> FlowTable:
    frames = []
    for i in range(n):
        frames += tcp_session(10.0 + i, ("10.0.0.2", 40000 + i), ("192.0.2.9", 3000 + i), [(0, b"x")])
    return assemble([to_batch(sorted(frames, key=lambda f: f[0]))])


def test_hand_made_flows_fast_path_equals_one_by_one() -> None:
    cases = [*POSITIVE.values(), *NEGATIVE.values()]
    table = _table(len(cases))
    order = table.summary["dport"].to_list()
    prefixes = [cases[port - 3000] for port in order]
    expected = _values_one_by_one(table, None, prefixes)
    assert apply_stage0(table, None, payload_prefixes=prefixes).summary["stage0"].to_list() == expected
    assert _stratum_kinds(expected) == len(POSITIVE)


def test_no_recognised_flow_is_ever_skipped() -> None:
    """Random mixes of Stratum lines, blanks, BOMs, HTTP heads, frames and binary, cut anywhere."""
    from hypothesis import given, settings
    from hypothesis import strategies as st

    parts = st.sampled_from(
        [
            LOGIN,
            REPLY,
            b"\n",
            b"\r\n",
            b" ",
            b"\t\x0b\x0c",
            b"\xef\xbb\xbf",
            b"{",
            b"GET / HTTP/1.1\r\nUpgrade: websocket\r\n\r\n",
            b"POST / HTTP/1.1\r\nContent-Length: 40\r\n\r\n",
            b"HTTP/1.1 200 OK\r\n\r\n",
            b"HTTP/1.1 101 Switching\r\n\r\n",
            _ws_pair(bare=True)[0],
            _ws_pair(bare=True)[1],
            *_subscribe_pair(),
            *_http_pair(),
            b"\x16\x03",
            b"SSH-",
        ]
    )
    side = st.tuples(st.lists(st.one_of(parts, st.binary(max_size=8)), max_size=6), st.integers(0, 1200))

    @settings(max_examples=1500, deadline=None)
    @given(side, side, st.sampled_from([4096, 300, 60, 3, 1]))
    def check(a: tuple[list[bytes], int], b: tuple[list[bytes], int], max_bytes: int) -> None:
        c2s, s2c = b"".join(a[0])[: a[1]], b"".join(b[0])[: b[1]]
        if detect_stratum(c2s, s2c, max_bytes=max_bytes) is not None:
            assert may_be_stratum(c2s, s2c, max_bytes=max_bytes), (c2s[:80], s2c[:80])

    check()
