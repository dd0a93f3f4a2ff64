"""Stage 0's compiled scans over the prefix buffer decide as the per-flow Python checks do.

``line_brace`` must answer ``stratum.LINE_BRACE.search`` for every flow, and the
column-wise candidate selection must pick exactly the flows :func:`may_be_stratum` picks
one by one (a flow it drops is evidence never looked at)."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from minerscope.flows.prefixes import PayloadPrefixes
from minerscope.prefilter._kernels import line_brace
from minerscope.prefilter.stage0 import _stratum_candidates
from minerscope.prefilter.stratum import LINE_BRACE, may_be_stratum
from tests.prefilter.test_stage0_fast import LOGIN, REPLY

# newlines, the blanks LINE_BRACE skips (and LF, which it does not), braces, filler that
# pushes a match across the scan's 64-byte blocks, and frame/record first bytes
_PIECES = [b"\n", b"\r\n", b"\r", b" ", b"\t\x0b\x0c", b"{", b"}", b"x", b"y" * 62, b"z" * 64, b"\n" * 3]
_PIECES += [b"\x81", b"\x16\x03", b"GET / HTTP/1.1\r\n\r\n", b"SSH-", LOGIN, REPLY]
_SIDE = st.lists(st.sampled_from(_PIECES), max_size=14).map(b"".join)


def _pairs_and_rows(flows: list[tuple[bytes, bytes]]) -> tuple[PayloadPrefixes, np.ndarray]:
    return PayloadPrefixes.from_pairs(flows), np.arange(len(flows), dtype=np.int64)


@settings(max_examples=600, deadline=None)
@given(st.lists(st.tuples(_SIDE, _SIDE), min_size=1, max_size=8))
def test_line_brace_answers_the_regex_for_every_flow(flows: list[tuple[bytes, bytes]]) -> None:
    prefixes, rows = _pairs_and_rows(flows)
    expected = [bool(LINE_BRACE.search(c) or LINE_BRACE.search(s)) for c, s in flows]
    assert line_brace(prefixes.data, prefixes.spans, rows).tolist() == expected
    odd = rows[1::2].copy()
    assert line_brace(prefixes.data, prefixes.spans, odd).tolist() == expected[1::2]


def test_a_newline_ending_one_flow_and_a_brace_starting_the_next_are_no_line() -> None:
    flows = [(b"a\n", b"\n "), (b"{", b"{")]
    prefixes, rows = _pairs_and_rows(flows)
    assert line_brace(prefixes.data, prefixes.spans, rows).tolist() == [False, False]


@settings(max_examples=600, deadline=None)
@given(st.lists(st.tuples(_SIDE, _SIDE), min_size=1, max_size=8), st.data())
def test_column_wise_candidates_are_the_flows_may_be_stratum_picks(
    flows: list[tuple[bytes, bytes]], data: st.DataObject
) -> None:
    prefixes, rows = _pairs_and_rows(flows)
    rows = np.array(sorted(data.draw(st.sets(st.sampled_from(rows.tolist())))), np.int64)
    expected = [i for i in rows.tolist() if may_be_stratum(*flows[i])]
    assert sorted(_stratum_candidates(prefixes, rows).tolist()) == expected
