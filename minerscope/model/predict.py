"""XGBoost's predictions of the boosters minerscope trains, computed here bit for bit.

Why not ask XGBoost: its prediction of every window cost ~0.2 CPU s of a 2M-packet scan,
while the Saabas kernel that names each window's top features walks the same rows down
the same trees anyway (:func:`minerscope.model.saabas.top_contributions` adds the leaves
up on the way): scoring plus explanations went from 0.62 to 0.48 CPU s there. A scan
process then never loads xgboost (~10 MB of resident memory; its import itself is cheap
once scipy is loaded). A numba walk for prediction alone was measured no faster than
XGBoost's blocked predictor (see :mod:`minerscope.model.trees`), so the standalone
:func:`margins` here serves the few rows that get a coin, not every window.

Exact, not close: XGBoost starts each row's float32 margin at the base margin and adds the
leaf of every tree of the row's output group in tree order; its logistic transform is
``1.0f / (expf(min(-x, 88.7f)) + 1.0f + 1e-16f)`` and its softmax subtracts the row's
``fmaxf`` maximum, sums the ``expf`` values in a double and divides each by that sum cast
to float (``src/common/math.h``). The same operations in the same float types give the
same bits: compared with XGBoost 3.2 on every window of the bench capture and the real
captures, and by ``tests/model/test_predict.py`` (which also covers a base score other
than 0.5 and rows with missing values).

Only the two objectives minerscope trains are covered; for another, :func:`supported`
says no and the caller asks XGBoost.
"""

from __future__ import annotations

from typing import Any

import numba
import numpy as np
import numpy.typing as npt

from minerscope.model.trees import TreeArrays, goes_left

OBJECTIVES = ("binary:logistic", "multi:softprob")


def supported(arrays: TreeArrays | None) -> bool:
    """Whether :func:`probabilities` gives XGBoost's numbers for this booster."""
    return arrays is not None and arrays.objective in OBJECTIVES and arrays.base_margin.size == arrays.groups


def margins(arrays: TreeArrays, x: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    """Per row of ``x`` and output group, XGBoost's raw margin (``predict_type="margin"``)."""
    x = np.ascontiguousarray(x, dtype=np.float32)
    out = np.empty((x.shape[0], arrays.groups), np.float32)
    _margins(x, arrays.nodes, arrays.group, arrays.base_margin, out)
    return out


def probabilities(arrays: TreeArrays, margin: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    """XGBoost's output transform of ``margin`` (rows x groups, or one value a row for one
    group): P(class 1) for the logistic objective, one row of class probabilities for softprob."""
    if not supported(arrays):
        raise ValueError(f"no exact transform for objective {arrays.objective!r}")
    m = np.ascontiguousarray(margin, dtype=np.float32)
    if arrays.objective == "binary:logistic":
        out: npt.NDArray[np.float32] = _sigmoid(m.reshape(-1))
    else:
        out = _softmax(m.reshape(-1, arrays.groups))
    return out


def predict(arrays: TreeArrays, x: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    """XGBoost's ``inplace_predict(x)``: one probability a row for the logistic objective,
    rows x classes for softprob."""
    return probabilities(arrays, margins(arrays, x))


@numba.njit(cache=True, nogil=True)
def _margins(x: Any, nodes: Any, group: Any, base: Any, out: Any) -> None:  # pragma: no cover - compiled
    start, left, right, feature, threshold, default_left = nodes
    for r in range(x.shape[0]):
        for g in range(base.size):
            out[r, g] = base[g]
        for t in range(start.size - 1):
            b = np.uint64(start[t])  # unsigned indices: no negative-index fix-up per access
            node = b
            while left[node] >= 0:
                value = x[r, np.uint64(feature[node])]
                go_left = goes_left(value, threshold[node], default_left[node])
                node = b + np.uint64(left[node] if go_left else right[node])
            out[r, group[t]] += threshold[node]  # a leaf's "split condition" is its value


@numba.njit(cache=True, nogil=True)
def _sigmoid(m: Any) -> Any:  # pragma: no cover - compiled
    out = np.empty(m.size, np.float32)
    one, cap, eps = np.float32(1.0), np.float32(88.7), np.float32(1e-16)
    for i in range(m.size):
        z = cap if cap < -m[i] else -m[i]  # std::min(-x, 88.7f): guards expf, passes NaN
        out[i] = one / (np.exp(z) + one + eps)
    return out


@numba.njit(cache=True, nogil=True)
def _softmax(m: Any) -> Any:  # pragma: no cover - compiled
    out = np.empty_like(m)
    for i in range(m.shape[0]):
        top = m[i, 0]
        for j in range(1, m.shape[1]):  # fmaxf: a NaN loses to a number
            v = m[i, j]
            if np.isnan(top) or v > top:
                top = v
        total = 0.0  # a double, as in XGBoost
        for j in range(m.shape[1]):
            e = np.exp(m[i, j] - top)
            out[i, j] = e
            total += e
        scale = np.float32(total)
        for j in range(m.shape[1]):
            out[i, j] = out[i, j] / scale
    return out
