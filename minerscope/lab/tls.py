"""Real TLS for the lab: both ends are OpenSSL ``SSLObject``\\ s talking through memory BIOs.

Why real TLS instead of a size formula: handshake flights, certificate sizes, session
tickets, the TLS 1.3 middlebox-compatibility CCS and per-record overhead are exactly what a
detector sees on the wire, and any formula would drift from what OpenSSL really emits.
So every TLS session in the lab runs a genuine handshake and every application message is
passed through ``SSLObject.write``; the produced bytes are what we packetise.

Why we then *scrub* bytes: OpenSSL's randomness (hello randoms, key shares, ciphertext)
cannot be seeded, yet the lab must be byte-for-byte deterministic for a seed. Record
framing (content type, version, lengths) and the cleartext handshake structure are kept as
OpenSSL produced them; only the bytes that are random by construction (randoms, session
ids, ephemeral keys, signatures over them, tickets, ciphertext) are replaced with bytes
from the session's seeded generator. With Ed25519 certificates derived from the seed,
every length is deterministic, so the output is reproducible and still parses as TLS.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import random
import ssl
import struct
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519
from cryptography.x509.oid import NameOID

_NOT_BEFORE = _dt.datetime(2024, 1, 1, tzinfo=_dt.UTC)
_NOT_AFTER = _dt.datetime(2044, 1, 1, tzinfo=_dt.UTC)

TLS12 = "tls1.2"
TLS13 = "tls1.3"

_CT_CCS, _CT_ALERT, _CT_HANDSHAKE, _CT_APPDATA = 20, 21, 22, 23


def _key_from(seed: str, label: str) -> ed25519.Ed25519PrivateKey:
    digest = hashlib.sha256(f"minerscope-lab|{seed}|{label}".encode()).digest()
    return ed25519.Ed25519PrivateKey.from_private_bytes(digest)


def _serial(seed: str, label: str) -> int:
    return int.from_bytes(hashlib.sha256(f"serial|{seed}|{label}".encode()).digest()[:8], "big") | 1


class CertStore:
    """A throwaway CA and per-hostname server certificates, derived from a seed and cached.

    Ed25519 signatures are deterministic, and the validity window is fixed, so the same
    seed always yields the same DER bytes (and therefore the same handshake sizes).
    """

    def __init__(self, seed: int | str) -> None:
        self.seed = str(seed)
        self._dir = tempfile.TemporaryDirectory(prefix="minerscope-lab-tls-")
        self._ca_key = _key_from(self.seed, "ca")
        ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "minerscope lab CA")])
        self._ca_name = ca_name
        self._ca_cert = (
            x509.CertificateBuilder()
            .subject_name(ca_name)
            .issuer_name(ca_name)
            .public_key(self._ca_key.public_key())
            .serial_number(_serial(self.seed, "ca"))
            .not_valid_before(_NOT_BEFORE)
            .not_valid_after(_NOT_AFTER)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(self._ca_key, None)
        )
        self._server_ctx: dict[tuple[str, str], ssl.SSLContext] = {}
        self._client_ctx: dict[tuple[str, str, tuple[str, ...]], ssl.SSLContext] = {}

    def close(self) -> None:
        self._dir.cleanup()

    def _cert_files(self, hostname: str, chain: bool) -> tuple[str, str]:
        tag = hashlib.sha256(f"{hostname}|{chain}".encode()).hexdigest()[:16]
        cert_path = Path(self._dir.name) / f"{tag}.crt"
        key_path = Path(self._dir.name) / f"{tag}.key"
        if not cert_path.exists():
            key = _key_from(self.seed, f"host|{hostname}")
            # Ed25519 keeps every signature (and so every length) deterministic, but its keys
            # and signatures are far smaller than the RSA-2048/ECDSA certificates servers
            # really present. A seeded opaque extension and extra SAN names bring the
            # certificate to the usual 0.8-2 KB, so handshake sizes stay realistic.
            hrng = random.Random(f"cert|{self.seed}|{hostname}")
            names: list[x509.GeneralName] = [x509.DNSName(hostname)]
            base = hostname.split(".", 1)[-1]
            names += [
                x509.DNSName(f"{hrng.choice(('www', 'api', 'eu', 'us', 'cdn', 'm', 'static'))}{i}.{base}")
                for i in range(hrng.choice((0, 0, 1, 3, 8, 20)))
            ]
            filler = x509.UnrecognizedExtension(
                x509.ObjectIdentifier("1.3.6.1.4.1.55738.1.1"), hrng.randbytes(hrng.randint(300, 1100))
            )
            cert = (
                x509.CertificateBuilder()
                .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hostname)]))
                .issuer_name(self._ca_name)
                .public_key(key.public_key())
                .serial_number(_serial(self.seed, hostname))
                .not_valid_before(_NOT_BEFORE)
                .not_valid_after(_NOT_AFTER)
                .add_extension(x509.SubjectAlternativeName(names), critical=False)
                .add_extension(filler, critical=False)
                .sign(self._ca_key, None)
            )
            pem = cert.public_bytes(serialization.Encoding.PEM)
            if chain:
                pem += self._ca_cert.public_bytes(serialization.Encoding.PEM)
            cert_path.write_bytes(pem)
            key_path.write_bytes(
                key.private_bytes(
                    serialization.Encoding.PEM,
                    serialization.PrivateFormat.PKCS8,
                    serialization.NoEncryption(),
                )
            )
        return str(cert_path), str(key_path)

    def server_context(self, hostname: str, version: str, chain: bool = False) -> ssl.SSLContext:
        key = (hostname + ("|chain" if chain else ""), version)
        ctx = self._server_ctx.get(key)
        if ctx is None:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            _pin_version(ctx, version)
            cert, keyfile = self._cert_files(hostname, chain)
            ctx.load_cert_chain(cert, keyfile)
            ctx.set_alpn_protocols(["h2", "http/1.1"])
            self._server_ctx[key] = ctx
        return ctx

    def client_context(self, version: str, cipher: str, alpn: tuple[str, ...]) -> ssl.SSLContext:
        key = (version, cipher, alpn)
        ctx = self._client_ctx.get(key)
        if ctx is None:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE  # miners such as XMRig do not verify; the lab need not
            _pin_version(ctx, version)
            if cipher:
                ctx.set_ciphers(cipher)
            if alpn:
                ctx.set_alpn_protocols(list(alpn))
            self._client_ctx[key] = ctx
        return ctx


def _pin_version(ctx: ssl.SSLContext, version: str) -> None:
    v = ssl.TLSVersion.TLSv1_2 if version == TLS12 else ssl.TLSVersion.TLSv1_3
    ctx.minimum_version = v
    ctx.maximum_version = v


TLS12_CIPHERS = (
    "ECDHE-ECDSA-AES128-GCM-SHA256",
    "ECDHE-ECDSA-AES256-GCM-SHA384",
    "ECDHE-ECDSA-CHACHA20-POLY1305",
)


@dataclass
class TlsSession:
    """One TLS connection between an in-memory client and server.

    ``handshake()`` returns the handshake flights as ``(direction, bytes)`` with direction
    0 = client to server, 1 = server to client; ``wrap(direction, data)`` returns the TLS
    records that carry ``data``. All output is scrubbed for determinism (module docstring).
    """

    store: CertStore
    rng: random.Random
    hostname: str
    version: str = TLS13
    sni: bool = True
    alpn: tuple[str, ...] = ()
    cipher: str = ""
    chain: bool = False
    _encrypted: list[bool] = field(default_factory=lambda: [False, False])

    def __post_init__(self) -> None:
        sctx = self.store.server_context(self.hostname, self.version, self.chain)
        cctx = self.store.client_context(self.version, self.cipher, self.alpn)
        self._cin, self._cout = ssl.MemoryBIO(), ssl.MemoryBIO()
        self._sin, self._sout = ssl.MemoryBIO(), ssl.MemoryBIO()
        self.client = cctx.wrap_bio(
            self._cin, self._cout, server_side=False, server_hostname=self.hostname if self.sni else None
        )
        self.server = sctx.wrap_bio(self._sin, self._sout, server_side=True)

    def handshake(self) -> list[tuple[int, bytes]]:
        flights: list[tuple[int, bytes]] = []
        client_done = server_done = False
        for _ in range(12):
            if not client_done:
                try:
                    self.client.do_handshake()
                    client_done = True
                except ssl.SSLWantReadError:
                    pass
            out = self._cout.read()
            if out:
                flights.append((0, out))
                self._sin.write(out)
            if not server_done:
                try:
                    self.server.do_handshake()
                    server_done = True
                except ssl.SSLWantReadError:
                    pass
            out = self._sout.read()
            if out:
                flights.append((1, out))
                self._cin.write(out)
            if client_done and server_done and not out:
                break
        # The client must consume tickets etc. so later records are not confused with them.
        try:
            self.client.read(1)
        except ssl.SSLWantReadError:
            pass
        return [(d, self._scrub(d, b)) for d, b in flights]

    def wrap(self, direction: int, data: bytes) -> bytes:
        obj, bio = (self.client, self._cout) if direction == 0 else (self.server, self._sout)
        view = memoryview(data)
        pos = 0
        while pos < len(data):
            pos += obj.write(view[pos : pos + 16384])
        return self._scrub(direction, bio.read())

    def close_notify(self, direction: int) -> bytes:
        obj, bio = (self.client, self._cout) if direction == 0 else (self.server, self._sout)
        try:
            obj.unwrap()
        except (ssl.SSLWantReadError, ssl.SSLError):
            pass
        return self._scrub(direction, bio.read())

    # -- scrubbing ----------------------------------------------------------------------

    def _scrub(self, direction: int, wire: bytes) -> bytes:
        out = bytearray(wire)
        pos = 0
        rnd = self.rng.randbytes
        while pos + 5 <= len(out):
            ctype = out[pos]
            length = (out[pos + 3] << 8) | out[pos + 4]
            body = pos + 5
            end = body + length
            if ctype == _CT_CCS:
                self._encrypted[direction] = True
            elif ctype == _CT_APPDATA or (self._encrypted[direction] and ctype in (_CT_ALERT, _CT_HANDSHAKE)):
                out[body:end] = rnd(end - body)
            elif ctype == _CT_HANDSHAKE:
                _scrub_handshake(out, body, end, rnd)
            pos = end
        return bytes(out)


def _scrub_handshake(buf: bytearray, pos: int, end: int, rnd: object) -> None:
    """Replace random-by-construction fields of cleartext handshake messages in place."""
    assert callable(rnd)
    while pos + 4 <= end:
        mtype = buf[pos]
        mlen = int.from_bytes(buf[pos + 1 : pos + 4], "big")
        body, mend = pos + 4, pos + 4 + mlen
        if mend > end:
            return
        try:
            if mtype in (1, 2):  # ClientHello / ServerHello
                p = body + 2
                buf[p : p + 32] = rnd(32)
                p += 32
                sid = buf[p]
                buf[p + 1 : p + 1 + sid] = rnd(sid)
                p += 1 + sid
                if mtype == 1:
                    (n,) = struct.unpack_from("!H", buf, p)
                    p += 2 + n
                    p += 1 + buf[p]
                else:
                    p += 3
                if p + 2 <= mend:
                    (elen,) = struct.unpack_from("!H", buf, p)
                    p += 2
                    eend = p + elen
                    while p + 4 <= eend:
                        etype, l2 = struct.unpack_from("!HH", buf, p)
                        edata = p + 4
                        if etype == 51:  # key_share
                            q = edata + (2 if mtype == 1 else 0)
                            while q + 4 <= edata + l2:
                                _g, kl = struct.unpack_from("!HH", buf, q)
                                buf[q + 4 : q + 4 + kl] = rnd(kl)
                                q += 4 + kl
                        p = edata + l2
            elif mtype == 12:  # ServerKeyExchange (ECDHE): pubkey, then signature
                p = body + 3
                kl = buf[p]
                buf[p + 1 : p + 1 + kl] = rnd(kl)
                p += 1 + kl + 2
                (sl,) = struct.unpack_from("!H", buf, p)
                buf[p + 2 : p + 2 + sl] = rnd(sl)
            elif mtype == 16:  # ClientKeyExchange
                kl = buf[body]
                buf[body + 1 : body + 1 + kl] = rnd(kl)
            elif mtype == 4:  # NewSessionTicket (TLS 1.2, cleartext)
                (tl,) = struct.unpack_from("!H", buf, body + 4)
                buf[body + 6 : body + 6 + tl] = rnd(tl)
        except (struct.error, IndexError):
            pass
        pos = mend


def record_lengths(wire: bytes) -> list[tuple[int, int]]:
    """Split a TLS byte stream into ``(content_type, length)`` records (for tests and stats)."""
    out: list[tuple[int, int]] = []
    pos = 0
    while pos + 5 <= len(wire):
        length = (wire[pos + 3] << 8) | wire[pos + 4]
        out.append((wire[pos], length))
        pos += 5 + length
    return out
