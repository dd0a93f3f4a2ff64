"""Verdict records: which attempt wins, and what the JSONL export makes of hostile text."""

from __future__ import annotations

import json

import pytest

from minerscope.probe.dialects import get_dialect
from minerscope.probe.framing import encode_json_line
from minerscope.probe.verdict import (
    EXCERPT_BYTES,
    DialectResult,
    Evidence,
    Outcome,
    ProbeAttempt,
    Transport,
    Verdict,
    excerpt,
)


def _attempt(
    dialect: str, transport: Transport, result: DialectResult | None, error: str | None = None
) -> ProbeAttempt:
    return ProbeAttempt(dialect, transport, b"req\n", b"reply\n", 0.012, result, error)


def test_strongest_pool_result_wins_over_order() -> None:
    none = DialectResult.none("stratum1", "generic JSON-RPC: method not found")
    weak = DialectResult("ethproxy", Outcome.SUCCESS, 0.4, (Evidence("login", "true"),), "login only")
    err = DialectResult(
        "xmrig", Outcome.ERROR, 0.75, (Evidence("error", "Invalid payment address provided"),), "refused"
    )
    strong = DialectResult(
        "xmrig", Outcome.SUCCESS, 0.95, (Evidence("algo", "rx/0"),), "login result with job"
    )
    attempts = [
        _attempt("stratum1", Transport.TCP, none),
        _attempt("ethproxy", Transport.TCP, weak),
        _attempt("xmrig", Transport.TCP, err),
        _attempt("xmrig", Transport.TLS, strong),
        _attempt("coinhive", Transport.WS, None, "connection refused"),
    ]
    verdict = Verdict.from_attempts("127.0.0.1:3333", "127.0.0.1", 3333, attempts)
    assert verdict.is_pool and verdict.dialect == "xmrig" and verdict.transport is Transport.TLS
    assert verdict.outcome is Outcome.SUCCESS and verdict.confidence == pytest.approx(0.95)
    assert verdict.evidence == (Evidence("algo", "rx/0"),)
    assert len(verdict.attempts) == 5

    only_weak = Verdict.from_attempts("h:1", "h", 1, attempts[:2])
    assert not only_weak.is_pool and only_weak.outcome is Outcome.SUCCESS and only_weak.dialect == "ethproxy"

    pool_error = Verdict.from_attempts("h:1", "h", 1, attempts[:3])
    assert pool_error.is_pool and pool_error.outcome is Outcome.ERROR


def test_no_classified_attempt_is_not_a_pool() -> None:
    verdict = Verdict.from_attempts("h:1", "h", 1, [_attempt("stratum1", Transport.TCP, None, "timeout")])
    assert not verdict.is_pool and verdict.outcome is Outcome.NONE and verdict.dialect is None
    assert Verdict.from_attempts("h:1", "h", 1, []).confidence == 0.0


def test_jsonl_has_the_contract_fields_and_inert_peer_text() -> None:
    hostile = b'{"id":1,"error":[24,"\\u001b[2J\\u202eUnauthorized worker",null]}'
    result = get_dialect("stratum1").classify([hostile], [b'{"id":909,"error":[20,"Method not found",null]}'])
    assert result.outcome is Outcome.ERROR
    attempt = ProbeAttempt(
        "stratum1", Transport.TCP, encode_json_line({"id": 1}), excerpt(hostile + b"\x1b[31m"), 0.2, result
    )
    verdict = Verdict.from_attempts(
        "evil:3333", "evil", 3333, [attempt], tls={"subject": "CN=\x1bpool", "version": 3}
    )
    line = verdict.to_jsonl()
    assert "\n" not in line and "\x1b" not in line and "\u202e" not in line
    record = json.loads(line)
    assert list(record)[:8] == [
        "target",
        "is_pool",
        "confidence",
        "dialect",
        "transport",
        "outcome",
        "evidence",
        "attempts",
    ]
    assert record["transport"] == "tcp" and record["outcome"] == "error" and record["is_pool"] is True
    errors = [e["value"] for e in record["evidence"] if e["key"] == "error"]
    assert errors and "\\x1b[2J" in errors[0] and "\\u202e" in errors[0]
    assert "\\x1b" in record["attempts"][0]["reply"]
    assert record["tls"] == {"subject": "CN=\\x1bpool", "version": 3}


def test_excerpt_is_bounded() -> None:
    assert len(excerpt(b"a" * 10_000)) == EXCERPT_BYTES
    assert excerpt(b"abc", limit=2) == b"ab"
