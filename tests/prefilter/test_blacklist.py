"""Indicator parsing (plain, hosts, CSV files on disk) and blacklist matching."""

from __future__ import annotations

from pathlib import Path

import pytest

from minerscope.errors import InputError
from minerscope.prefilter.blacklist import (
    Blacklist,
    Indicator,
    IndicatorError,
    parse_indicator,
    read_indicators,
)


@pytest.mark.parametrize(
    ("text", "kind", "value", "port"),
    [
        ("1.2.3.4", "ip", "1.2.3.4", None),
        ("2001:DB8::1", "ip", "2001:db8::1", None),
        ("1.2.3.4:3333", "ip_port", "1.2.3.4", 3333),
        ("[2001:db8::1]:3333", "ip_port", "2001:db8::1", 3333),
        ("Pool.Example.COM.", "domain", "pool.example.com", None),
        ("*.example.com", "domain_suffix", "example.com", None),
        (".example.com", "domain_suffix", "example.com", None),
        ("stratum+tcp://xmr.pool.example:4444", "domain", "xmr.pool.example", None),
        ("stratum+ssl://10.0.0.1:9999", "ip_port", "10.0.0.1", 9999),
    ],
)
def test_parse_indicator_forms(text: str, kind: str, value: str, port: int | None) -> None:
    ind = parse_indicator(text)
    assert (ind.kind, ind.value, ind.port) == (kind, value, port)
    assert parse_indicator(str(ind)) == ind


@pytest.mark.parametrize("bad", ["", "1.2.3.4:99999", "not a domain", "exa mple.com", "-bad-.com", "[::1]:0"])
def test_bad_indicators_raise_input_errors(bad: str) -> None:
    with pytest.raises(IndicatorError):
        parse_indicator(bad)
    assert issubclass(IndicatorError, InputError)


def test_read_plain_hosts_and_csv_files(tmp_path: Path) -> None:
    plain = tmp_path / "pools.txt"
    plain.write_text("# pools\npool.example.com\n\n*.minexmr.example  # all of it\n198.51.100.7:3333\n")
    hosts = tmp_path / "hosts"
    hosts.write_text("127.0.0.1 localhost\n0.0.0.0 coinhive.example cnhv.example\n# c\n")
    csvf = tmp_path / "export.csv"
    csvf.write_text(
        'first_seen,Domain,notes\n2024-01-01,eth.pool.example,"a, b"\n2024-01-02,.nanopool.example,x\n'
    )
    headless = tmp_path / "headless.csv"
    headless.write_text("203.0.113.5,seen twice\n203.0.113.6:4444,x\n")
    assert [str(i) for i in read_indicators(plain)] == [
        "pool.example.com",
        "*.minexmr.example",
        "198.51.100.7:3333",
    ]
    assert [str(i) for i in read_indicators(hosts)] == ["coinhive.example", "cnhv.example"]
    assert [str(i) for i in read_indicators(csvf)] == ["eth.pool.example", "*.nanopool.example"]
    assert [str(i) for i in read_indicators(headless)] == ["203.0.113.5", "203.0.113.6:4444"]
    assert read_indicators(plain)[1].source == "pools.txt:4"


def test_bad_line_names_file_and_line(tmp_path: Path) -> None:
    f = tmp_path / "bad.txt"
    f.write_text("pool.example.com\nthis is wrong\n")
    with pytest.raises(IndicatorError, match=r"bad.txt:2"):
        read_indicators(f)
    binary = tmp_path / "bin.txt"
    binary.write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(IndicatorError, match="not UTF-8"):
        read_indicators(binary)
    with pytest.raises(IndicatorError, match="cannot read"):
        read_indicators(tmp_path / "missing.txt")


def test_matching_ip_port_and_names() -> None:
    bl = Blacklist(
        [
            parse_indicator("198.51.100.7"),
            parse_indicator("203.0.113.5:3333"),
            parse_indicator("pool.example.com"),
            parse_indicator("*.minexmr.example"),
        ]
    )
    assert len(bl) == 4
    assert bl.match_ip("198.51.100.7") is not None
    assert bl.match_ip("203.0.113.5", 3333) is not None
    assert bl.match_ip("203.0.113.5", 443) is None and bl.match_ip("203.0.113.5") is None
    assert bl.match_ip("not-an-ip") is None
    assert bl.match_name("POOL.example.com.") is not None
    assert bl.match_name("www.pool.example.com") is None  # exact only
    assert bl.match_name("eu1.minexmr.example") == Indicator("domain_suffix", "minexmr.example", None, "")
    assert bl.match_name("minexmr.example") is not None
    assert bl.match_name("notminexmr.example") is None
    hits = bl.match_flow("203.0.113.5", 3333, {"sni": ["eu1.minexmr.example"], "dns": ["x.example"]})
    assert [(h.field, h.value) for h in hits] == [
        ("dst_port", "203.0.113.5:3333"),
        ("sni", "eu1.minexmr.example"),
    ]


def test_from_files_merges(tmp_path: Path) -> None:
    a = tmp_path / "a.txt"
    a.write_text("1.1.1.1\n")
    b = tmp_path / "b.txt"
    b.write_text("*.x.example\n")
    bl = Blacklist.from_files([a, b])
    assert bl.match_ip("1.1.1.1") and bl.match_name("a.x.example")
