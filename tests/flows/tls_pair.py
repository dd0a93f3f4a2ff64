"""Test helper: a real TLS 1.2/1.3 session between Python's ssl client and server, in memory.

Returns the bytes each side wrote, in order, so tests can segment them into TCP packets
and check that the assembler finds exactly the TLS records that were on the wire.
"""

from __future__ import annotations

import ssl
import struct

import trustme

_CA = trustme.CA()
_CERT = _CA.issue_cert("pool.example.test", "*.minexmr.example")


def tls_session(
    sni: str = "pool.example.test",
    alpn: list[str] | None = None,
    messages: list[tuple[int, bytes]] | None = None,
    max_version: ssl.TLSVersion | None = None,
    tickets: int | None = None,
    server_max_version: ssl.TLSVersion | None = None,
) -> list[tuple[int, bytes]]:
    """Run a handshake and exchange ``messages`` ((0 client / 1 server, plaintext)).

    ``tickets``: TLS 1.3 NewSessionTicket messages the server sends after the handshake
    (OpenSSL's default is 2; 0 leaves only application data after the client's Finished).
    ``server_max_version`` lets the server negotiate down from what the client offers.

    Returns (direction, bytes written by that side) flights in order.
    """
    server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    _CERT.configure_cert(server_ctx)
    if tickets is not None:
        server_ctx.num_tickets = tickets
    if server_max_version is not None:
        server_ctx.maximum_version = server_max_version
    if alpn:
        server_ctx.set_alpn_protocols(alpn)
    client_ctx = ssl.create_default_context()
    _CA.configure_trust(client_ctx)
    if alpn:
        client_ctx.set_alpn_protocols(alpn)
    if max_version is not None:
        client_ctx.maximum_version = max_version
    c_in, c_out, s_in, s_out = ssl.MemoryBIO(), ssl.MemoryBIO(), ssl.MemoryBIO(), ssl.MemoryBIO()
    if not sni:  # no server name in the ClientHello, as a miner dialling an address sends
        client_ctx.check_hostname = False
    client = client_ctx.wrap_bio(c_in, c_out, server_hostname=sni or None)
    server = server_ctx.wrap_bio(s_in, s_out, server_side=True)
    flights: list[tuple[int, bytes]] = []

    def pump() -> None:
        data = c_out.read()
        if data:
            flights.append((0, data))
            s_in.write(data)
        data = s_out.read()
        if data:
            flights.append((1, data))
            c_in.write(data)

    done = [False, False]
    for _ in range(10):
        for i, side in enumerate((client, server)):
            if not done[i]:
                try:
                    side.do_handshake()
                    done[i] = True
                except ssl.SSLWantReadError:
                    pass
            pump()
        if all(done):
            break
    for direction, text in messages or []:
        (client if direction == 0 else server).write(text)
        pump()
        try:
            (server if direction == 0 else client).read(65536)
        except ssl.SSLWantReadError:
            pass
        pump()
    return flights


def records(stream: bytes) -> list[tuple[int, int]]:
    """(content type, length) of every TLS record in a byte stream."""
    out = []
    pos = 0
    while pos + 5 <= len(stream):
        ctype = stream[pos]
        (length,) = struct.unpack("!H", stream[pos + 3 : pos + 5])
        out.append((ctype, length))
        pos += 5 + length
    assert pos == len(stream)
    return out
