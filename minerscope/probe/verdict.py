"""Frozen records of what a probe saw and what minerscope concluded from it.

Three layers, each an immutable value (frozen, slotted dataclasses), so a verdict can be
stored, compared and exported without anyone mutating it halfway:

* :class:`DialectResult` is what one dialect's sans-IO classifier concluded from the
  replies of one connection (``success``: the server spoke the dialect; ``error``: the
  server exists as a pool but refused our wallet/worker; ``none``: no evidence).
* :class:`ProbeAttempt` is one connection: which dialect over which transport, the raw
  request/reply excerpts (bytes, bounded by :data:`EXCERPT_BYTES`), how long it took and
  either a :class:`DialectResult` or a transport error string.
* :class:`Verdict` is the conclusion for one target, built from all attempts by
  :meth:`Verdict.from_attempts` so the policy "which attempt wins" lives in one place.

Replies are hostile text. Excerpts are kept as bytes here and made inert by
:func:`minerscope.untrusted.clean` only when exported (:meth:`Verdict.to_json`), so a
stored record never loses information and an exported one never carries escape codes.

API (stable)::

    Outcome.SUCCESS | ERROR | NONE                    (StrEnum)
    Transport.TCP | TLS | WS | WSS | HTTP | HTTPS | RAW  (StrEnum)
    Evidence(key: str, value: str)
    DialectResult(dialect, outcome, confidence, evidence=(), reason="")
        .is_pool -> bool ; .get(key) -> str | None ; DialectResult.none(dialect, reason)
    ProbeAttempt(dialect, transport, request_excerpt: bytes, reply_excerpt: bytes,
                 elapsed_s: float, result: DialectResult | None, error: str | None)
    excerpt(data: bytes, limit=EXCERPT_BYTES) -> bytes
    Verdict(target, host, port, is_pool, confidence, dialect, transport, outcome,
            evidence, attempts, tls=None, error=None, coin="")
        Verdict.from_attempts(target, host, port, attempts, tls=None, error=None) -> Verdict
        .unreachable -> str | None ; .check_error -> str | None ; .label -> str | None
        .to_json() -> dict (JSON-serialisable) ; .to_jsonl() -> str (one line, no newline)
    coin_of(evidence) -> str   (a coin label such as "xmr", or "" when unknown)
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Any

from minerscope.untrusted import clean

EXCERPT_BYTES = 512
"""Bytes of each request/reply kept in a :class:`ProbeAttempt` (a security and size limit)."""

POOL_CONFIDENCE = 0.5
"""A dialect result at or above this confidence (and not ``none``) makes the target a pool."""


class Outcome(StrEnum):
    """What one dialect concluded from one connection."""

    SUCCESS = "success"
    """The server spoke the dialect (subscription, login job, work triple ...)."""
    ERROR = "error"
    """A pool exists but rejected our fake credentials (and did not say so to everything)."""
    NONE = "none"
    """No evidence of a pool: silence, non-JSON, generic JSON-RPC, echo, node error ..."""


class Transport(StrEnum):
    """How the bytes reached the server."""

    TCP = "tcp"
    TLS = "tls"
    WS = "ws"
    WSS = "wss"
    HTTP = "http"
    HTTPS = "https"
    RAW = "raw"


@dataclass(frozen=True, slots=True)
class Evidence:
    """One observation behind a conclusion, e.g. ``Evidence("extranonce2_size", "4")``.

    Values are the peer's text, unescaped; exporters pass them through ``clean()``.
    """

    key: str
    value: str


@dataclass(frozen=True, slots=True)
class DialectResult:
    """A dialect classifier's conclusion about one connection's replies."""

    dialect: str
    outcome: Outcome
    confidence: float
    evidence: tuple[Evidence, ...] = ()
    reason: str = ""

    @property
    def is_pool(self) -> bool:
        """True when this result alone is enough to call the server a pool."""
        return self.outcome is not Outcome.NONE and self.confidence >= POOL_CONFIDENCE

    def get(self, key: str) -> str | None:
        """The first evidence value named ``key``, or None."""
        for item in self.evidence:
            if item.key == key:
                return item.value
        return None

    @classmethod
    def none(cls, dialect: str, reason: str, evidence: Iterable[Evidence] = ()) -> DialectResult:
        """A "no evidence of a pool" result with the reason stated."""
        return cls(dialect, Outcome.NONE, 0.0, tuple(evidence), reason)


def excerpt(data: bytes, limit: int = EXCERPT_BYTES) -> bytes:
    """The first ``limit`` bytes of ``data`` (what a :class:`ProbeAttempt` keeps)."""
    return bytes(data[:limit])


@dataclass(frozen=True, slots=True)
class ProbeAttempt:
    """One connection: a dialect over a transport, and what came of it.

    ``result`` is None when the connection failed before anything could be classified;
    ``error`` then says why (refused, timeout, TLS failure, limit exceeded ...).
    """

    dialect: str
    transport: Transport
    request_excerpt: bytes
    reply_excerpt: bytes
    elapsed_s: float
    result: DialectResult | None
    error: str | None = None

    def to_json(self) -> dict[str, Any]:
        """The attempt as JSON-serialisable values, every peer string made inert."""
        res = self.result
        return {
            "dialect": self.dialect,
            "transport": str(self.transport),
            "outcome": str(res.outcome) if res else None,
            "confidence": round(res.confidence, 3) if res else 0.0,
            "reason": clean(res.reason) if res else "",
            "elapsed_s": round(self.elapsed_s, 4),
            "request": clean(self.request_excerpt),
            "reply": clean(self.reply_excerpt),
            "error": clean(self.error) if self.error is not None else None,
        }


def _rank(result: DialectResult) -> tuple[int, float]:
    order = {Outcome.SUCCESS: 2, Outcome.ERROR: 1, Outcome.NONE: 0}
    return (1 if result.is_pool else 0, result.confidence + 0.001 * order[result.outcome])


LIVENESS = "liveness"
"""The ``dialect`` name of the TCP liveness attempt in a verdict's attempt list."""
UNREACHABLE = "unreachable"
"""What views call a target that could not be checked (see :attr:`Verdict.unreachable`)."""

COIN_LABELS = frozenset(
    {"btc", "bch", "bsv", "ltc", "doge", "dash", "dgb", "xmr", "zec", "etc", "eth", "ethw", "rvn", "kas"}
)
"""Coin labels a verdict may name (the coin model's labels among them)."""

_FAMILY_COIN = {"monero": "xmr", "zcash": "zec", "browser": "xmr"}
"""Families whose dialect names one coin. Bitcoin-family Stratum (BTC, LTC, BCH, DOGE ...),
Ethereum-family (ETC, ETHW ...) and SV2 do not: the wire does not say which chain."""

_DAEMON = "daemon"
_AUTH_STATUSES = ("401", "403")


def coin_of(evidence: Iterable[Evidence]) -> str:
    """The coin a result's evidence names: a ``coin`` item that is a coin label, else the
    one coin of its ``family`` (``monero`` -> ``xmr``), else "" (unknown).

    Never an algorithm: ``rx/0`` or ``equihash`` say how a pool hashes, not which chain
    it mines (several coins share each)."""
    items = tuple(evidence)
    for item in items:
        if item.key == "coin" and item.value.strip().lower() in COIN_LABELS:
            return item.value.strip().lower()
    for item in items:
        if item.key == "family" and item.value in _FAMILY_COIN:
            return _FAMILY_COIN[item.value]
    return ""


@dataclass(frozen=True, slots=True)
class Verdict:
    """The conclusion about one target (host:port) from all probe attempts.

    ``coin`` is a coin label (``xmr``, ``zec`` ...) when the evidence names one, else "";
    when set, the evidence starts with ``coin=<label>`` (the case file takes the pool's
    coin from there). ``error`` is set by the runner when the target accepted connections
    but could not be checked (it reset every one before a byte); a liveness failure is read
    from the attempts (see :attr:`unreachable`).
    """

    target: str
    host: str
    port: int
    is_pool: bool
    confidence: float
    dialect: str | None
    transport: Transport | None
    outcome: Outcome
    evidence: tuple[Evidence, ...]
    attempts: tuple[ProbeAttempt, ...]
    tls: Mapping[str, Any] | None = field(default=None)
    error: str | None = None
    coin: str = ""

    @classmethod
    def from_attempts(
        cls,
        target: str,
        host: str,
        port: int,
        attempts: Iterable[ProbeAttempt],
        tls: Mapping[str, Any] | None = None,
        error: str | None = None,
    ) -> Verdict:
        """Pick the strongest attempt: pool-grade results first, then confidence, then outcome.

        The target is a pool when the winning result :attr:`DialectResult.is_pool`.
        With no classified attempt the verdict is ``none`` with confidence 0.
        """
        attempts = tuple(attempts)
        best: ProbeAttempt | None = None
        for attempt in attempts:
            if attempt.result is None:
                continue
            if best is None or best.result is None or _rank(attempt.result) > _rank(best.result):
                best = attempt
        if best is None or best.result is None or best.result.outcome is Outcome.NONE:
            return cls(target, host, port, False, 0.0, None, None, Outcome.NONE, (), attempts, tls, error)
        res = best.result
        return cls(
            target,
            host,
            port,
            res.is_pool,
            res.confidence,
            res.dialect,
            best.transport,
            res.outcome,
            res.evidence,
            attempts,
            tls,
            error,
        ).with_coin(coin_of(res.evidence))

    def with_coin(self, coin: str, *, source: str = "") -> Verdict:
        """This verdict naming ``coin`` (a label; "" leaves it as it is), its evidence led by
        ``coin=<label>`` (and ``coin_source=<source>`` when the coin came from elsewhere)."""
        if not coin:
            return self
        rest = tuple(e for e in self.evidence if e.key not in ("coin", "coin_source"))
        lead = (Evidence("coin", coin),) + ((Evidence("coin_source", source),) if source else ())
        return replace(self, coin=coin, evidence=lead + rest)

    @property
    def unreachable(self) -> str | None:
        """Why the target could not be checked: its liveness attempt failed (refused, no
        answer, name not resolved), or it accepted connections and reset every one
        (:attr:`error`); else None.

        Not a pool *and* unreachable means the endpoint could not be checked (a pool seen
        in an old capture may have moved or be down), not that it was cleared, so every
        view says which of the two it was."""
        for attempt in self.attempts:
            if attempt.dialect == LIVENESS and attempt.error:
                return attempt.error
        return self.error or None

    @property
    def check_error(self) -> str | None:
        """:attr:`unreachable` as views and records state it: ``unreachable: <why>``."""
        why = self.unreachable
        if why and not why.startswith(UNREACHABLE):
            why = f"{UNREACHABLE}: {why}"
        return why

    @property
    def label(self) -> str | None:
        """A mining service identified but not confirmed, in a few words, else None.

        ``daemon? (auth required)`` for a node that wants RPC credentials,
        ``daemon? (no template)`` for one that refused a block template (no peers, still
        syncing), ``possible pool (sv2)`` for pool-like evidence below the pool threshold.
        Views show it instead of a bare "no", which would rank it with a web server;
        :attr:`is_pool` stays strict."""
        if self.is_pool or self.outcome is Outcome.NONE or not self.dialect:
            return None
        return identified_label(self.dialect, self.evidence)

    def to_json(self) -> dict[str, Any]:
        """The JSONL record: ``target, is_pool, confidence, dialect, transport, outcome,
        evidence, attempts``, plus ``coin`` when the evidence names one, ``label`` for a
        mining service identified but not confirmed, ``error`` (``unreachable: why``) when
        the target could not be checked (no all-clear) and ``tls`` when a TLS handshake
        was seen.

        Evidence is a list of ``{"key", "value"}`` objects (keys may repeat); every string
        that came from the peer is passed through :func:`minerscope.untrusted.clean`.
        """
        out: dict[str, Any] = {
            "target": clean(self.target),
            "is_pool": self.is_pool,
            "confidence": round(self.confidence, 3),
            "dialect": self.dialect,
            "transport": str(self.transport) if self.transport is not None else None,
            "outcome": str(self.outcome),
            "evidence": [{"key": e.key, "value": clean(e.value)} for e in self.evidence],
            "attempts": [a.to_json() for a in self.attempts],
        }
        if self.coin:
            out["coin"] = self.coin
        label = self.label
        if label:
            out["label"] = clean(label)
        error = self.check_error
        if error:
            out["error"] = clean(error)
        if self.tls is not None:
            out["tls"] = {clean(k): _clean_json(v) for k, v in self.tls.items()}
        return out

    def to_jsonl(self) -> str:
        """:meth:`to_json` as one compact JSON line (no trailing newline)."""
        return json.dumps(self.to_json(), separators=(",", ":"), ensure_ascii=False)


def identified_label(dialect: str, evidence: Iterable[Evidence] = ()) -> str:
    """The label of a mining service identified by ``dialect`` but not confirmed (see
    :attr:`Verdict.label`); with no evidence a daemon is named by its dialect."""
    items = {e.key: e.value for e in reversed(tuple(evidence))}  # first value of each key wins
    if items.get("family") == _DAEMON or dialect in DAEMON_DIALECTS:
        if items.get("http_status") in _AUTH_STATUSES:
            return "daemon? (auth required)"
        if "error" in items:
            return "daemon? (no template)"
        return f"daemon? ({dialect})"
    return f"possible pool ({dialect})"


DAEMON_DIALECTS = frozenset({"bitcoind", "monerod", "geth"})
"""Dialects that ask a coin's node (solo mining), not a pool."""


def _clean_json(value: Any) -> Any:
    """Make nested TLS metadata inert while keeping numbers, booleans and structure."""
    if value is None or isinstance(value, bool | int | float):
        return value
    if isinstance(value, Mapping):
        return {clean(k): _clean_json(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean_json(v) for v in value]
    return clean(value)
