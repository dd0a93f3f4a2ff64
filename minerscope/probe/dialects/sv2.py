"""Stratum V2: a Noise NX Act-1 probe and a "fixed-size high-entropy Act-2" guess.

Everything after the handshake is ChaCha20-Poly1305 encrypted, and without the pool's
authority key (published out of band, sv2-spec §4.6) a probe cannot validate the
certificate. So the probe can only send a well-formed Act-1 (a 64-byte ElligatorSwift
ephemeral key, indistinguishable from random bytes) and look at what comes back.

**Act-2 size.** PROTOCOLS.md flags a conflict: the sv2-spec table at commit 01ddbc3 says
170 bytes, its own field list with 64-byte keys sums to 234. We expect **234 bytes**:
responder ephemeral key (64, ElligatorSwift) + encrypted static key (64 + 16 MAC) +
encrypted SIGNATURE_NOISE_MESSAGE (version 2 + valid_from 4 + not_valid_after 4 + Schnorr
signature 64 = 74, + 16 MAC) = 64 + 80 + 90 = 234, which is also how the reference
implementation (stratum-mining noise_sv2: ``INITIATOR_EXPECTED_HANDSHAKE_MESSAGE_SIZE =
ELLSWIFT_ENCODING_SIZE + ENCRYPTED_ELLSWIFT_ENCODING_SIZE +
ENCRYPTED_SIGNATURE_NOISE_MESSAGE_SIZE``) computes it; handshake frames carry no SV2
header. 170 = 32 + 48 + 90 is the older x-only-key draft; we accept it at lower
confidence. **Not verified against a running server here** (no SV2 pool on loopback).

The result is at most "possible pool" (confidence below the pool threshold): a random
234-byte blob is a strong hint, not proof.
"""

from __future__ import annotations

import math
import random
from collections import Counter
from collections.abc import Sequence

from minerscope.probe.dialects.base import Dialect, Family, Framing, HttpReply, ProbeContext, Reply, Request
from minerscope.probe.verdict import DialectResult, Evidence, Outcome, Transport

ACT1_SIZE = 64
"""ElligatorSwift-encoded secp256k1 ephemeral key."""
ACT2_SIZE = 234
"""Expected responder reply (see the module docstring for the derivation)."""
LEGACY_ACT2_SIZE = 170
"""Older draft with 32-byte x-only keys."""
MIN_ENTROPY_BITS = 6.8
"""Shannon entropy per byte below which a 170/234-byte reply is not random-looking
(uniform random 234 bytes average ~7.1 bits; ASCII text stays under ~5)."""
SV2_CONFIDENCE = 0.35
LEGACY_CONFIDENCE = 0.3

_FAMILIAR_PREFIXES = (b"\x15\x03", b"\x16\x03", b"SSH-", b"HTTP/", b"{", b"[", b"<", b"220 ", b"+OK", b"* OK")


def make_act1(rng: random.Random) -> bytes:
    """A 64-byte Act-1 (pseudo-random, as an ElligatorSwift encoding looks on the wire)."""
    return rng.randbytes(ACT1_SIZE)


def make_act2(rng: random.Random, size: int = ACT2_SIZE) -> bytes:
    """A pool-emulator Act-2 reply of ``size`` pseudo-random bytes."""
    return rng.randbytes(size)


def byte_entropy(data: bytes) -> float:
    """Shannon entropy of ``data`` in bits per byte (0 for empty input)."""
    if not data:
        return 0.0
    n = len(data)
    return -sum(c / n * math.log2(c / n) for c in Counter(data).values())


def looks_random(data: bytes) -> bool:
    """High entropy and not the start of a familiar plaintext/TLS/SSH protocol."""
    return not data.startswith(_FAMILIAR_PREFIXES) and byte_entropy(data) >= MIN_ENTROPY_BITS


class Sv2Noise(Dialect):
    """Stratum V2 Noise NX handshake guess."""

    name = "sv2"
    family = Family.SV2
    framing = Framing.RAW
    transports = (Transport.RAW,)
    default_ports = (34254, 3336, 3333, 443)

    def probe_requests(self, ctx: ProbeContext) -> list[Request]:
        seed = f"{ctx.host}:{ctx.port}"
        return [Request("noise-act1", make_act1(random.Random(seed)))]

    def control_request(self, ctx: ProbeContext) -> Request:
        """16 bytes: shorter than an Act-1, so an SV2 responder keeps waiting for 64 bytes
        and says nothing, while an echo or a "junk to anything" server answers. (A zero
        key would not do: every 64-byte string is a valid ElligatorSwift encoding.)"""
        return Request("noise-control", random.Random(f"control:{ctx.host}:{ctx.port}").randbytes(16))

    def classify(
        self, replies: Sequence[Reply], control_replies: Sequence[Reply] | None = None
    ) -> DialectResult:
        data = b"".join(r for r in replies if isinstance(r, bytes))
        if any(isinstance(r, HttpReply) for r in replies):
            return DialectResult.none(self.name, "HTTP reply")
        if not data:
            return DialectResult.none(self.name, "no reply")
        size = len(data)
        entropy = byte_entropy(data)
        ev = (
            *self.identity(),
            Evidence("reply_bytes", str(size)),
            Evidence("entropy_bits", f"{entropy:.2f}"),
        )
        if size not in (ACT2_SIZE, LEGACY_ACT2_SIZE):
            return DialectResult.none(self.name, f"reply of {size} bytes is not an Act-2 ({ACT2_SIZE})", ev)
        if not looks_random(data):
            return DialectResult.none(self.name, "reply is not high-entropy", ev)
        if control_replies is not None:
            ctrl = b"".join(r for r in control_replies if isinstance(r, bytes))
            if len(ctrl) == size:
                return DialectResult.none(self.name, "the short control got a reply of the same size", ev)
        conf = SV2_CONFIDENCE if size == ACT2_SIZE else LEGACY_CONFIDENCE
        return DialectResult(
            self.name,
            Outcome.SUCCESS,
            conf,
            ev,
            f"single {size}-byte high-entropy reply to Act-1 (possible SV2 pool)",
        )


SV2 = Sv2Noise()
