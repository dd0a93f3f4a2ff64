"""Exports: CSV formula injection is neutralised; Zeek and Suricata files parse structurally."""

from __future__ import annotations

import csv
import io
import ipaddress
import json
import re
from pathlib import Path

import pytest

from minerscope.errors import StoreError
from minerscope.prefilter.blacklist import Blacklist, IndicatorError, read_indicators
from minerscope.store import Store, open_store
from minerscope.store.export import (
    POOL_CSV_COLUMNS,
    export_file,
    suricata_categories,
    write_blacklist,
    write_pools_csv,
    write_pools_json,
)

FORMULA = '=HYPERLINK("http://203.0.113.66/x","click")'


@pytest.fixture
def filled(store: Store) -> Store:
    store.confirm_pool(
        "203.0.113.5",
        3333,
        names=[FORMULA, "xmr.pool.example"],
        coin="+monero",
        dialect="monero",
        transport="tls",
        tls=True,
        evidence="-1+1",
        note="@SUM(A1:A9)",
    )
    store.confirm_pool("2001:db8::7", 14444, names=["eth.pool.example"], coin="ethereum")
    store.add_indicator_texts(["*.minexmr.example", "198.51.100.3", "btc.example.com"], source="public list")
    return store


def test_pools_csv_is_inert(filled: Store) -> None:
    out = io.StringIO()
    assert write_pools_csv(filled, out).written == 2
    rows = list(csv.DictReader(io.StringIO(out.getvalue())))
    assert tuple(rows[0]) == POOL_CSV_COLUMNS
    first = rows[0]
    assert first["host"] == "203.0.113.5" and first["port"] == "3333" and first["tls"] == "yes"
    for row in rows:
        for value in row.values():
            assert not value.startswith(("=", "+", "@")) or value.startswith("'")
            assert not (value.startswith("-") and not re.fullmatch(r"-?[\d.]+", value))
    assert first["names"].startswith("'=HYPERLINK")  # the formula is text now
    assert first["coin"] == "'+monero" and first["note"] == "'@SUM(A1:A9)" and first["evidence"] == "'-1+1"
    assert first["confirmation"] == "analyst" and first["first_seen"].endswith("Z")


def test_pools_json(filled: Store) -> None:
    out = io.StringIO()
    write_pools_json(filled, out)
    data = json.loads(out.getvalue())
    assert [d["host"] for d in data] == ["203.0.113.5", "2001:db8::7"]
    assert set(data[0]) == set(POOL_CSV_COLUMNS) and data[0]["tls"] is True
    assert FORMULA in data[0]["names"]


def _export(store: Store, fmt: str) -> str:
    out = io.StringIO()
    write_blacklist(store, out, fmt)
    return out.getvalue()


def test_plain_export_round_trips_through_import(filled: Store, tmp_path: Path) -> None:
    path = tmp_path / "bl.txt"
    path.write_text(_export(filled, "plain"))
    exported = {str(i) for i in read_indicators(path)}
    assert exported == {i["text"] for i in filled.list_indicators(active_only=True)}
    assert "[2001:db8::7]:14444" in exported and "*.minexmr.example" in exported


def test_zeek_intel_file_structure(filled: Store) -> None:
    lines = _export(filled, "zeek").splitlines()
    assert lines[0].startswith("#fields\t")
    fields = lines[0][len("#fields\t") :].split("\t")
    assert fields[:3] == ["indicator", "indicator_type", "meta.source"]
    rows = [dict(zip(fields, line.split("\t"), strict=True)) for line in lines[1:]]
    assert all(len(line.split("\t")) == len(fields) for line in lines[1:])
    by_type: dict[str, set[str]] = {}
    for row in rows:
        assert row["indicator_type"] in ("Intel::ADDR", "Intel::DOMAIN")
        assert all(cell and " " not in cell for cell in (row["indicator"], row["indicator_type"]))
        by_type.setdefault(row["indicator_type"], set()).add(row["indicator"])
    for addr in by_type["Intel::ADDR"]:
        ipaddress.ip_address(addr)
    assert by_type["Intel::ADDR"] == {"203.0.113.5", "2001:db8::7", "198.51.100.3"}
    assert by_type["Intel::DOMAIN"] == {"xmr.pool.example", "eth.pool.example", "btc.example.com"}
    assert {r["meta.source"] for r in rows} == {"pool:analyst", "public list"}


def test_suricata_iprep_structure(filled: Store) -> None:
    cat_id, short, _ = suricata_categories().strip().split(",", 2)
    assert cat_id.isdigit() and short.isalnum()
    for line in _export(filled, "suricata-iprep").splitlines():
        ip, category, score = line.split(",")
        ipaddress.ip_address(ip)
        assert category == cat_id and 1 <= int(score) <= 127


_RULE = re.compile(r"^alert (ip|tcp|dns|tls) (\S+) (\S+) -> (\S+) (\S+) \((.*)\)$")


def test_suricata_rules_structure(filled: Store) -> None:
    rules = [ln for ln in _export(filled, "suricata-rules").splitlines() if ln and not ln.startswith("#")]
    sids: list[int] = []
    buffers: dict[str, set[str]] = {"dns.query": set(), "tls.sni": set()}
    for rule in rules:
        m = _RULE.match(rule)
        assert m, rule
        options = [o.strip() for o in m.group(6).split(";") if o.strip()]
        keys = [o.split(":", 1)[0] for o in options]
        assert keys[0] == "msg" and "sid" in keys and "rev" in keys
        assert options[0].count('"') == 2
        sids.append(int(next(o for o in options if o.startswith("sid:"))[4:]))
        if m.group(1) in ("dns", "tls"):
            sticky = options[1]
            content = next(o for o in options if o.startswith("content:"))
            buffers[sticky].add(content[len('content:"') : -1])
        else:
            ipaddress.ip_address(m.group(4))
    assert len(sids) == len(set(sids))
    assert buffers["dns.query"] == buffers["tls.sni"]
    assert buffers["dns.query"] == {
        "xmr.pool.example",
        "eth.pool.example",
        "btc.example.com",
        ".minexmr.example",
    }


def test_hosts_and_csv_blacklist(filled: Store) -> None:
    hosts = [ln.split() for ln in _export(filled, "hosts").splitlines() if not ln.startswith("#")]
    assert all(parts[0] == "0.0.0.0" and len(parts) == 2 for parts in hosts)
    rows = list(csv.DictReader(io.StringIO(_export(filled, "csv"))))
    assert {r["kind"] for r in rows} == {"ip_port", "domain", "domain_suffix", "ip"}


def test_disabled_indicators_are_not_exported(filled: Store) -> None:
    ind = next(i for i in filled.list_indicators() if i["text"] == "198.51.100.3")
    filled.set_indicator_enabled(ind["id"], False)
    assert "198.51.100.3" not in _export(filled, "plain")
    out = io.StringIO()
    write_blacklist(filled, out, "plain", include_disabled=True)
    assert "198.51.100.3" in out.getvalue()


def test_unknown_format(filled: Store) -> None:
    with pytest.raises(ValueError):
        write_blacklist(filled, io.StringIO(), "snort")


def test_export_file_is_atomic_and_checked(filled: Store, tmp_path: Path) -> None:
    out = tmp_path / "pools.csv"
    assert export_file(filled, "pools", "csv", out).written == 2
    assert out.read_text().startswith("host,port,names")
    assert export_file(filled, "blacklist", "hosts", tmp_path / "bl.hosts").skipped > 0
    with pytest.raises(StoreError, match="cannot export"):
        export_file(filled, "pools", "zeek", tmp_path / "x")
    with pytest.raises(StoreError, match="cannot write"):
        export_file(filled, "pools", "csv", tmp_path / "missing-dir" / "p.csv")
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "bl.hosts",
        "case.sqlite",
        "case.sqlite-shm",
        "case.sqlite-wal",
        "pools.csv",
    ]


def _every_kind(store: Store) -> None:
    """Every indicator kind, on and off, with sources (one a formula) and an expiry."""
    store.add_indicator_texts(["198.51.100.3", "pool.example", "*.wild.example"], source="public list")
    store.add_indicator_texts(["1.2.3.4:3333", "[2001:db8::1]:3333", "2001:db8::9"], source="=feed+1")
    store.add_indicator_texts(["*.expiring.example"], source="analyst", expires_at=4_102_444_800.0)
    store.confirm_pool("203.0.113.5", 4444, names=["xmr.pool.example"])
    for text in ("2001:db8::9", "*.wild.example", "1.2.3.4:3333"):
        ind = next(i for i in store.list_indicators() if i["text"] == text)
        store.set_indicator_enabled(ind["id"], False)


def _indicators(store: Store) -> list[tuple[object, ...]]:
    return sorted(
        (r["kind"], r["value"], r["port"], r["enabled"], r["source"], r["expires_at"])
        for r in store.list_indicators()
    )


def test_own_csv_export_round_trips_through_import(store: Store, tmp_path: Path) -> None:
    _every_kind(store)
    path = tmp_path / "rt.csv"
    with path.open("w", newline="") as out:
        write_blacklist(store, out, "csv", include_disabled=True)
    with open_store(tmp_path / "fresh.sqlite") as fresh:
        assert fresh.import_indicators(path) == (9, 0)
        assert _indicators(fresh) == _indicators(store)
        # imported again: nothing new, and a switched-off line does not switch on its twin
        assert fresh.import_indicators(path) == (0, 9)
        assert _indicators(fresh) == _indicators(store)
        assert fresh.load_blacklist().match_ip("1.2.3.4", 3333) is None
    # stage 0 reading the export as a --blacklist file leaves the switched-off lines out
    assert Blacklist.from_files([path]).match_name("a.wild.example") is None
    assert Blacklist.from_files([path]).match_ip("2001:db8::1", 3333) is not None


def test_own_zeek_export_round_trips_through_import(store: Store, tmp_path: Path) -> None:
    _every_kind(store)
    path = tmp_path / "rt.zeek"
    path.write_text(_export(store, "zeek"))
    with open_store(tmp_path / "fresh.sqlite") as fresh:
        assert fresh.import_indicators(path) == (5, 0)
        expected = [
            (kind, value, port, 1, source, None)
            for kind, value, port, enabled, source, expires in _indicators(store)
            if enabled and kind != "domain_suffix"  # Zeek Intel has no suffixes; export writes active ones
        ]
        assert _indicators(fresh) == expected


def test_one_label_name_is_refused_with_its_line(store: Store, tmp_path: Path) -> None:
    feed = tmp_path / "feed.txt"
    feed.write_text("pool.example\njunk\n")
    with pytest.raises(IndicatorError, match=r"feed.txt:2: a one-label name"):
        store.import_indicators(feed)
    assert store.list_indicators() == []
    hosts = tmp_path / "hosts"
    hosts.write_text("::1 ip6-localhost ip6-loopback\n0.0.0.0 coinhive.example\n")
    assert store.import_indicators(hosts) == (1, 0)  # a hosts file's own one-label aliases are skipped
    assert store.add_indicator_texts(["*.example"]) == (1, 0)  # a one-label suffix is a suffix


def test_pools_json_keeps_the_stored_text(store: Store, tmp_path: Path) -> None:
    note = "first line\nnewline\ttab \x1b[31mred\u202e café"
    store.confirm_pool("203.0.113.5", 3333, coin="\t=1+1", note=note, evidence="a=b; \x9b2J")
    path = tmp_path / "pools.json"
    assert export_file(store, "pools", "json", path).written == 1
    raw = path.read_text(encoding="utf-8")
    (pool,) = json.loads(raw)
    assert (pool["note"], pool["coin"], pool["evidence"]) == (note, "\t=1+1", "a=b; \x9b2J")
    assert raw.isascii() and "\\\\x" not in raw  # escaped by the JSON encoder only, nothing doubled
    rows = list(csv.DictReader(io.StringIO(_export_pools_csv(store))))
    assert rows[0]["coin"] == "\\x09=1+1" and rows[0]["note"].startswith("first line\\x0a")  # CSV: inert


def _export_pools_csv(store: Store) -> str:
    out = io.StringIO()
    write_pools_csv(store, out)
    return out.getvalue()


def test_suricata_iprep_says_when_an_ip_port_is_widened_to_its_address(store: Store) -> None:
    """IP reputation has no port: an IP:port pool indicator was written for its whole
    address with no word, matching more than the indicator did."""
    store.add_indicator("ip_port", "2001:db8::1", port=4444)
    store.add_indicator("ip", "203.0.113.9")
    out = io.StringIO()
    count = write_blacklist(store, out, "suricata-iprep")
    assert {line.split(",")[0] for line in out.getvalue().splitlines()} == {"2001:db8::1", "203.0.113.9"}
    assert (count.written, count.widened) == (2, 1)
