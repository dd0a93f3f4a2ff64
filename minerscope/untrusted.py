"""One place for hostile text: everything from a capture or a remote server passes here.

SNI values, DNS names, HTTP hosts, pool replies and even file names are chosen by the
people minerscope hunts. Before such a string reaches a terminal (Rich/Textual), a CSV
cell or a log line it is made *inert*:

* control characters (C0, C1, DEL) and the Unicode bidi overrides/isolates that can
  reorder what an analyst reads are replaced by visible escapes (``\\x1b``, ``\\u202e``);
* the length is capped, with an ellipsis marking the cut;
* CSV cells that a spreadsheet would evaluate as a formula are prefixed with ``'``.

Rich markup is *not* escaped here (this module is stdlib-only): front ends render
untrusted strings as ``rich.text.Text`` objects, never as markup strings, so ``[bold]``
in an SNI stays literal. :func:`rich_markup_escape` exists for the few places that must
build a markup string.
"""

from __future__ import annotations

import ipaddress
import re

DEFAULT_MAX_CHARS = 512
"""Default cap on untrusted strings shown to a person."""

_BIDI = "\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"
_UNSAFE_RE = re.compile("[\x00-\x1f\x7f-\x9f" + _BIDI + "\u2028\u2029\ufeff]")
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r", "\n", "\uff1d", "\uff0b", "\uff0d", "\uff20")
_MARKUP_RE = re.compile(r"(\\*)(\[[a-zA-Z#/@].*?\])")
_SURROGATE_RE = re.compile("[\ud800-\udfff]")


def _escape_char(match: re.Match[str]) -> str:
    ch = match.group(0)
    code = ord(ch)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def clean(value: object, max_chars: int = DEFAULT_MAX_CHARS) -> str:
    """Return ``value`` as a single-line, inert string of at most ``max_chars`` characters.

    Bytes are decoded as UTF-8 with invalid sequences shown as ``\\xNN``.
    """
    if value is None:
        return ""
    if isinstance(value, bytes | bytearray | memoryview):
        text = bytes(value).decode("utf-8", errors="backslashreplace")
    else:
        text = str(value)
    if len(text) > max_chars * 4:  # bound the regex work on megabyte replies
        text = text[: max_chars * 4]
    text = path_text(_UNSAFE_RE.sub(_escape_char, text))
    if len(text) > max_chars:
        text = text[: max(0, max_chars - 1)] + "…"
    return text


def path_text(name: str) -> str:
    """A file name or path as text that any UTF-8 output can carry: the bytes of a name
    that are not UTF-8 (``os.fsdecode`` keeps them as lone surrogates, which polars, SQLite
    and a UTF-8 stdout all refuse) become ``\\xNN``; every other character stays as it is."""
    if not _SURROGATE_RE.search(name):
        return name
    return _SURROGATE_RE.sub(_escape_surrogate, name)


def _escape_surrogate(match: re.Match[str]) -> str:
    code = ord(match.group(0))
    return f"\\x{code - 0xDC00:02x}" if 0xDC80 <= code <= 0xDCFF else f"\\u{code:04x}"


def csv_cell(value: object, max_chars: int = 32_767) -> str:
    """Return ``value`` as a CSV cell no spreadsheet will run as a formula.

    The guard follows OWASP's CSV-injection advice: a cell starting with ``= + - @``,
    a tab or a carriage return (or their full-width forms) gets a leading apostrophe.
    Plain numbers such as ``-1.5`` are left alone so numeric columns stay numeric.
    """
    text = clean(value, max_chars=max_chars)
    if text.startswith(_FORMULA_START) and not _is_number(text):
        return "'" + text
    return text


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def is_decimal(text: str, max_digits: int = 9) -> bool:
    """Whether ``text`` is 1 to ``max_digits`` ASCII digits, so ``int(text)`` cannot fail.

    ``str.isdigit()`` also accepts "²" or "٣" (a port typed or received as such), which
    ``int()`` then refuses with a ValueError, and thousands of digits trip ``int()``'s
    digit limit: a port, a length or a count from outside is checked with this instead.
    """
    return 0 < len(text) <= max_digits and text.isascii() and text.isdigit()


def is_ip(text: str) -> bool:
    """Whether ``text`` is an IPv4 or IPv6 literal (brackets allowed), not a host name."""
    try:
        ipaddress.ip_address(text.strip("[]"))
    except ValueError:
        return False
    return True


def rich_markup_escape(text: str) -> str:
    """Escape Rich console markup in ``text`` (the same rule as ``rich.markup.escape``)."""

    def _repl(match: re.Match[str]) -> str:
        backslashes, tag = match.groups()
        return f"{backslashes}{backslashes}\\{tag}"

    escaped = _MARKUP_RE.sub(_repl, text)
    if escaped.endswith("\\") and not escaped.endswith("\\\\"):
        escaped += "\\"
    return escaped
