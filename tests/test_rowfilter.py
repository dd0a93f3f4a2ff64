"""The filter-bar language: parsing, field binding, and the ranked view of a rows frame."""

from __future__ import annotations

import polars as pl
import pytest

from minerscope.errors import InputError
from minerscope.rowfilter import FilterError, parse_filter, rank_rows, view_rows


@pytest.fixture
def rows() -> pl.DataFrame:
    return pl.DataFrame(
        {
            "flow_id": [0, 1, 2, 3, 4],
            "proto": pl.Series([6, 6, 17, 6, 6], dtype=pl.UInt8),
            "src": ["10.0.0.5", "10.0.0.6", "10.0.0.7", "10.0.0.5", "10.0.0.9"],
            "sport": pl.Series([50000, 50001, 53, 50002, 443], dtype=pl.UInt16),
            "dst": ["198.51.100.7", "203.0.113.9", "192.0.2.53", "198.51.100.8", "10.0.0.1"],
            "dport": pl.Series([443, 3333, 53, 443, 50003], dtype=pl.UInt16),
            "bytes": [10_000, 5_000, 300, 90_000, 7],
            "is_tls": [True, False, False, True, True],
            "sni": ["pool.supportxmr.com", "", "", "www.example.org", None],
            "dns_names": ["pool.supportxmr.com", "", "", "", ""],
            "p_mining": [0.97, 0.91, 0.01, 0.20, None],
            "verdict": ["mining", "mining", "benign", "benign", "benign"],
            "coin": ["xmr", "btc", "", "xmr", ""],
            "stage0": ["", '[{"kind": "stratum"}]', "", "", ""],
            "analyst_status": ["", "confirmed", "", "", "dismissed"],
            "proxy_host": ["", "pool.example", "", "", ""],  # flow 1 went through a proxy
            "proxy_port": pl.Series([0, 5555, 0, 0, 0], dtype=pl.UInt16),
        }
    )


def ids(frame: pl.DataFrame) -> list[int]:
    return frame["flow_id"].to_list()


def test_issue_example_combines_terms_with_and(rows: pl.DataFrame) -> None:
    assert ids(view_rows(rows, parse_filter("p>0.9 coin=xmr port=443"))) == [0]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("p>=0.91", [0, 1]),
        ("p<0.5", [3, 2]),
        ("p>90%", [0, 1]),
        ("coin=Monero", [0, 3]),
        ("coin!=xmr", [1, 2, 4]),
        ("port=443", [0, 3, 4]),
        ("port!=443", [1, 2]),
        ("proto=udp", [2]),
        ("sni~supportxmr", [0]),
        ("host~198.51.100", [0, 3]),
        ("is_tls=false", [1, 2]),
        ("status=confirmed", [1]),
        ("badge~stratum", [1]),
        ("proxy~pool.example", [1]),
        ("host=pool.example port=5555", [1]),
        ("POOL.EXAMPLE", [1]),
        ("SUPPORTXMR", [0]),
        ("example 10.0.0.5", [3]),
        ("bytes>8000 verdict=benign", [3]),
        ("", [0, 1, 3, 2, 4]),
    ],
)
def test_filters_select_the_expected_flows(rows: pl.DataFrame, text: str, expected: list[int]) -> None:
    assert ids(view_rows(rows, parse_filter(text))) == expected


@pytest.mark.parametrize(
    ("text", "expected"), [("p<0.5", [3, 2]), ("p=0", []), ("p!=0.2", [0, 1, 2]), ("score>=0", [0, 1, 3, 2])]
)
def test_no_probability_term_matches_an_unscored_flow(
    rows: pl.DataFrame, text: str, expected: list[int]
) -> None:
    # flow 4 unscored (no window, p 0.0 as stage 1 reports it): its row shows "-", so
    # "p<0.5" must not list it among the low scores
    scored = rows.with_columns(
        pl.Series("p_mining", [0.97, 0.91, 0.01, 0.20, 0.0]),
        pl.Series("window", [0, 2, 0, 1, None], dtype=pl.Int32),
    )
    assert ids(view_rows(scored, parse_filter(text))) == expected
    # other numeric fields still see the flow
    assert 4 in ids(view_rows(scored, parse_filter("bytes<10")))


def test_quoted_value_keeps_spaces() -> None:
    flt = parse_filter('sni="a b" word')
    assert [str(t) for t in flt.terms] == ["sni=a b"]
    assert flt.words == ("word",)


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("nosuch=1", "unknown field 'nosuch'"),
        ("p>high", "p needs a number"),
        ("p>=nan", "p needs a number, not 'nan'"),
        ("coin>xmr", "coin is text"),
        ("p~0.5", "text fields only"),
        ("is_tls=maybe", "=true or =false"),
    ],
)
def test_bad_terms_name_the_term(rows: pl.DataFrame, text: str, fragment: str) -> None:
    with pytest.raises(FilterError, match=fragment) as info:
        view_rows(rows, parse_filter(text))
    assert isinstance(info.value, InputError)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize(
    ("text", "fragment"), [("p>", "needs a value"), ('sni="open', "quotation"), (">3", "without a field")]
)
def test_parse_errors(text: str, fragment: str) -> None:
    with pytest.raises(FilterError, match=fragment):
        parse_filter(text)


def test_overlong_filter_is_refused() -> None:
    with pytest.raises(FilterError, match="max_filter_chars"):
        parse_filter("x" * 5000)


def test_default_rank_puts_mining_first_then_score(rows: pl.DataFrame) -> None:
    assert ids(rank_rows(rows)) == [0, 1, 3, 2, 4]  # unscored rows last


def test_toggles_hide_benign_and_confirmed(rows: pl.DataFrame) -> None:
    assert ids(view_rows(rows, hide_benign=True)) == [0, 1]
    assert ids(view_rows(rows, hide_confirmed=True)) == [0, 3, 2]
    assert ids(view_rows(rows, hide_benign=True, hide_confirmed=True)) == [0]


def test_sort_by_any_column(rows: pl.DataFrame) -> None:
    assert ids(view_rows(rows, sort_by="bytes", descending=False)) == [4, 2, 1, 0, 3]
    assert ids(view_rows(rows, sort_by="dst", descending=True))[0] == 1
    with pytest.raises(FilterError, match="unknown column"):
        view_rows(rows, sort_by="nope")


@pytest.mark.parametrize("descending", [True, False])
def test_unscored_flows_sort_last_by_probability(rows: pl.DataFrame, descending: bool) -> None:
    scored = rows.with_columns(
        pl.Series("p_mining", [0.97, 0.0, 0.01, 0.20, 0.0]),
        pl.Series("window", [0, None, 0, 1, 3], dtype=pl.Int32),
    )
    order = ids(view_rows(scored, sort_by="p_mining", descending=descending))
    assert order == ([0, 3, 2, 4, 1] if descending else [4, 2, 3, 0, 1])


def test_rowfilter_never_imports_textual() -> None:
    import subprocess
    import sys

    code = "import sys, minerscope.rowfilter as r; r.parse_filter('p>1'); print('textual' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
