"""Saabas path attributions (XGBoost's ``approx_contribs``), computed here bit for bit.

XGBoost computes them one row at a time and, per tree, clears and adds a whole row of
feature contributions (267 columns x 297 trees for the shipped model) although a tree
touches only the few features on one root-to-leaf path: ~20 µs a row, the largest single
cost of ``scan`` on busy captures. The kernel below walks the same paths with the same
float32 arithmetic in the same order and adds only the path's features, so its numbers
are XGBoost's exactly (``tests/model/test_classify_saabas.py`` compares them on real
and random rows, missing values included) at a fraction of the cost.

Why the shortcut is exact: XGBoost adds each tree's contribution vector into the row's
(``row += tree * 1.0f``); for a feature off the path that adds ``+0.0``, which changes a
float32 only if it is ``-0.0``, and a sum that starts at ``+0.0`` and only ever has
numbers added to it is never ``-0.0`` under round-to-nearest.

Why the kernel is shaped as it is (measured on the bench capture's 73 k windows: 0.31 s
before, 0.23 s now): the trees fit in cache, and the walk's cost is its data-dependent
branches. So

- rows are visited grouped by the leaves they reach in the first few trees (each row
  copied to a buffer first, as the visiting order is not memory order): neighbours then
  take mostly the same branches and the branch predictor learns them (a further 4-8 %);
- a *plain* tree (no path splits twice on one feature, finite leaf values) adds each
  step's change straight into the row's sums; XGBoost sums a tree's steps per feature
  first, which is the same number when each feature occurs once on the path (``0.0 + d``
  differs from ``d`` only for ``d = -0.0``, and adding either zero to a sum that is never
  ``-0.0`` leaves it as it is) and the closing leaf-minus-itself step adds ``+0.0``. Other trees sum per feature as
  XGBoost does (-20 %; 273 of the shipped model's 297 trees are plain).

- node and feature indices are unsigned: through a signed index numba adds Python's
  negative-index fix-up (a shift, a mask and an add, with the array's size reloaded from
  the stack) to every load and store, and the walk is little else (-20 % of the kernel
  on the bench capture's 62 k distinct rows, output bit-identical).

Rejected: blocks of rows walked tree by tree as XGBoost's predictor does (1.5x slower
here, the row's trees no longer overlapping in flight), branch-free steps (slower: a predicted branch
lets the next node load start before the row's value is compared), and per-leaf path
sums (one more data-dependent loop per tree, slower).

The trees come from :mod:`minerscope.model.trees` (one output group only).
"""

from __future__ import annotations

from typing import Any

import numba
import numpy as np
import numpy.typing as npt

from minerscope.memcopy import copy_items
from minerscope.model.trees import TreeArrays, goes_left

ORDER_TREES = 8
"""Trees whose leaves order the rows (8 beat 4 and 16: a cheap key that still groups)."""


def top_contributions(
    arrays: TreeArrays, x: npt.NDArray[np.float32], k: int
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float32], npt.NDArray[np.float32]]:
    """Per row of ``x``, the ``k`` features with the largest absolute Saabas contribution
    (largest first, ties by feature order), those contributions, and the row's margin;
    slots beyond the features any path touched hold feature 0 with contribution 0.

    With ``k`` = the number of features this is every contribution (XGBoost's
    ``approx_contribs`` without its bias column), sorted; scoring asks for five and so
    never builds the rows x features matrix: a row's paths touch a few dozen features.

    The margin is XGBoost's (``predict_type="margin"``) bit for bit when
    :func:`minerscope.model.predict.supported` says so: the walk adds each tree's leaf to
    a float32 sum started at the base margin, in tree order, as XGBoost's predictor does.
    """
    if arrays.groups != 1:
        raise ValueError(f"Saabas attributions need one output group, the booster has {arrays.groups}")
    x = np.ascontiguousarray(x, dtype=np.float32)
    idx = np.zeros((x.shape[0], k), np.int64)
    val = np.zeros((x.shape[0], k), np.float32)
    base = arrays.base_margin[0] if arrays.base_margin.size else np.float32(0.0)
    margin = np.full(x.shape[0], base, np.float32)
    order = np.argsort(_leaf_codes(x, arrays.nodes, ORDER_TREES), kind="stable")
    _saabas_top(x, order, arrays.nodes, arrays.mean, idx, val, margin)
    return idx, val, margin


@numba.njit(cache=True, nogil=True)
def _saabas_top(
    x: Any, order: Any, nodes: Any, mean: Any, idx: Any, val: Any, margin: Any
) -> None:  # pragma: no cover - compiled
    start, left, right, feature, threshold, default_left = nodes
    n, n_features = x.shape
    k = idx.shape[1]
    plain = _plain_trees(nodes, mean)
    row = np.empty(n_features, np.float32)
    acc = np.zeros(n_features, np.float32)
    tree_sum = np.zeros(n_features, np.float32)
    path = np.empty(left.size, np.int64)
    touched = np.empty(n_features, np.int64)  # features the row's paths touched, first touch first
    seen = np.zeros(n_features, np.bool_)
    for i_row in range(n):
        r = order[i_row]
        copy_items(row, 0, x[r], 0, n_features)
        m = 0
        score = margin[r]
        for t in range(start.size - 1):
            # unsigned node and feature indices: numba adds a negative-index fix-up to
            # every access through a signed one (see the module doc)
            base = np.uint64(start[t])
            if left[base] < 0:  # a lone leaf only moves the bias
                score += threshold[base]
                continue
            g = base  # the node, as an index into the concatenated trees
            node_value = mean[g]
            if plain[t]:  # each step straight into the row's sums (see the module doc)
                while left[g] >= 0:
                    split = np.uint64(feature[g])
                    go_left = goes_left(row[split], threshold[g], default_left[g])
                    g = base + np.uint64(left[g] if go_left else right[g])
                    new_value = mean[g]
                    acc[split] += new_value - node_value
                    node_value = new_value
                    if not seen[split]:
                        seen[split] = True
                        touched[m] = split
                        m += 1
                score += threshold[g]  # the leaf's value
                continue
            depth = 0
            split = np.uint64(0)
            while left[g] >= 0:
                split = np.uint64(feature[g])
                go_left = goes_left(row[split], threshold[g], default_left[g])
                g = base + np.uint64(left[g] if go_left else right[g])
                new_value = mean[g]
                tree_sum[split] += new_value - node_value
                node_value = new_value
                path[depth] = split
                depth += 1
            # XGBoost's last step: the leaf value minus its own mean (both the leaf's value)
            tree_sum[split] += mean[g] - node_value
            score += threshold[g]
            for i in range(depth):
                f = np.uint64(path[i])
                acc[f] += tree_sum[f]
                tree_sum[f] = np.float32(0.0)
                if not seen[f]:
                    seen[f] = True
                    touched[m] = f
                    m += 1
        margin[r] = score
        filled = 0
        for i in range(m):
            f = touched[i]
            c = acc[f]
            acc[f] = np.float32(0.0)
            seen[f] = False
            # insert (|c| desc, feature asc) into the row's k slots
            pos = filled
            while pos > 0:
                prev = abs(val[r, pos - 1])
                if prev > abs(c) or (prev == abs(c) and idx[r, pos - 1] < f):
                    break
                pos -= 1
            if pos >= k:
                continue
            last = min(filled, k - 1)
            for j in range(last, pos, -1):
                idx[r, j] = idx[r, j - 1]
                val[r, j] = val[r, j - 1]
            idx[r, pos] = f
            val[r, pos] = c
            if filled < k:
                filled += 1


@numba.njit(cache=True, nogil=True)
def _plain_trees(nodes: Any, mean: Any) -> Any:  # pragma: no cover - compiled
    """Per tree: no root-to-leaf path splits twice on one feature and every leaf value is
    finite (then ``leaf - leaf`` is ``+0.0``). Unreachable nodes count too (conservative)."""
    start, left, right, feature, _, _ = nodes
    n_trees = start.size - 1
    plain = np.ones(n_trees, np.bool_)
    parent = np.full(left.size, -1, np.int64)
    for t in range(n_trees):
        base = start[t]
        for g in range(base, start[t + 1]):
            if left[g] >= 0:
                parent[base + left[g]] = g
                parent[base + right[g]] = g
    for t in range(n_trees):
        for g in range(start[t], start[t + 1]):
            if left[g] < 0:
                if not np.isfinite(mean[g]):
                    plain[t] = False
                continue
            up = parent[g]
            while up >= 0 and plain[t]:
                if feature[up] == feature[g]:
                    plain[t] = False
                up = parent[up]
    return plain


@numba.njit(cache=True, nogil=True)
def _leaf_codes(x: Any, nodes: Any, n_trees: int) -> Any:  # pragma: no cover - compiled
    """Per row, the low four bits of the leaf it reaches in each of the first ``n_trees``
    trees, first tree highest: sorting by it puts rows that branch alike together."""
    start, left, right, feature, threshold, default_left = nodes
    out = np.zeros(x.shape[0], np.uint64)
    for r in range(x.shape[0]):
        code = np.uint64(0)
        for t in range(min(n_trees, start.size - 1)):
            base = np.uint64(start[t])  # unsigned, as in _saabas_top
            g = base
            while left[g] >= 0:
                go_left = goes_left(x[r, np.uint64(feature[g])], threshold[g], default_left[g])
                g = base + np.uint64(left[g] if go_left else right[g])
            code = (code << np.uint64(4)) | ((g - base) & np.uint64(15))
        out[r] = code
    return out
