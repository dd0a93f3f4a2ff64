"""Flows with scores per model version, and the retroactive false-positive allowlist."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from minerscope.errors import StoreError
from minerscope.store import Store
from tests.store.conftest import flow_row, summary, write_pcap


@pytest.fixture
def capture_id(store: Store, tmp_path: Path) -> int:
    return store.add_capture(write_pcap(tmp_path / "cap.pcap"))


def _scored(n: int) -> list[dict[str, object]]:
    return [
        flow_row(
            i,
            "203.0.113.5" if i % 2 == 0 else "198.51.100.7",
            3333 if i % 2 == 0 else 443,
            sni=None if i % 2 == 0 else "cdn.example.net",
            p_mining=0.95 - i * 0.01,
            coin="monero",
            coin_probs=json.dumps({"monero": 0.9, "bitcoin": 0.1}),
        )
        for i in range(n)
    ]


def test_record_flows_with_scores_and_rerecord(store: Store, capture_id: int) -> None:
    df = summary(_scored(10), scored=True)
    mapping = store.record_flows(capture_id, df, model_version="xgb-1.0")
    assert sorted(mapping) == list(range(10))
    assert len(set(mapping.values())) == 10
    again = store.record_flows(capture_id, df, model_version="xgb-1.0")
    assert again == mapping
    assert store.scalar("SELECT count(*) FROM flows") == 10
    flows = store.list_flows(capture_id=capture_id)
    assert len(flows) == 10
    assert flows[0]["p_mining"] == pytest.approx(0.95) and flows[0]["model"] == "xgb-1.0"
    assert flows[0]["coin_probs"] == {"bitcoin": 0.1, "monero": 0.9}


def test_scores_kept_per_model_version(store: Store, capture_id: int) -> None:
    df = summary(_scored(2), scored=True)
    store.record_flows(capture_id, df, model_version="v1")
    plain = summary([flow_row(0, "203.0.113.5", 3333), flow_row(1, "198.51.100.7", 443)])
    store.record_flows(
        capture_id, plain, [{"flow_id": 0, "p_mining": 0.1, "coin": None, "coin_probs": {}}], "v2"
    )
    assert store.scalar("SELECT count(*) FROM flow_scores") == 3
    by_v1 = {f["flow_key"]: f["p_mining"] for f in store.list_flows(model="v1")}
    by_v2 = {f["flow_key"]: f["p_mining"] for f in store.list_flows(model="v2")}
    assert by_v1 == {0: pytest.approx(0.95), 1: pytest.approx(0.94)}
    assert by_v2[0] == pytest.approx(0.1) and by_v2[1] is None


def test_bad_summary_is_refused(store: Store, capture_id: int) -> None:
    with pytest.raises(StoreError, match="lacks column"):
        store.record_flows(capture_id, summary(_scored(1), scored=True).drop("dst"))
    with pytest.raises(StoreError, match="no capture"):
        store.record_flows(999, summary(_scored(1), scored=True))
    bad = summary([flow_row(0, "203.0.113.5", 3333, p_mining=0.5, coin_probs="{not json")], scored=True)
    with pytest.raises(StoreError, match="coin_probs"):
        store.record_flows(capture_id, bad)
    assert store.scalar("SELECT count(*) FROM flows") == 0  # the whole batch rolled back


def test_dismissal_applies_to_past_and_future_flows(store: Store, capture_id: int, tmp_path: Path) -> None:
    store.record_flows(capture_id, summary(_scored(6), scored=True), model_version="m")
    victim = next(f for f in store.list_flows() if f["dst"] == "198.51.100.7")
    store.dismiss_flow(victim["id"], reason="CDN")
    visible = store.list_flows()
    assert {f["dst"] for f in visible} == {"203.0.113.5"}  # retroactive: all 3 old CDN flows hidden
    assert sum(f["dismissed"] for f in store.list_flows(include_dismissed=True)) == 3
    # a capture loaded later: its CDN flows are hidden too
    later = store.add_capture(write_pcap(tmp_path / "later.pcap", payload=b"later"))
    store.record_flows(later, summary([flow_row(50, "198.51.100.7", 443, p_mining=0.99)], scored=True))
    assert all(f["dst"] != "198.51.100.7" for f in store.list_flows(capture_id=later))
    # undismiss brings everything back
    assert store.undismiss_endpoint("198.51.100.7", 443)
    assert len(store.list_flows()) == 7
    actions = [a["action"] for a in store.list_audit()]
    assert "dismiss" in actions and "undismiss" in actions


def test_dismiss_by_name_and_any_port(store: Store, capture_id: int) -> None:
    store.record_flows(capture_id, summary(_scored(4), scored=True))
    store.dismiss_endpoint("cdn.example.net", 0)
    assert {f["dst"] for f in store.list_flows()} == {"203.0.113.5"}
    assert store.is_dismissed("198.51.100.7", 443, names=["cdn.example.net"])
    assert not store.is_dismissed("198.51.100.7", 443)


def test_mark_dismissed_on_in_memory_rows(store: Store) -> None:
    rows = summary(_scored(4), scored=True)
    assert store.mark_dismissed(rows)["dismissed"].to_list() == [False] * 4
    store.dismiss_endpoint("198.51.100.7", 443)
    assert store.mark_dismissed(rows)["dismissed"].to_list() == [False, True, False, True]


def test_nan_score_is_no_score(store: Store, capture_id: int) -> None:
    rows = [
        flow_row(0, "203.0.113.5", 3333, p_mining=float("nan")),
        flow_row(1, "203.0.113.5", 3333, p_mining=0.5),
    ]
    store.record_flows(capture_id, summary(rows, scored=True), model_version="m")
    assert sorted((f["flow_key"], f["p_mining"]) for f in store.list_flows()) == [(0, None), (1, 0.5)]


def test_one_bad_coin_probs_cell_among_many_is_named_and_rolls_back(store: Store, capture_id: int) -> None:
    rows = _scored(50)
    rows[37]["coin_probs"] = '{"monero": 0.9'  # truncated
    with pytest.raises(StoreError, match="flow 37: coin_probs is not JSON"):
        store.record_flows(capture_id, summary(rows, scored=True))
    rows[37]["coin_probs"] = '{"monero": 0.9}, {"bitcoin": 0.1}'  # two values in one cell
    with pytest.raises(StoreError, match="coin_probs"):
        store.record_flows(capture_id, summary(rows, scored=True))
    assert store.scalar("SELECT count(*) FROM flows") == 0
    rows[37]["coin_probs"] = ""  # empty: stored as an empty object
    store.record_flows(capture_id, summary(rows, scored=True), model_version="m")
    stored = {f["flow_key"]: f["coin_probs"] for f in store.list_flows(model="m")}
    assert len(stored) == 50 and stored[37] == {} and stored[36] == {"bitcoin": 0.1, "monero": 0.9}


def test_a_flow_through_a_proxy_is_judged_by_the_tunnels_target(store: Store, capture_id: int) -> None:
    """Dismissing, confirming and marking go by the server a flow reaches: through a proxy,
    the tunnel's target. Dismissing one miner's flow must not whitelist the proxy that
    everyone behind it uses (and a confirmed pool marks flows that reached it through one)."""
    proxy = ("10.9.9.9", 1080)
    rows = [
        flow_row(0, *proxy, proxy_host="203.0.113.5", proxy_port=3333, sni="xmr.pool.example", p_mining=0.9),
        flow_row(1, *proxy, proxy_host="pool.example", proxy_port=443, p_mining=0.8),
        flow_row(2, *proxy, proxy_host="198.51.100.7", proxy_port=443, p_mining=0.7),
        flow_row(3, "198.51.100.7", 443, p_mining=0.6),  # the same server, reached directly
    ]
    frame = summary(rows, scored=True)
    store.record_flows(capture_id, frame, model_version="m")
    stored = {f["flow_key"]: f for f in store.list_flows()}
    assert (stored[1]["proxy_host"], stored[1]["proxy_port"]) == ("pool.example", 443)
    store.dismiss_flow(stored[2]["id"], reason="CDN behind the proxy")
    assert [(a["host"], a["port"]) for a in store.list_allowlist()] == [("198.51.100.7", 443)]
    assert sorted(f["flow_key"] for f in store.list_flows()) == [0, 1]
    assert store.mark_dismissed(frame)["dismissed"].to_list() == [False, False, True, True]
    # a confirmed pool joins the flows that reached it, through the proxy or not, and takes
    # the names they used (the SNI inside the tunnel; the DNS answers there name the proxy)
    store.conn.execute("UPDATE flows SET dns_names = 'proxy.corp.example' WHERE dst = '10.9.9.9'")
    store.confirm_pool("203.0.113.5", 3333)
    pooled = {f["flow_key"]: f["pool_id"] is not None for f in store.list_flows()}
    assert pooled == {0: True, 1: False}
    (pool,) = store.list_pools()
    assert pool["names"] == ["xmr.pool.example"] and pool["first_seen"] == rows[0]["first_seen"]
    store.confirm_pool("pool.example", 443)  # a name target, probed by hand
    assert store.list_pools()[1]["first_seen"] == rows[1]["first_seen"]
    # dismissing the proxy's own address does not hide what went through it
    store.dismiss_endpoint(*proxy)
    assert sorted(f["flow_key"] for f in store.list_flows()) == [0, 1]
    assert store.mark_dismissed(frame)["dismissed"].to_list() == [False, False, True, True]
