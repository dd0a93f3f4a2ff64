"""Frames from the network simulator decode as real Ethernet/IP/TCP/UDP with exact lengths."""

from __future__ import annotations

import random

from scapy.layers.inet import IP, TCP, UDP
from scapy.layers.inet6 import IPv6
from scapy.layers.l2 import Dot1Q, Ether

from minerscope.lab.netsim import NetProfile, TcpFlow, UdpFlow


def test_tcp_flow_segments_acks_and_closes() -> None:
    net = NetProfile(mss=1000, timestamps=True, loss=0.0, jitter=0.0001)
    flow = TcpFlow(random.Random(1), net, ("127.10.0.1", 40000), ("127.20.0.1", 3333))
    t = flow.open(0.0)
    flow.send(t + 0.01, 0, b"a" * 100)
    flow.send(t + 1.0, 1, b"b" * 2500)
    flow.close(t + 5.0)
    pkts = [Ether(f) for _, f in flow.packets]
    flags = [str(p[TCP].flags) for p in pkts]
    assert flags[:3] == ["S", "SA", "A"]
    assert "F" in flags[-3] and "F" in flags[-2]
    data = [p for p in pkts if len(p[TCP].payload)]
    server_data = [p for p in data if p[TCP].sport == 3333]
    # MSS 1000 minus the 12-byte timestamps option -> 988-byte segments
    assert [len(p[TCP].payload) for p in server_data] == [988, 988, 524]
    for p in pkts:
        assert p[IP].len == len(bytes(p[IP]))
    # sequence numbers are contiguous and the client acknowledges all server bytes
    first = server_data[0][TCP].seq
    assert [p[TCP].seq - first for p in server_data] == [0, 988, 1976]
    client_acks = [p[TCP].ack for p in pkts if p[TCP].sport == 40000 and "F" not in str(p[TCP].flags)]
    assert (first + 2500) & 0xFFFFFFFF in client_acks  # the data, then +1 for the FIN
    assert max(client_acks) == (first + 2501) & 0xFFFFFFFF
    times = [ts for ts, _ in flow.packets]
    assert times == sorted(times) or len(times) == len(set(times))


def test_udp_ipv6_vlan() -> None:
    net = NetProfile(vlan=212)
    flow = UdpFlow(random.Random(2), net, ("fd00:10::1", 5000), ("fd00:20::1", 51820))
    flow.send(0.0, 0, b"\x01" * 148)
    flow.send(0.1, 1, b"\x02" * 92)
    p0, p1 = (Ether(f) for _, f in flow.packets)
    assert p0[Dot1Q].vlan == 212
    assert p0[IPv6].plen == 8 + 148 and p0[UDP].len == 8 + 148
    assert p1[UDP].sport == 51820
