# mypy: disable-error-code="no-untyped-def"
"""Each flow's top features as JSON text, assembled by a compiled kernel.

Scan output carries, for every flow, a list of ``{"name":..,"contribution":..,"value":..}``
spelled as Python's ``json`` spells it (see :mod:`minerscope.jsonfloat`). Built with
polars expressions (a ``concat_str`` of seven pieces per entry, five entries, each piece
a Series made from a Python list) it cost ~0.1 CPU s for the 56 k flows of the 2 M-packet
bench capture, as much as reading the capture's first half. Here the numbers are still
spelled by ``float.__repr__`` (once per distinct value), and one pass writes every row's
text into one byte buffer, rows separated by newlines (JSON text never holds a raw one),
which polars then splits into the column.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Sequence

import numba
import numpy as np
import numpy.typing as npt
import polars as pl

from minerscope.jsonfloat import distinct_json_numbers
from minerscope.memcopy import copy_items

U8 = npt.NDArray[np.uint8]
I64 = npt.NDArray[np.int64]

_NAME = np.frombuffer(b'{"name":', np.uint8)
_CONTRIBUTION = np.frombuffer(b',"contribution":', np.uint8)
_VALUE = np.frombuffer(b',"value":', np.uint8)


def packed(texts: Sequence[str]) -> tuple[U8, I64]:
    """ASCII ``texts`` as one byte buffer and the offsets that cut it (``len(texts) + 1``)."""
    offsets = np.zeros(len(texts) + 1, np.int64)
    np.cumsum([len(t) for t in texts], out=offsets[1:])
    return np.frombuffer("".join(texts).encode("ascii"), np.uint8), offsets


@functools.lru_cache(maxsize=8)
def _quoted_names(names: tuple[str, ...]) -> tuple[U8, I64]:
    return packed([json.dumps(name) for name in names])  # ensure_ascii: always ASCII


def top_feature_lists(
    names: tuple[str, ...],
    order: npt.NDArray[np.intp],
    contribs: npt.NDArray[np.float64],
    values: npt.NDArray[np.float64],
) -> pl.Series:
    """Per row, the JSON list of its ``order[row]`` features (names from ``names``) with
    their contributions and values; entries whose contribution is 0.0 are left out (a
    feature no tree used explains nothing). A Utf8 Series named ``top_features``."""
    n, k = order.shape
    if n == 0:
        return pl.Series("top_features", [], pl.Utf8)
    name_bytes, name_offsets = _quoted_names(names)
    c_texts, c_index = distinct_json_numbers(contribs)
    v_texts, v_index = distinct_json_numbers(values)
    c_bytes, c_offsets = packed(c_texts)
    v_bytes, v_offsets = packed(v_texts)
    text = _write_lists(
        np.ascontiguousarray(order, np.int64),
        np.ascontiguousarray(contribs == 0.0),
        c_index.reshape(n, k).astype(np.int64),
        v_index.reshape(n, k).astype(np.int64),
        name_bytes,
        name_offsets,
        c_bytes,
        c_offsets,
        v_bytes,
        v_offsets,
        _NAME,
        _CONTRIBUTION,
        _VALUE,
    )
    return pl.Series("top_features", [text.tobytes().decode("ascii")]).str.split("\n").explode()


@numba.njit(cache=True, nogil=True, inline="always")
def _put(out, at, src, start, stop):  # pragma: no cover - compiled
    """``src[start:stop]`` written at ``out[at]``; the position after it."""
    copy_items(out, at, src, start, stop - start)
    return at + stop - start


@numba.njit(cache=True, nogil=True)
def _write_lists(
    order, skip, c_index, v_index, names, name_off, c_text, c_off, v_text, v_off, p_name, p_contrib, p_value
):  # pragma: no cover - compiled
    """Every row's ``[{...},...]`` text, rows joined by ``\\n``, as bytes (two passes:
    the exact length, then the writing)."""
    n, k = order.shape
    fixed = p_name.size + p_contrib.size + p_value.size + 2  # the pieces, "}" and ","
    total = 0
    for r in range(n):
        total += 3  # "[", "]", "\n" (the last row's newline is not written)
        for j in range(k):
            if skip[r, j]:
                continue
            f, c, v = order[r, j], c_index[r, j], v_index[r, j]
            total += fixed + name_off[f + 1] - name_off[f] + c_off[c + 1] - c_off[c] + v_off[v + 1] - v_off[v]
    out = np.empty(total, np.uint8)  # an upper bound: every entry counted with a comma
    at = 0
    for r in range(n):
        if r:
            out[at] = 10  # "\n"
            at += 1
        out[at] = 91  # "["
        at += 1
        first = True
        for j in range(k):
            if skip[r, j]:
                continue
            if not first:
                out[at] = 44  # ","
                at += 1
            first = False
            f, c, v = order[r, j], c_index[r, j], v_index[r, j]
            at = _put(out, at, p_name, 0, p_name.size)
            at = _put(out, at, names, name_off[f], name_off[f + 1])
            at = _put(out, at, p_contrib, 0, p_contrib.size)
            at = _put(out, at, c_text, c_off[c], c_off[c + 1])
            at = _put(out, at, p_value, 0, p_value.size)
            at = _put(out, at, v_text, v_off[v], v_off[v + 1])
            out[at] = 125  # "}"
            at += 1
        out[at] = 93  # "]"
        at += 1
    return out[:at]
