"""The workstation's state: chunks joined, coin columns unpacked, annotations as columns."""

from __future__ import annotations

import polars as pl

from minerscope.rowfilter import parse_filter, view_rows
from minerscope.tui.session import Session, badges, coin_probs, server_name
from tests.tui.conftest import _slice, build_table


def loaded(n: int = 30, chunks: int = 3) -> Session:
    rows, table = build_table(n)
    session = Session()
    step = n // chunks
    for start in range(0, n, step):
        session.add_chunk(rows.slice(start, step), _slice(table, start, start + step))
    return session


def test_chunks_get_session_uids_and_arrays() -> None:
    session = loaded()
    assert session.count == 30
    assert session.rows["uid"].to_list() == list(range(30))
    located = session.table_for(25)
    assert located is not None
    table, local = located
    assert local == 5
    assert table.summary["src"][local] == session.row(25)["src"]


def test_coin_probabilities_become_sortable_columns() -> None:
    session = loaded()
    assert session.coins == ["btc", "etc", "eth", "ltc", "xmr"]
    top = session.view(sort_by="pc_xmr").row(0, named=True)
    assert top["coin"] == "xmr" and top["pc_xmr"] == 0.8


def test_annotations_are_filterable_columns() -> None:
    session = loaded()
    row = session.row(5)
    session.set_analyst(row["dst"], row["dport"], "confirmed")
    session.set_probe(row["dst"], row["dport"], "pool")
    hits = session.view(parse_filter("status=confirmed probe=pool"))
    assert hits["uid"].to_list() == [5]
    assert 5 not in session.view(hide_confirmed=True)["uid"].to_list()


def test_empty_session_has_a_view() -> None:
    assert Session().view().height == 0


def test_helpers_on_hostile_or_odd_values() -> None:
    assert badges('[{"kind": "blacklist"}, {"kind": "stratum"}]') == ["BL", "STRATUM"]
    assert badges("not json") == ["?"]
    assert badges("") == []
    assert coin_probs('{"xmr": "0.5", "bad": "x"}') == {"xmr": 0.5}
    assert coin_probs("[1]") == {}
    assert server_name({"sni": "", "dns_names": "a.test,b.test"}) == "a.test"
    assert server_name({}) == ""


def test_rows_keep_columns_across_chunks_with_different_coins() -> None:
    session = Session()
    rows, table = build_table(10)
    first = rows.slice(0, 5).with_columns(pl.lit('{"xmr": 0.9}').alias("coin_probs"))
    session.add_chunk(first, _slice(table, 0, 5))
    second = rows.slice(5, 5).with_columns(pl.lit('{"btc": 0.7}').alias("coin_probs"))
    session.add_chunk(second, _slice(table, 5, 10))
    frame = session.rows
    assert frame.height == 10
    assert frame["pc_xmr"].to_list()[:5] == [0.9] * 5
    assert frame["pc_btc"].to_list()[5:] == [0.7] * 5


def test_host_wide_dismissal_applies_to_every_port() -> None:
    session = loaded()
    row = session.row(0)
    session.replace_analyst([(row["dst"], 0, "dismissed")])
    same_host = session.rows.filter(pl.col("dst") == row["dst"])
    assert set(same_host["analyst_status"].to_list()) == {"dismissed"}
    others = session.rows.filter(pl.col("dst") != row["dst"])
    assert set(others["analyst_status"].to_list()) == {""}


def test_view_order_is_the_full_frame_view() -> None:
    """The uids computed on the few needed columns are the rows (and order) of the whole-frame view."""
    session = loaded(300, chunks=4)
    session.set_analyst("127.0.3.4", 0, "confirmed")  # port 0: every port of the host
    cases = [
        {},
        {"flt": parse_filter("p>0.5 port=3333")},
        {"flt": parse_filter("mine")},  # a bare word: searched in every text column
        {"flt": parse_filter("host~127.0.3 status=confirmed")},
        {"sort_by": "bytes", "descending": False},
        {"sort_by": "pc_xmr", "hide_benign": True},
        {"flt": parse_filter("svc1"), "sort_by": "src", "hide_confirmed": True},
    ]
    for kwargs in cases:
        expected = view_rows(session.rows, **kwargs)["uid"].to_list()  # type: ignore[arg-type]
        assert session.view_order(**kwargs).to_list() == expected, kwargs  # type: ignore[arg-type]
        assert expected, kwargs
    assert session.row(299)["uid"] == 299


def test_unscored_flows_sort_last_by_probability_in_the_narrow_view() -> None:
    """Sorting by p reads ``window`` too: the narrow frame must carry it."""
    rows, table = build_table(40)
    unscored = pl.Series([i % 7 == 0 for i in range(40)])
    rows = rows.with_columns(
        pl.when(unscored).then(None).otherwise(pl.col("window")).alias("window"),
        pl.when(unscored).then(0.0).otherwise(pl.col("p_mining")).alias("p_mining"),
    )
    session = Session()
    session.add_chunk(rows, table)
    for descending in (True, False):
        order = session.view_order(sort_by="p_mining", descending=descending).to_list()
        assert order == view_rows(session.rows, sort_by="p_mining", descending=descending)["uid"].to_list()
        assert order[-6:] == [0, 7, 14, 21, 28, 35], order
