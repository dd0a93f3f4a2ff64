"""Pools, probes and the blacklist: confirmation feeds stage 0 in the same transaction."""

from __future__ import annotations

import io
import json
import re
from pathlib import Path

import pytest

from minerscope.errors import InputError, StoreError
from minerscope.prefilter.blacklist import Blacklist
from minerscope.probe.verdict import DialectResult, Evidence, Outcome, ProbeAttempt, Transport, Verdict
from minerscope.store import Store, open_store
from minerscope.store.blacklist import load_blacklist
from minerscope.store.export import write_pools_json
from tests.store.conftest import flow_row, summary, write_pcap


def _verdict(host: str, port: int, pool: bool = True) -> Verdict:
    result = (
        DialectResult(
            "monero",
            Outcome.SUCCESS,
            0.95,
            (Evidence("job_id", "abc"), Evidence("coin", "monero")),
        )
        if pool
        else DialectResult.none("monero", "silence")
    )
    attempts = [
        ProbeAttempt(
            "bitcoin", Transport.TCP, b'{"id":1,"method":"mining.subscribe"}\n', b"", 0.01, None, "refused"
        ),
        ProbeAttempt(
            "monero",
            Transport.TLS,
            b'{"id":1,"method":"login"}\n',
            b'{"id":1,"result":{"job":{"job_id":"abc"}}}\x1b[31m\n',
            0.02,
            result,
        ),
    ]
    target = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    return Verdict.from_attempts(target, host, port, attempts)


def test_pool_verdict_confirms_and_blacklists(store: Store, tmp_path: Path) -> None:
    cap = store.add_capture(write_pcap(tmp_path / "c.pcap"))
    store.record_flows(cap, summary([flow_row(0, "203.0.113.5", 3333, sni="xmr.pool.example")]))
    probe_id = store.record_probe(_verdict("203.0.113.5", 3333))
    probe = store.list_probes("203.0.113.5", 3333)[0]
    assert probe["id"] == probe_id and probe["is_pool"] and probe["dialect"] == "monero"
    assert probe["transport"] == "tls" and probe["confidence"] == pytest.approx(0.95)
    assert "\\x1b" in probe["reply"] and "\x1b" not in probe["reply"]  # made inert by to_json
    assert probe["request"].startswith('{"id":1,"method":"login"}')
    pool = store.get_pool("203.0.113.5", 3333)
    assert pool is not None and pool["confirmed_by"] == "probe" and pool["probe_id"] == probe_id
    assert pool["coin"] == "monero" and pool["tls"] and pool["names"] == ["xmr.pool.example"]
    texts = {i["text"] for i in store.list_indicators(active_only=True)}
    assert texts == {"203.0.113.5:3333", "xmr.pool.example"}
    bl = store.load_blacklist()
    assert isinstance(bl, Blacklist)
    assert bl.match_ip("203.0.113.5", 3333) is not None and bl.match_ip("203.0.113.5", 80) is None
    assert bl.match_name("XMR.pool.example.") is not None


def test_non_pool_verdict_is_only_recorded(store: Store) -> None:
    store.record_probe(_verdict("198.51.100.1", 443, pool=False).to_json())
    assert store.list_pools() == [] and store.list_indicators() == []
    assert store.list_probes()[0]["outcome"] == "none"


def test_probe_and_pool_are_one_transaction(store: Store) -> None:
    verdict = _verdict("203.0.113.5", 3333).to_json()
    with pytest.raises(StoreError):
        store.record_probe(verdict, host="203.0.113.5", port=0)  # the pool part fails
    assert store.list_probes() == [] and store.list_pools() == []


def test_probe_json_target_parsing(store: Store) -> None:
    store.record_probe(_verdict("2001:db8::5", 3333).to_json())
    assert store.get_pool("2001:db8::5", 3333) is not None
    with pytest.raises(StoreError):
        store.record_probe({"target": "no-port", "is_pool": False})
    with pytest.raises(StoreError):
        store.record_probe(42)


def test_analyst_confirmation_merges_and_lifts_dismissal(store: Store) -> None:
    store.dismiss_endpoint("203.0.113.5", 3333)
    first = store.confirm_pool(
        "203.0.113.5", 3333, names=["a.pool.example"], coin="monero", note="seen twice"
    )
    second = store.confirm_pool("203.0.113.5", 3333, names=["b.pool.example", "bad name!"], dialect="stratum")
    assert first == second
    pool = store.get_pool("203.0.113.5", 3333)
    assert pool is not None
    assert pool["names"] == ["a.pool.example", "b.pool.example", "bad name!"]
    assert pool["coin"] == "monero" and pool["dialect"] == "stratum" and pool["note"] == "seen twice"
    assert store.list_allowlist() == []
    assert ("203.0.113.5", 3333, "confirmed") in store.endpoint_status()
    texts = {i["text"] for i in store.list_indicators()}
    assert texts == {"203.0.113.5:3333", "a.pool.example", "b.pool.example"}  # "bad name!" is no indicator
    assert [a["action"] for a in store.list_audit()].count("confirm") == 2


def test_dismissing_a_confirmed_pool_switches_its_indicators_off(store: Store) -> None:
    store.confirm_pool("pool.example", 443, tls=True)
    assert store.load_blacklist().match_name("pool.example") is not None
    store.dismiss_endpoint("pool.example", 443, reason="it is our own node")
    assert store.load_blacklist().match_name("pool.example") is None
    assert ("pool.example", 443, "dismissed") in store.endpoint_status()
    store.confirm_pool("pool.example", 443)
    assert store.load_blacklist().match_name("pool.example") is not None
    history = store.endpoint_history("pool.example", 443)
    assert [h.split(" ", 2)[2] for h in history] == [
        "confirm by tester",
        "dismiss by tester",
        "confirm by tester",
    ]


def test_history_of_an_imported_file_with_impossible_times(store: Store) -> None:
    """A colleague's case file may hold any value in a time column: the history still
    comes out, in order where the times are times, the rest last and marked."""
    store.confirm_pool("pool.example", 443, tls=True)
    store.dismiss_endpoint("pool.example", 443, reason="ours")
    store.confirm_pool("pool.example", 443)
    ids = [r["id"] for r in store.rows("SELECT id FROM audit WHERE target_kind = 'endpoint' ORDER BY id")]
    with store.conn:
        store.conn.execute("UPDATE audit SET at = 'later' WHERE id = ?", (ids[0],))
        store.conn.execute("UPDATE audit SET at = 1e300 WHERE id = ?", (ids[1],))
    history = store.endpoint_history("pool.example", 443)
    assert len(history) == 3
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\dZ confirm by tester", history[0])
    assert history[1:] == ["1e+300 (not a time) dismiss by tester", "later (not a time) confirm by tester"]


def test_confirm_validation(store: Store) -> None:
    with pytest.raises(StoreError):
        store.confirm_pool("203.0.113.5", 3333, how="rumour")
    with pytest.raises(StoreError):
        store.confirm_pool("", 3333)


def test_blacklist_imports_expiry_and_toggle(store: Store, tmp_path: Path) -> None:
    plain = tmp_path / "list.txt"
    plain.write_text("# coin miner pools\n203.0.113.7\n*.minexmr.example\npool.example:3333\n")
    hosts = tmp_path / "hosts"
    hosts.write_text("0.0.0.0 xmr.example.org  eth.example.org\n127.0.0.1 localhost\n")
    csv_file = tmp_path / "list.csv"
    csv_file.write_text("domain,comment\nbtc.example.com,public list\n203.0.113.7,dup\n")
    assert store.import_indicators(plain) == (3, 0)
    assert store.import_indicators(hosts) == (2, 0)
    assert store.import_indicators(csv_file, source="public-list") == (1, 1)
    kinds = {i["text"]: (i["kind"], i["source"]) for i in store.list_indicators()}
    assert kinds["*.minexmr.example"] == ("domain_suffix", "file:list.txt")
    assert kinds["btc.example.com"] == ("domain", "public-list")
    bl = load_blacklist(store)
    assert bl.match_name("a.b.minexmr.example") is not None
    ind = next(i for i in store.list_indicators() if i["text"] == "203.0.113.7")
    store.set_indicator_enabled(ind["id"], False)
    assert store.load_blacklist().match_ip("203.0.113.7") is None
    store.add_indicator("domain", "soon.gone.example", expires_at=1000.0)
    assert store.load_blacklist(now=999.0).match_name("soon.gone.example") is not None
    assert store.load_blacklist().match_name("soon.gone.example") is None


def test_bad_indicator_file_adds_nothing(store: Store, tmp_path: Path) -> None:
    bad = tmp_path / "bad.txt"
    bad.write_text("203.0.113.7\nnot an indicator at all\n")
    with pytest.raises(InputError, match="bad.txt:2"):
        store.import_indicators(bad)
    assert store.list_indicators() == []


def test_load_blacklist_from_path(db_path: Path, store: Store) -> None:
    store.add_indicator_texts(["198.51.100.9:4444"])
    assert load_blacklist(db_path).match_ip("198.51.100.9", 4444) is not None


def test_dismissing_a_confirmed_pool_retracts_it_and_undismiss_restores_it(
    store: Store, db_path: Path
) -> None:
    store.confirm_pool("203.0.113.5", 3333, names=["a.pool.example", "b.pool.example"], coin="monero")
    store.confirm_pool("203.0.113.5", 4444)  # another port of the host, not dismissed below
    by_hand = next(i["id"] for i in store.list_indicators() if i["value"] == "b.pool.example")
    store.set_indicator_enabled(by_hand, False)  # the analyst's own choice, before the dismissal
    store.dismiss_endpoint("203.0.113.5", 3333, reason="our own node")
    with open_store(db_path, actor="reader") as other:  # what the file says, on a new connection
        assert [(p["host"], p["port"]) for p in other.list_pools()] == [("203.0.113.5", 4444)]
        assert other.get_pool("203.0.113.5", 3333)["dismissed"] is True  # type: ignore[index]
        assert other.list_cases()[0]["pools"] == 1
        assert {i["text"] for i in other.list_indicators(active_only=True)} == {"203.0.113.5:4444"}
        out = io.StringIO()
        write_pools_json(other, out)
        assert [p["port"] for p in json.loads(out.getvalue())] == [4444]
        dismiss = other.list_audit()[0]
        assert dismiss["action"] == "dismiss" and json.loads(dismiss["detail"])["pools_retracted"] == [1]
    assert store.undismiss_endpoint("203.0.113.5", 3333)
    assert [(p["host"], p["port"]) for p in store.list_pools()] == [
        ("203.0.113.5", 3333),
        ("203.0.113.5", 4444),
    ]
    active = {i["text"] for i in store.list_indicators(active_only=True)}
    assert active == {"203.0.113.5:3333", "a.pool.example", "203.0.113.5:4444"}  # not b: off by hand
    undismiss = store.list_audit()[0]
    assert undismiss["action"] == "undismiss" and json.loads(undismiss["detail"])["pools_restored"] == [1]


def test_overlapping_dismissals_keep_the_pool_retracted_until_the_last_is_lifted(store: Store) -> None:
    store.confirm_pool("203.0.113.5", 3333)
    store.dismiss_endpoint("203.0.113.5", 3333)
    store.dismiss_endpoint("203.0.113.5", 0)  # every port of the host
    assert store.undismiss_endpoint("203.0.113.5", 3333)
    assert store.list_pools() == [] and store.list_indicators(active_only=True) == []
    assert store.undismiss_endpoint("203.0.113.5", 0)
    assert [p["port"] for p in store.list_pools()] == [3333]
    assert [i["text"] for i in store.list_indicators(active_only=True)] == ["203.0.113.5:3333"]
