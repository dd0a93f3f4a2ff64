"""The flow-table query language: parse ``p>0.9 coin=xmr port=443 pool`` and apply it to rows.

Both front ends filter the same scored rows (the frame :mod:`minerscope.triage` yields),
so the language lives here, headless and pure: text in, a :class:`RowFilter` value out,
and a polars expression that the Textual filter bar and the CLI evaluate over the
whole frame at once. Keeping it out of the UI means a filter typed in the workstation
means exactly what it means on the command line, and it can be tested without a
terminal. This module never imports Textual.

Grammar (whitespace-separated terms, shell-style quoting for values with spaces)::

    term   := FIELD OP VALUE | WORD
    OP     := "=" | "!=" | "~" | ">" | ">=" | "<" | "<="

* ``FIELD`` is an alias from :data:`FIELD_ALIASES` (``p``, ``coin``, ``port`` ...) or
  any column of the frame. Numeric fields take every operator; text fields take
  ``=``/``!=`` (case-insensitive equality) and ``~`` (substring). A term on ``p``
  never matches an unscored flow (no window: its probability is not a measurement).
* ``port`` matches either end of the flow; ``host`` matches source or destination
  address, SNI, DNS names or HTTP host.
* A bare ``WORD`` is a case-insensitive substring searched in the text columns
  (:data:`TEXT_COLUMNS`) that the frame has.
* All terms must hold (AND). Coins accept names as well as tickers (``monero`` = ``xmr``).

Errors are :class:`FilterError` (an :class:`~minerscope.errors.InputError`): one line
that names the offending term.
"""

from __future__ import annotations

import math
import re
import shlex
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from minerscope.errors import InputError
from minerscope.unscored import measured

if TYPE_CHECKING:  # polars is imported lazily by the functions that build expressions
    import polars as pl

OPERATORS = ("!=", ">=", "<=", "=", "~", ">", "<")
"""Operators, longest first so ``>=`` is not read as ``>``."""

FIELD_ALIASES: dict[str, tuple[str, ...]] = {
    "p": ("p_mining",),
    "score": ("p_mining",),
    "coin": ("coin",),
    "port": ("dport", "sport", "proxy_port"),
    "host": ("src", "dst", "sni", "dns_names", "http_host", "proxy_host"),
    "proxy": ("proxy_host",),  # the target a flow asked an explicit proxy for
    "ip": ("src", "dst"),
    "sni": ("sni",),
    "dns": ("dns_names",),
    "status": ("analyst_status",),
    "probe": ("probe_status",),
    "badge": ("stage0",),
}
"""Short field names the filter bar accepts, mapped to the columns they test."""

TEXT_COLUMNS = (
    "src",
    "dst",
    "sni",
    "dns_names",
    "http_host",
    "proxy_host",
    "coin",
    "verdict",
    "stage0",
    "alpn",
    "ja4",
    "analyst_status",
    "probe_status",
)
"""Columns a bare word is searched in (those absent from a frame are skipped)."""

COIN_ALIASES: dict[str, str] = {
    "bitcoin": "btc",
    "monero": "xmr",
    "ethereum": "eth",
    "ethereumclassic": "etc",
    "litecoin": "ltc",
    "dogecoin": "doge",
    "bitcoincash": "bch",
    "zcash": "zec",
    "ravencoin": "rvn",
}
"""Coin names accepted in place of the tickers the model reports."""

PROTO_NAMES: dict[str, int] = {"tcp": 6, "udp": 17, "icmp": 1, "icmp6": 58}
"""Protocol names accepted by ``proto=``."""

_TERM_RE = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*)(!=|>=|<=|=|~|>|<)(.*)$", re.DOTALL)

MAX_FILTER_CHARS = 2_000
"""A security limit: longer filter text is refused rather than parsed."""


class FilterError(InputError):
    """A filter expression cannot be parsed or names a field the rows do not have."""


@dataclass(frozen=True, slots=True)
class Term:
    """One ``field op value`` condition, before it is bound to a frame's columns."""

    field: str
    op: str
    value: str

    def __str__(self) -> str:
        return f"{self.field}{self.op}{self.value}"


@dataclass(frozen=True, slots=True)
class RowFilter:
    """A parsed filter: conditions and bare words, all of which must hold."""

    terms: tuple[Term, ...] = ()
    words: tuple[str, ...] = ()

    @property
    def is_empty(self) -> bool:
        return not self.terms and not self.words

    def __str__(self) -> str:
        return " ".join([*(str(t) for t in self.terms), *self.words])


def parse_filter(text: str) -> RowFilter:
    """Parse filter-bar text into a :class:`RowFilter`.

    Args:
        text: e.g. ``p>0.9 coin=xmr port=443 pool``; empty text matches everything.

    Returns:
        The parsed filter (field names are lower-cased; values are kept as typed).

    Raises:
        FilterError: unbalanced quotes, an operator without a value, or text over
            :data:`MAX_FILTER_CHARS`.
    """
    if len(text) > MAX_FILTER_CHARS:
        raise FilterError(f"filter: longer than max_filter_chars={MAX_FILTER_CHARS}")
    try:
        tokens = shlex.split(text)
    except ValueError as exc:
        raise FilterError(f"filter: {exc}") from None
    terms: list[Term] = []
    words: list[str] = []
    for token in tokens:
        match = _TERM_RE.match(token)
        if match is None:
            if any(token.startswith(op) for op in OPERATORS):
                raise FilterError(f"filter: {token!r}: operator without a field name")
            words.append(token)
            continue
        field, op, value = match.group(1).lower(), match.group(2), match.group(3)
        if value == "":
            raise FilterError(f"filter: {token!r}: {field}{op} needs a value")
        terms.append(Term(field, op, value))
    return RowFilter(tuple(terms), tuple(words))


def filter_expression(flt: RowFilter, schema: pl.Schema) -> pl.Expr:
    """Return the polars expression that keeps the rows ``flt`` matches.

    Args:
        flt: a parsed filter.
        schema: the schema of the frame it will be applied to (fields are checked here).

    Raises:
        FilterError: an unknown field, a non-numeric value for a numeric field, or an
            ordering operator on a text field.
    """
    import polars as pl

    expr = pl.lit(True)
    for term in flt.terms:
        expr = expr & _term_expression(term, schema)
    text_cols = [c for c in TEXT_COLUMNS if c in schema]
    for word in flt.words:
        needle = word.lower()
        any_hit = pl.lit(False)
        for col in text_cols:
            any_hit = any_hit | _text(col).str.contains(needle, literal=True)
        expr = expr & any_hit
    return expr


def _text(col: str) -> pl.Expr:
    import polars as pl

    return pl.col(col).cast(pl.Utf8).fill_null("").str.to_lowercase()


def _columns_for(field: str, schema: pl.Schema) -> tuple[str, ...]:
    if field in FIELD_ALIASES:
        cols = tuple(c for c in FIELD_ALIASES[field] if c in schema)
        if cols:
            return cols
    elif field in schema:
        return (field,)
    known = sorted({*FIELD_ALIASES, *schema.names()} - {"coin_probs", "top_features"})
    raise FilterError(f"filter: unknown field {field!r} (known: {', '.join(known)})")


def _term_expression(term: Term, schema: pl.Schema) -> pl.Expr:
    import polars as pl

    cols = _columns_for(term.field, schema)
    parts: list[pl.Expr] = []
    for col in cols:
        dtype = schema[col]
        if dtype.is_numeric():
            parts.append(_numeric_term(term, col, measured(col, schema.names())))
        elif dtype == pl.Boolean:
            parts.append(_bool_term(term, col))
        else:
            parts.append(_text_term(term, col))
    combined = parts[0]
    for part in parts[1:]:
        # "port!=443" must mean "neither end is 443", so negations combine with AND.
        combined = (combined & part) if term.op == "!=" else (combined | part)
    return combined


def _numeric_term(term: Term, col: str, c: pl.Expr) -> pl.Expr:
    """``term`` on numeric column ``col``, whose values ``c`` gives (see :func:`~minerscope.unscored.measured`)."""
    raw = term.value.lower()
    if col == "proto" and raw in PROTO_NAMES:
        number = float(PROTO_NAMES[raw])
    else:
        try:
            number = float(raw.rstrip("%")) / (100.0 if raw.endswith("%") else 1.0)
        except ValueError:
            number = math.nan
        if math.isnan(number):  # polars orders NaN above every number: p>=nan would match NaN rows
            raise FilterError(f"filter: {term}: {term.field} needs a number, not {term.value!r}") from None
    if term.op == "~":
        raise FilterError(f"filter: {term}: '~' (contains) applies to text fields only")
    ops = {
        "=": c == number,
        "!=": c != number,
        ">": c > number,
        ">=": c >= number,
        "<": c < number,
        "<=": c <= number,
    }
    return ops[term.op].fill_null(False)


def _bool_term(term: Term, col: str) -> pl.Expr:
    import polars as pl

    raw = term.value.lower()
    if raw not in {"true", "false", "yes", "no", "1", "0"} or term.op not in {"=", "!="}:
        raise FilterError(f"filter: {term}: {term.field} takes =true or =false")
    truth = raw in {"true", "yes", "1"}
    expr = pl.col(col) == truth if term.op == "=" else pl.col(col) != truth
    return expr.fill_null(False)


def _text_term(term: Term, col: str) -> pl.Expr:
    value = term.value.lower()
    if col == "coin":
        value = COIN_ALIASES.get(value, value)
    if term.op == "=":
        return _text(col) == value
    if term.op == "!=":
        return _text(col) != value
    if term.op == "~":
        return _text(col).str.contains(value, literal=True)
    raise FilterError(f"filter: {term}: {term.field} is text; use =, != or ~")


SUSPICION_ORDER: tuple[tuple[str, bool], ...] = (
    ("verdict", True),  # "mining" sorts after "benign", so descending puts mining first
    ("p_mining", True),
    ("bytes", True),
)
"""The default ranking: mining verdicts (stage 0 or model) first, then by score, then size."""


def rank_rows(rows: pl.DataFrame) -> pl.DataFrame:
    """Sort rows by suspicion (:data:`SUSPICION_ORDER`), keeping columns that exist."""
    keys = [(c, d) for c, d in SUSPICION_ORDER if c in rows.columns]
    if not keys or rows.height == 0:
        return rows
    return rows.sort([c for c, _ in keys], descending=[d for _, d in keys], nulls_last=True)


def view_rows(
    rows: pl.DataFrame,
    flt: RowFilter | None = None,
    *,
    sort_by: str | None = None,
    descending: bool = True,
    hide_benign: bool = False,
    hide_confirmed: bool = False,
) -> pl.DataFrame:
    """What a flow table shows: ``rows`` filtered, with toggles applied, then sorted.

    Args:
        rows: scored rows (triage columns, optionally ``analyst_status``/``probe_status``).
        flt: a parsed filter (None: keep all).
        sort_by: a column to sort by (None: :func:`rank_rows` suspicion order); nulls
            sort last, and so do unscored flows by ``p_mining``.
        descending: direction for ``sort_by``.
        hide_benign: drop rows whose ``verdict`` is ``benign``.
        hide_confirmed: drop rows the analyst already marked ``confirmed`` or ``dismissed``.

    Raises:
        FilterError: the filter names unknown fields or mistyped values, or ``sort_by``
            is not a column.
    """
    import polars as pl

    out = rows
    if flt is not None and not flt.is_empty:
        out = out.filter(filter_expression(flt, out.schema))
    if hide_benign and "verdict" in out.columns:
        out = out.filter(pl.col("verdict").fill_null("") != "benign")
    if hide_confirmed and "analyst_status" in out.columns:
        out = out.filter(~pl.col("analyst_status").fill_null("").is_in(["confirmed", "dismissed"]))
    if sort_by is None:
        return rank_rows(out)
    if sort_by not in out.columns:
        raise FilterError(f"sort: unknown column {sort_by!r}")
    return out.sort(
        measured(sort_by, out.columns), descending=descending, nulls_last=True, maintain_order=True
    )


def sort_columns(sort_by: str, names: Sequence[str]) -> list[str]:
    """The columns :func:`view_rows` reads to sort a frame with columns ``names`` by
    ``sort_by`` (for callers that pass it a narrow frame)."""
    return measured(sort_by, names).meta.root_names()
