"""Sessions as application-message scripts, and their realisation on the simulated wire.

A session generator (mining or benign) only decides *what* each side says and *when*
(``Conn.msgs``: sender time, direction, application bytes). :func:`realize_tcp` turns a
script into packets: TCP handshake, a real TLS handshake when the transport asks for it,
each message through ``SSLObject.write`` (so record framing is genuine), WebSocket framing
for ws/wss, segmentation, ACKs, loss and close. Keeping the two apart means every
dialect gets every transport for free, and transports are tested once.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from minerscope.lab import ws
from minerscope.lab.netsim import NetProfile, TcpFlow, UdpFlow
from minerscope.lab.tls import TLS12, TLS12_CIPHERS, TLS13, CertStore, TlsSession

TRANSPORTS = ("tcp", "tls1.2", "tls1.3", "ws", "wss1.2", "wss1.3", "http", "udp")


@dataclass
class Conn:
    """One connection's script. ``msgs`` holds ``(sender_time, direction, payload)``;
    direction 0 = client to server, 1 = server to client."""

    start: float
    msgs: list[tuple[float, int, bytes]] = field(default_factory=list)
    end: float | None = None
    closer: int = 0
    rst: bool = False
    ws_opcodes: dict[int, int] = field(default_factory=dict)  # msg index -> WS opcode (default text)
    raw_ws: frozenset[int] = frozenset()  # msg indexes sent without WS framing (the HTTP upgrade)


@dataclass
class FlowLabel:
    """What the labels CSV says about one flow (filled in by the session generator)."""

    label: str
    coin: str
    dialect: str
    transport: str
    scenario: str
    session_id: str
    server_name: str = ""
    miner_class: str = ""


@dataclass
class Realized:
    flow: TcpFlow | UdpFlow
    meta: FlowLabel
    start: float
    end: float


def is_tls(transport: str) -> bool:
    return transport.startswith("tls") or transport.startswith("wss")


def tls_version(transport: str) -> str:
    return TLS12 if transport.endswith("1.2") else TLS13


def realize_tcp(
    conn: Conn,
    transport: str,
    *,
    rng: random.Random,
    net: NetProfile,
    client: tuple[str, int],
    server: tuple[str, int],
    meta: FlowLabel,
    certs: CertStore | None = None,
    sni: str = "",
    alpn: tuple[str, ...] = (),
) -> Realized:
    """Play ``conn`` over TCP (optionally TLS and/or WebSocket) and return the packets."""
    flow = TcpFlow(rng, net, client, server)
    t = flow.open(conn.start)
    owd = net.owd
    tls: TlsSession | None = None
    if is_tls(transport):
        if certs is None:
            raise ValueError("TLS transport needs a CertStore")
        version = tls_version(transport)
        cipher = rng.choice(TLS12_CIPHERS) if version == TLS12 else ""
        tls = TlsSession(
            certs,
            rng,
            sni or server[0],
            version=version,
            sni=bool(sni),
            alpn=alpn,
            cipher=cipher,
            chain=rng.random() < 0.5,
        )
        side_t = [t, t]
        for direction, data in tls.handshake():
            other = 1 - direction
            send_at = max(side_t[direction], side_t[other]) + rng.uniform(0.0002, 0.003)
            recv = flow.send(send_at, direction, data)
            side_t[direction] = send_at
            side_t[other] = recv
        t = max(side_t)
    websocket = transport.startswith("ws")
    last = t
    side_last = [t, t]
    for index, (when, direction, payload) in enumerate(sorted(conn.msgs, key=lambda m: m[0])):
        if conn.end is not None and when > conn.end:
            break
        when = max(when, side_last[direction], t if direction == 0 else t + owd)
        data = payload
        if websocket and index not in conn.raw_ws:
            opcode = conn.ws_opcodes.get(index, ws.OP_TEXT)
            data = ws.frame(payload, masked=direction == 0, rng=rng, opcode=opcode)
        if tls is not None:
            data = tls.wrap(direction, data)
        flow.send(when, direction, data)
        side_last[direction] = when
        last = max(last, when)
    end = conn.end if conn.end is not None else last + rng.uniform(0.05, 2.0)
    end = max(end, last + 0.001)
    if tls is not None and not conn.rst and rng.random() < 0.7:
        flow.send(end, conn.closer, tls.close_notify(conn.closer))
        end += 0.0005
    flow.close(end, conn.closer, conn.rst)
    return Realized(flow, meta, conn.start, end)


def realize_udp(
    msgs: list[tuple[float, int, bytes]],
    *,
    rng: random.Random,
    net: NetProfile,
    client: tuple[str, int],
    server: tuple[str, int],
    meta: FlowLabel,
) -> Realized:
    """Play UDP datagrams (``(sender_time, direction, payload)``) and return the packets."""
    flow = UdpFlow(rng, net, client, server)
    msgs = sorted(msgs, key=lambda m: m[0])
    for when, direction, payload in msgs:
        flow.send(when, direction, payload)
    start = msgs[0][0] if msgs else 0.0
    end = msgs[-1][0] if msgs else 0.0
    return Realized(flow, meta, start, end)
