"""``PayloadPrefixes``: the assembler's prefixes in one buffer read like the list of pairs
they replaced, and the compiled byte scans over it answer what ``bytes`` would."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from minerscope.flows import _kernels as k
from minerscope.flows.assemble import assemble
from minerscope.flows.prefixes import PayloadPrefixes
from minerscope.flows.records import FlowTable
from tests.capture.test_handshake import client_hello
from tests.flows.frames import tcp_session, to_batch

PAIRS = [
    (b"GET / HTTP/1.1\r\n", b"HTTP/1.1 200 OK\r\n"),
    (b"", b""),
    (b"\x16\x03\x01hello", b""),
    (b"", b"srv"),
]


def test_pairs_survive_the_round_trip_through_one_buffer() -> None:
    prefixes = PayloadPrefixes.from_pairs(PAIRS)
    assert len(prefixes) == 4 and list(prefixes) == PAIRS and prefixes == PAIRS
    assert [prefixes[i] for i in range(4)] == PAIRS and prefixes[-1] == PAIRS[-1]
    assert prefixes.data.shape[0] == sum(len(a) + len(b) for a, b in PAIRS)
    assert prefixes != PAIRS[:3] and prefixes != [*PAIRS[:3], (b"", b"other")]


def test_slices_and_takes_share_the_buffer() -> None:
    prefixes = PayloadPrefixes.from_pairs(PAIRS)
    part = prefixes[1:3]
    assert isinstance(part, PayloadPrefixes) and part == PAIRS[1:3] and part.data is prefixes.data
    taken = prefixes.take(np.array([3, 0]))
    assert taken == [PAIRS[3], PAIRS[0]] and taken.data is prefixes.data


def test_concat_keeps_every_flow_in_order() -> None:
    a, b = PayloadPrefixes.from_pairs(PAIRS[:2]), PayloadPrefixes.from_pairs(PAIRS[2:])
    assert PayloadPrefixes.concat([a, b[1:], b[:1]]) == [*PAIRS[:2], PAIRS[3], PAIRS[2]]


def test_concat_of_slices_keeps_only_their_bytes() -> None:
    """A slice shares its parent's buffer; joining slices must not copy the parent's
    whole buffer once per slice."""
    big = PayloadPrefixes.from_pairs(PAIRS * 50)
    joined = PayloadPrefixes.concat([big[:1], big.take(np.array([2, 3]))])
    assert joined == [PAIRS[0], PAIRS[2], PAIRS[3]]
    assert joined.data.shape[0] == sum(len(a) + len(b) for a, b in (PAIRS[0], PAIRS[2], PAIRS[3]))


def test_first_bytes_and_heads() -> None:
    prefixes = PayloadPrefixes.from_pairs(PAIRS)
    assert prefixes.first_bytes(0).tolist() == [ord("G"), -1, 0x16, -1]
    assert prefixes.first_bytes(1).tolist() == [ord("H"), -1, -1, ord("s")]
    assert prefixes.head(0, 0, 4) == b"GET " and prefixes.head(2, 0, 99) == b"\x16\x03\x01hello"
    assert prefixes.head(1, 1, 8) == b""


@pytest.mark.parametrize(
    "spans",
    [[[0, 5, 0, 0]], [[-1, 1, 0, 0]], [[0, 1, 0, -1]], [[0, 0, 3, 2]]],
    ids=["past-end", "negative-offset", "negative-length", "second-side-past-end"],
)
def test_spans_outside_the_buffer_are_refused(spans: list[list[int]]) -> None:
    with pytest.raises(ValueError, match="outside the 4-byte buffer"):
        PayloadPrefixes(np.zeros(4, np.uint8), np.array(spans, np.int64))


def test_tables_concatenate_their_buffers() -> None:
    frames = tcp_session(1.0, ("10.0.0.2", 40000), ("192.0.2.9", 3333), [(0, b'{"id":1}\n'), (1, b"ok\n")])
    other = tcp_session(2.0, ("10.0.0.3", 40001), ("192.0.2.9", 80), [(0, b"GET / HTTP/1.1\r\n\r\n")])
    one, two = assemble([to_batch(frames)]), assemble([to_batch(other)])
    assert isinstance(one.payload_prefixes, PayloadPrefixes)
    joined = FlowTable.concat([one, two])
    assert isinstance(joined.payload_prefixes, PayloadPrefixes)
    assert joined.payload_prefixes == [(b'{"id":1}\n', b"ok\n"), (b"GET / HTTP/1.1\r\n\r\n", b"")]


# bytes that make the scans' block edges matter: the byte sought, its partner, filler
_SIDE = st.lists(st.sampled_from([b"\x16", b"\x03", b"\x16\x03", b"x", b"y" * 61, b"z" * 64]), max_size=12)


@settings(max_examples=400, deadline=None)
@given(st.lists(st.tuples(_SIDE.map(b"".join), _SIDE.map(b"".join)), min_size=1, max_size=6))
def test_holds_pair_finds_16_03_exactly_where_bytes_has_it(pairs: list[tuple[bytes, bytes]]) -> None:
    """Each side's bytes sit between other sides' in the buffer: a 16 that ends one side
    and a 03 that starts the next are no pair."""
    prefixes = PayloadPrefixes.from_pairs(pairs)
    for (c2s, s2c), (c_off, c_len, s_off, s_len) in zip(pairs, prefixes.spans.tolist(), strict=True):
        assert k.holds_pair(prefixes.data, c_off, c_off + c_len, 0x16, 0x03) == (b"\x16\x03" in c2s)
        assert k.holds_pair(prefixes.data, s_off, s_off + s_len, 0x16, 0x03) == (b"\x16\x03" in s2c)


@pytest.mark.parametrize("junk", [0, 1, 62, 63, 64, 200])
def test_a_client_hello_after_other_bytes_is_parsed_wherever_it_starts(junk: int) -> None:
    """The assembler's handshake search (a compiled scan for ``16 03`` over the buffer, in
    64-byte blocks) finds the record at any offset, a block edge included."""
    hello = client_hello("pool.example.test")
    flows = [(0, b"q" * junk + hello), (1, b"\x15\x03\x03\x00\x02\x02\x28")]
    frames = tcp_session(1.0, ("10.0.0.2", 40000), ("192.0.2.9", 8443), flows)
    row = assemble([to_batch(frames)]).summary.row(0, named=True)
    assert row["sni"] == "pool.example.test"


@pytest.mark.parametrize(
    ("request_line", "host"),
    [
        (b"GET /x HTTP/1.1\r\n", "web.example"),
        (b"OPTIONS * HTTP/1.1\r\n", "web.example"),
        (b"get /x HTTP/1.1\r\n", ""),
    ],
)
def test_http_requests_are_parsed_by_their_method(request_line: bytes, host: str) -> None:
    request = request_line + b"Host: web.example\r\n\r\n"
    frames = tcp_session(1.0, ("10.0.0.2", 40000), ("192.0.2.9", 80), [(0, request)])
    assert assemble([to_batch(frames)]).summary["http_host"][0] == host
