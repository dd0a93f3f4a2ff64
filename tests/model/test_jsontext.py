"""Top features as JSON text: byte for byte what ``json.dumps`` writes for the same lists."""

from __future__ import annotations

import json
import math

import numpy as np

from minerscope.model.jsontext import top_feature_lists


def _reference(
    names: tuple[str, ...], order: np.ndarray, contribs: np.ndarray, values: np.ndarray
) -> list[str]:
    def number(v: float) -> float | None:
        return v if math.isfinite(v) else None  # strict JSON: no NaN

    out = []
    for r in range(order.shape[0]):
        entries = [
            {"name": names[f], "contribution": number(float(c)), "value": number(float(v))}
            for f, c, v in zip(order[r], contribs[r], values[r], strict=True)
            if c != 0.0
        ]
        out.append(json.dumps(entries, separators=(",", ":")))
    return out


def test_lists_are_spelled_as_json_dumps_spells_them() -> None:
    names = ("c2s_size_mean_bytes", 'odd "quoted"\\name', "ünïcode", "newline\nname", "plain")
    rng = np.random.default_rng(3)
    order = rng.integers(0, len(names), (200, 5)).astype(np.intp)
    contribs = rng.standard_normal((200, 5))
    values = rng.standard_normal((200, 5)) * 1e6
    contribs[::7, 2] = 0.0  # left out
    contribs[::11] = 0.0  # a whole row left out: "[]"
    contribs[5, 1] = -0.0  # equal to 0.0: left out as well
    values[::3, 0] = np.nan  # null
    values[4, 4] = -np.inf
    values[6, 3] = -0.0  # keeps its sign, as json does
    values[8, 1] = 1e-05  # json's spelling, not polars' 0.00001
    got = top_feature_lists(names, order, contribs, values)
    assert got.name == "top_features" and got.len() == 200
    assert got.to_list() == _reference(names, order, contribs, values)
    assert got[11] == "[]" and '"value":-0.0' in got[6] and '"value":1e-05' in got[8]


def test_no_rows_is_an_empty_text_column() -> None:
    got = top_feature_lists(("a",), np.zeros((0, 1), np.intp), np.zeros((0, 1)), np.zeros((0, 1)))
    assert got.len() == 0 and str(got.dtype) == "String"
