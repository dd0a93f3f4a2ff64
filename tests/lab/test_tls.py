"""Real TLS in the lab: genuine OpenSSL handshakes, deterministic after scrubbing, parseable."""

from __future__ import annotations

import random
from collections.abc import Iterator

import pytest

from minerscope.lab.tls import TLS12, TLS13, CertStore, TlsSession, record_lengths

MSG = b'{"id":1,"method":"login"}\n'


@pytest.fixture(scope="module")
def store() -> Iterator[CertStore]:
    s = CertStore(7)
    yield s
    s.close()


def _session(store: CertStore, version: str, seed: int = 1) -> tuple[list[tuple[int, bytes]], bytes]:
    tls = TlsSession(store, random.Random(seed), "pool.lab.example", version=version)
    flights = tls.handshake()
    return flights, tls.wrap(0, MSG) + tls.wrap(1, b"x" * 20000)


@pytest.mark.parametrize("version", [TLS12, TLS13])
def test_same_seed_same_bytes_and_other_seed_differs(store: CertStore, version: str) -> None:
    a = _session(store, version, 1)
    b = _session(store, version, 1)
    c = _session(store, version, 2)
    assert a == b
    assert a[1] != c[1]
    assert [len(x) for _, x in a[0]] == [len(x) for _, x in c[0]]  # sizes do not depend on the seed


@pytest.mark.parametrize("version", [TLS12, TLS13])
def test_client_hello_parses_with_scapy_and_carries_sni(store: CertStore, version: str) -> None:
    from scapy.layers.tls.handshake import TLSClientHello
    from scapy.layers.tls.record import TLS

    flights, _ = _session(store, version)
    direction, hello = flights[0]
    assert direction == 0
    rec = TLS(hello)
    ch = rec.msg[0]
    assert isinstance(ch, TLSClientHello)
    assert b"pool.lab.example" in bytes(ch)
    assert len(ch.ciphers) > 1


@pytest.mark.parametrize("version", [TLS12, TLS13])
def test_record_framing_is_exact(store: CertStore, version: str) -> None:
    flights, app = _session(store, version)
    for _, flight in flights:
        assert sum(5 + n for _, n in record_lengths(flight)) == len(flight)
    recs = record_lengths(app)
    assert sum(5 + n for _, n in recs) == len(app)
    assert all(t == 23 for t, _ in recs)
    # a 26-byte message: TLS 1.3 adds content type + 16-byte tag; TLS 1.2 GCM adds 8-byte nonce + tag,
    # ChaCha20 adds only the tag
    overhead = recs[0][1] - len(MSG)
    assert overhead in ((17,) if version == TLS13 else (16, 24))
    assert len(recs) == 3  # 20000 bytes need two records (16384 max plaintext)
