"""Floats spelled exactly as Python's ``json`` spells them, each distinct value once.

Scan output is JSON built column-wise (the explanations and coin probabilities in
:mod:`minerscope.model.classify`, whole lines in :mod:`minerscope.cli.output`), and it must
be byte for byte what ``json`` writes for the same record. Only ``float.__repr__`` is sure
to give that spelling (polars writes ``0.00001`` where ``json`` writes ``1e-05``), and it
costs ~0.3 µs a value, so each distinct value is spelled once: probabilities, attributions
and packet sizes repeat a lot.
"""

from __future__ import annotations

from itertools import repeat

import numpy as np
import numpy.typing as npt


def distinct_json_numbers(
    values: npt.ArrayLike, *, digits: int | None = None
) -> tuple[list[str], npt.NDArray[np.intp]]:
    """The JSON text of each distinct value and, per value (flattened), its index among them.

    Values are told apart by their bits, so ``-0.0`` and ``0.0`` keep their own spellings;
    NaN and infinities are ``null`` (strict JSON). ``digits``: each value first rounded by
    Python's ``round(value, digits)`` (as the per-record writer rounds ``p_mining``).
    """
    flat = np.ascontiguousarray(values, dtype=np.float64).reshape(-1)
    bits, index = np.unique(flat.view(np.int64), return_inverse=True)
    distinct = bits.view(np.float64)
    if digits is not None:  # round each distinct value once, then merge those now equal
        rounded = np.array(list(map(round, distinct.tolist(), repeat(digits))), dtype=np.float64)
        bits, again = np.unique(rounded.view(np.int64), return_inverse=True)
        index, distinct = again[index], bits.view(np.float64)
    # ``map`` over a list runs the spelling in C; the few NaN/inf are overwritten after
    texts = list(map(float.__repr__, distinct.tolist()))
    for i in np.flatnonzero(~np.isfinite(distinct)).tolist():
        texts[i] = "null"
    return texts, index.reshape(-1)


def json_numbers(values: npt.NDArray[np.floating]) -> npt.NDArray[np.object_]:
    """Each number of ``values`` as JSON text, in an object array of the same shape."""
    texts, index = distinct_json_numbers(values)
    return np.array(texts, dtype=object)[index].reshape(np.shape(values))
