"""Test helper: ask tshark for conversations and SNIs, to compare with the assembler.

tshark's ``conv,tcp``/``conv,udp`` tables have no idle timeout, so the comparison uses
a very long one and sums our flows per address/port pair (a new SYN on a closed pair
is a second flow for us and may be the same conversation for tshark).
"""

from __future__ import annotations

import re
import shutil
import subprocess
from collections import Counter
from pathlib import Path

import pytest

from minerscope.flows.records import FlowTable

_LINE = re.compile(r"^(\S+)\s+<->\s+(\S+)\s+(\d+)\s+\S+\s+\S+\s+(\d+)\s+\S+\s+\S+\s+(\d+)\s")


def tshark() -> str:
    path = shutil.which("tshark")
    if path is None:
        pytest.skip("tshark is not installed")
    return path


def _endpoint(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    return host.strip("[]"), int(port)


Conversations = dict[tuple[str, frozenset[tuple[str, int]]], int]


def tshark_report(pcap: Path) -> tuple[Conversations, set[str]]:
    """One tshark run: conversations (``-z conv,tcp -z conv,udp``) and the SNIs of TCP ClientHellos."""
    out = subprocess.run(
        [
            tshark(),
            "-n",
            "-r",
            str(pcap),
            "-Y",
            "tls.handshake.type == 1 && tcp",
            "-T",
            "fields",
            "-e",
            "tls.handshake.extensions_server_name",
            "-z",
            "conv,tcp",
            "-z",
            "conv,udp",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    head, sep, stats = out.partition("=" * 80)
    snis = {line.strip() for line in head.splitlines() if line.strip()}
    return _parse_conversations(sep + stats), snis


def tshark_conversations(pcap: Path) -> Conversations:
    """(tcp|udp, {endpoint, endpoint}) -> total frames, from ``tshark -q -z conv,tcp -z conv,udp``."""
    out = subprocess.run(
        [tshark(), "-n", "-r", str(pcap), "-q", "-z", "conv,tcp", "-z", "conv,udp"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return _parse_conversations(out)


def _parse_conversations(out: str) -> Conversations:
    convs: Counter[tuple[str, frozenset[tuple[str, int]]]] = Counter()
    proto = ""
    for line in out.splitlines():
        if line.startswith("TCP Conversations"):
            proto = "tcp"
        elif line.startswith("UDP Conversations"):
            proto = "udp"
        m = _LINE.match(line)
        if m and proto:
            convs[(proto, frozenset((_endpoint(m.group(1)), _endpoint(m.group(2)))))] += int(m.group(5))
    return dict(convs)


def our_conversations(table: FlowTable) -> Conversations:
    """The same shape from a flow table (TCP and UDP flows only, summed per address/port pair)."""
    convs: Counter[tuple[str, frozenset[tuple[str, int]]]] = Counter()
    for row in table.summary.select("proto", "src", "sport", "dst", "dport", "packets").iter_rows():
        proto, src, sport, dst, dport, packets = row
        if proto in (6, 17):
            convs[("tcp" if proto == 6 else "udp", frozenset(((src, sport), (dst, dport))))] += packets
    return dict(convs)


def tshark_snis(pcap: Path, tcp_only: bool = False) -> list[str]:
    """Every ClientHello's server name, in capture order (empty string when absent)."""
    flt = "tls.handshake.type == 1" + (" && tcp" if tcp_only else "")
    out = subprocess.run(
        [
            tshark(),
            "-n",
            "-r",
            str(pcap),
            "-Y",
            flt,
            "-T",
            "fields",
            "-e",
            "tls.handshake.extensions_server_name",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return [line.strip() for line in out.splitlines()]


def tshark_socks_targets(pcap: Path) -> dict[int, tuple[str, int]]:
    """Per SOCKS client port, the target of its CONNECT as Wireshark's SOCKS dissector reads
    it (it decodes port 1080): the first name or address the client sent, and the port."""
    fields = ["tcp.srcport", "tcp.dstport", "socks.remote_name", "socks.v4a_dns_name"]
    fields += ["socks.dst", "socks.dstV6", "socks.dstport"]
    out = subprocess.run(
        [tshark(), "-n", "-r", str(pcap), "-Y", "socks.command == 1", "-T", "fields"]
        + [arg for f in fields for arg in ("-e", f)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    hosts: dict[int, str] = {}
    ports: dict[int, int] = {}
    for line in out.splitlines():
        sport, dport, name, name4a, v4, v6, port = (line.split("\t") + [""] * 7)[:7]
        client = int(sport) if int(dport) == 1080 else int(dport)
        if int(dport) == 1080 and (name or name4a or v4 or v6):
            hosts.setdefault(client, name or name4a or v4 or v6)
        if port:
            ports.setdefault(client, int(port))
    return {client: (host, ports[client]) for client, host in hosts.items() if client in ports}
