"""The bundled demo capture: reproducible by one command, loopback-only, with what the demo needs."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from pathlib import Path

import pytest
from click.testing import CliRunner
from scapy.layers.dns import DNS

from minerscope import resources
from minerscope.capture.packets import format_ip
from minerscope.capture.pcap import read_all
from minerscope.cli import main
from minerscope.lab.labels import read_labels
from minerscope.lab.sample import BLACKLISTED_POOL, CAPTURE_NAME, LABELS_NAME

SAMPLE = resources.data_dir("sample_pcaps")
LOOPBACK = ipaddress.ip_network("127.0.0.0/8")


@dataclass
class Pkt:
    src: str
    dst: str
    sport: int
    dport: int
    proto: int
    payload: bytes


@pytest.fixture(scope="module")
def packets() -> list[Pkt]:
    """The sample read back with the project reader (scapy would take ~25 s here)."""
    batch, report = read_all(SAMPLE / CAPTURE_NAME)
    assert report.complete and report.non_ip_packets == 0
    out = []
    for i, row in enumerate(batch.packets):
        out.append(
            Pkt(
                format_ip(int(row["src_hi"]), int(row["src_lo"])),
                format_ip(int(row["dst_hi"]), int(row["dst_lo"])),
                int(row["sport"]),
                int(row["dport"]),
                int(row["proto"]),
                batch.payload(i),
            )
        )
    return out


def test_sample_command_reproduces_committed_files(tmp_path: Path) -> None:
    res = CliRunner().invoke(main, ["lab", "sample", "--out", str(tmp_path)])
    assert res.exit_code == 0, res.output
    for name in (CAPTURE_NAME, LABELS_NAME, resources.SAMPLE_BLACKLIST_NAME):
        assert (tmp_path / name).read_bytes() == (SAMPLE / name).read_bytes(), (
            f"{name} differs: regenerate with `minerscope lab sample --out sample_pcaps`"
        )


def test_every_address_is_loopback(packets: list[Pkt]) -> None:
    rows = read_labels(SAMPLE / LABELS_NAME)
    for r in rows:
        assert ipaddress.ip_address(r.client_ip) in LOOPBACK and ipaddress.ip_address(r.server_ip) in LOOPBACK
    for p in packets:
        assert ipaddress.ip_address(p.src) in LOOPBACK and ipaddress.ip_address(p.dst) in LOOPBACK
        if p.sport == 53:
            dns = DNS(p.payload)
            for i in range(dns.ancount):
                assert ipaddress.ip_address(dns.an[i].rdata) in LOOPBACK


def test_sample_holds_the_demo_cases(packets: list[Pkt]) -> None:
    rows = read_labels(SAMPLE / LABELS_NAME)
    assert 200 <= len(rows) <= 600
    assert (SAMPLE / CAPTURE_NAME).stat().st_size < 6_000_000
    miners = [r for r in rows if r.label == "miner"]
    assert {r.coin for r in miners if r.transport.startswith("tls")} >= {"xmr", "btc", "etc", "zec"}
    plain = [r for r in miners if r.transport == "tcp"]
    assert len(plain) == 1
    assert any(r.scenario == "browser" and r.transport.startswith("wss") for r in miners)
    listed = [r for r in miners if r.server_name == BLACKLISTED_POOL]
    assert listed and BLACKLISTED_POOL in (SAMPLE / resources.SAMPLE_BLACKLIST_NAME).read_text().split()
    # the plaintext miner really speaks Stratum; the blacklisted pool's name is in a ClientHello (SNI)
    stratum = b"".join(
        p.payload for p in packets if p.dport == plain[0].server_port and p.dst == plain[0].server_ip
    )
    assert b"mining.subscribe" in stratum and b"mining.submit" in stratum
    hellos = [p.payload for p in packets if p.proto == 6 and p.payload[:1] == b"\x16"]
    assert any(BLACKLISTED_POOL.encode() in h for h in hellos)
    # every pool name is resolved by a real DNS answer to the address the miner then contacts
    answers: dict[str, set[str]] = {}
    for p in packets:
        if p.sport == 53:
            dns = DNS(p.payload)
            name = dns.qd.qname.decode().rstrip(".")
            answers.setdefault(name, set()).update(str(dns.an[i].rdata) for i in range(dns.ancount))
    for r in miners:
        if r.server_name:
            assert r.server_ip in answers.get(r.server_name, set())
