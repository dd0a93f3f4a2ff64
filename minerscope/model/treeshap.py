"""Exact TreeSHAP attributions (XGBoost's ``pred_contribs``), computed here bit for bit.

Scoring explains its likely-mining windows with exact SHAP values; XGBoost computes them
at ~100 µs a row with the shipped model (a lab capture is mostly such windows). The kernel below runs the same
path-dependent TreeSHAP as XGBoost's CPU predictor (Lundberg et al.: extend the path of
unique features at every node, unwind a feature seen again, and at a leaf credit each
feature with its unwound path weight), with the same float32 operations in the same order
and the same depth-first visiting order (the branch the row takes first, then the other),
so its numbers are XGBoost's exactly (``tests/model/test_treeshap.py`` compares the bits
on real windows, missing values and values on thresholds included).

The recursion is unrolled into an explicit stack: a node's path segment stays untouched
while its first child's subtree runs (deeper segments sit above it in the same buffer),
so the second child copies the same path XGBoost's recursive call would see.

Like XGBoost, each tree's contributions are summed into a cleared per-tree vector that is
then added into the row, tree by tree; only the tree's split features are added (one a
tree does not split on would add ``+0.0``, which changes nothing: see
:mod:`minerscope.model.saabas`). A tree's values depend on the row only through the branch
it takes at each split, and windows agree on most: rows with the same branches share one
computation per tree (on the sample capture's 381 distinct windows ~31 branch patterns a
tree, 26 vs XGBoost's 100 µs a row; a lone row ~110 vs 550 µs with the DMatrix).
The trees come from :mod:`minerscope.model.trees` (one output group only).
"""

from __future__ import annotations

from typing import Any

import numba
import numpy as np
import numpy.typing as npt

from minerscope.model.trees import TreeArrays, goes_left


def contributions(arrays: TreeArrays, x: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    """Per row of ``x`` (rows x features, float32; NaN = missing) each feature's exact SHAP
    value, as ``booster.predict(DMatrix(x), pred_contribs=True)[:, :-1]`` gives it (the bias
    column left out)."""
    if arrays.groups != 1:
        raise ValueError(f"TreeSHAP attributions need one output group, the booster has {arrays.groups}")
    x = np.ascontiguousarray(x, dtype=np.float32)
    out = np.zeros(x.shape, np.float32)
    depth = _max_depth(arrays.start, arrays.left, arrays.right)
    _treeshap(x, arrays.nodes, arrays.cover, depth, out)
    return out


@numba.njit(cache=True, nogil=True)
def _max_depth(start: Any, left: Any, right: Any) -> int:  # pragma: no cover - compiled
    """The deepest leaf's depth over all trees (a lone root leaf is depth 0)."""
    deepest = 0
    nodes = np.empty(left.size + 1, np.int64)
    depths = np.empty(left.size + 1, np.int64)
    for t in range(start.size - 1):
        base = start[t]
        nodes[0] = 0
        depths[0] = 0
        top = 0
        while top >= 0:
            node = base + nodes[top]
            depth = depths[top]
            top -= 1
            if left[node] < 0:
                deepest = max(deepest, depth)
                continue
            for child in (left[node], right[node]):
                top += 1
                nodes[top] = child
                depths[top] = depth + 1
    return deepest


@numba.njit(cache=True, nogil=True, inline="always")
def _extend(
    feat: Any,
    zero: Any,
    one: Any,
    weight: Any,
    seg: int,
    d: int,
    zero_fraction: Any,
    one_fraction: Any,
    feature: int,
) -> None:  # pragma: no cover - compiled
    """Add a feature at position ``d`` of the path segment starting at ``seg``."""
    feat[seg + d] = feature
    zero[seg + d] = zero_fraction
    one[seg + d] = one_fraction
    weight[seg + d] = np.float32(1.0) if d == 0 else np.float32(0.0)
    size = np.float32(d + 1)
    for i in range(d - 1, -1, -1):
        weight[seg + i + 1] += one_fraction * weight[seg + i] * np.float32(i + 1) / size
        weight[seg + i] = zero_fraction * weight[seg + i] * np.float32(d - i) / size


@numba.njit(cache=True, nogil=True, inline="always")
def _unwind(
    feat: Any, zero: Any, one: Any, weight: Any, seg: int, d: int, index: int
) -> None:  # pragma: no cover - compiled
    """Take the feature at ``index`` back off a path of depth ``d``."""
    one_fraction = one[seg + index]
    zero_fraction = zero[seg + index]
    next_one = weight[seg + d]
    size = np.float32(d + 1)
    for i in range(d - 1, -1, -1):
        if one_fraction != 0:
            tmp = weight[seg + i]
            weight[seg + i] = next_one * size / (np.float32(i + 1) * one_fraction)
            next_one = tmp - weight[seg + i] * zero_fraction * np.float32(d - i) / size
        else:
            weight[seg + i] = (weight[seg + i] * size) / (zero_fraction * np.float32(d - i))
    for i in range(index, d):
        feat[seg + i] = feat[seg + i + 1]
        zero[seg + i] = zero[seg + i + 1]
        one[seg + i] = one[seg + i + 1]


@numba.njit(cache=True, nogil=True, inline="always")
def _unwound_sum(
    zero: Any, one: Any, weight: Any, seg: int, d: int, index: int, share: Any
) -> Any:  # pragma: no cover - compiled
    """The path's total weight were the feature at ``index`` unwound (``share[d, i]`` is
    XGBoost's ``(d - i) / (d + 1)``, the same float32 division done once)."""
    one_fraction = one[seg + index]
    zero_fraction = zero[seg + index]
    next_one = weight[seg + d]
    size = np.float32(d + 1)
    total = np.float32(0.0)
    for i in range(d - 1, -1, -1):
        if one_fraction != 0:
            tmp = next_one * size / (np.float32(i + 1) * one_fraction)
            total += tmp
            next_one = weight[seg + i] - tmp * zero_fraction * share[d, i]
        elif zero_fraction != 0:
            total += (weight[seg + i] / zero_fraction) / share[d, i]
    return total


_MIX = np.uint64(0x9E3779B97F4A7C15)  # Fibonacci hashing of the branch keys
_MEMO_SPLITS = 63
"""Trees with more splits than bits in a key are computed for every row."""


@numba.njit(cache=True, nogil=True)
def _treeshap(
    x: Any, nodes: Any, cover: Any, max_depth: int, out: Any
) -> None:  # pragma: no cover - compiled
    start, left, right, feature, threshold, default_left = nodes
    n, n_features = x.shape
    tree_phi = np.zeros(n_features, np.float32)
    slots = (max_depth + 2) * (max_depth + 3) // 2  # path segments of every depth, stacked
    path_feature = np.full(slots, -1, np.int64)
    path_zero = np.zeros(slots, np.float32)
    path_one = np.zeros(slots, np.float32)
    path_weight = np.zeros(slots, np.float32)
    share = np.zeros((max_depth + 2, max_depth + 2), np.float32)
    for d in range(max_depth + 2):
        for i in range(d):
            share[d, i] = np.float32(d - i) / np.float32(d + 1)
    # pending nodes: node, unique depth, parent's path segment, parent's split feature;
    # and the zero and one fractions the node extends the path with
    stack = np.empty((max_depth + 2, 4), np.int64)
    fractions = np.empty((max_depth + 2, 2), np.float32)
    # Rows that take the same branch at every split of a tree get the same values from
    # it: the first computes them, the others reuse them (keyed by the branches taken).
    seen = np.zeros(n_features, np.bool_)
    features = np.empty(n_features, np.int64)
    width = min(n_features, _MEMO_SPLITS) if n > 1 else 0
    stored = np.empty((n, width), np.float32)
    bits = 1
    while (1 << bits) < 2 * n:
        bits += 1
    mask = (1 << bits) - 1
    slot_key = np.zeros(mask + 1, np.int64)
    slot_group = np.full(mask + 1, -1, np.int64)
    group_slot = np.empty(n, np.int64)
    for t in range(start.size - 1):
        base = start[t]
        size = start[t + 1] - base
        ub = np.uint64(base)  # unsigned node indices: no negative-index fix-up per access
        if left[ub] < 0:  # a lone leaf only moves the bias
            continue
        n_used = 0  # the tree's split features, each once
        splits = 0
        for node in range(size):
            if left[base + node] >= 0:
                splits += 1
                f = feature[base + node]
                if not seen[f]:
                    seen[f] = True
                    features[n_used] = f
                    n_used += 1
        for k in range(n_used):
            seen[features[k]] = False
        memo = n > 1 and splits <= _MEMO_SPLITS
        groups = 0
        for r in range(n):
            if memo:
                key = 0
                bit = 0
                for node in range(size):
                    gn = ub + np.uint64(node)
                    if left[gn] >= 0:
                        if goes_left(x[r, np.uint64(feature[gn])], threshold[gn], default_left[gn]):
                            key |= 1 << bit
                        bit += 1
                h = np.int64((np.uint64(key) * _MIX) >> np.uint64(64 - bits))
                while slot_group[h] >= 0 and slot_key[h] != key:
                    h = (h + 1) & mask
                g = slot_group[h]
                if g >= 0:
                    for k in range(n_used):
                        out[r, features[k]] += stored[g, k]
                    continue
                slot_key[h] = key
                slot_group[h] = groups
                group_slot[groups] = h
            # XGBoost's recursive TreeShap, depth first, the row's own branch first
            top = 0
            stack[0, 0] = 0
            stack[0, 1] = 0
            stack[0, 2] = 0
            stack[0, 3] = -1
            fractions[0, 0] = np.float32(1.0)
            fractions[0, 1] = np.float32(1.0)
            while top >= 0:
                node = stack[top, 0]
                d = stack[top, 1]
                parent = stack[top, 2]
                seg = parent + d + 1
                for i in range(d):  # the parent's path; slot d is written by the extension
                    path_feature[seg + i] = path_feature[parent + i]
                    path_zero[seg + i] = path_zero[parent + i]
                    path_one[seg + i] = path_one[parent + i]
                    path_weight[seg + i] = path_weight[parent + i]
                _extend(
                    path_feature,
                    path_zero,
                    path_one,
                    path_weight,
                    seg,
                    d,
                    fractions[top, 0],
                    fractions[top, 1],
                    stack[top, 3],
                )
                top -= 1
                gn = ub + np.uint64(node)
                if left[gn] < 0:
                    leaf = threshold[gn]
                    for i in range(1, d + 1):
                        w = _unwound_sum(path_zero, path_one, path_weight, seg, d, i, share)
                        tree_phi[path_feature[seg + i]] += w * (path_one[seg + i] - path_zero[seg + i]) * leaf
                    continue
                split = feature[gn]
                go_left = goes_left(x[r, np.uint64(split)], threshold[gn], default_left[gn])
                hot = left[gn] if go_left else right[gn]
                cold = right[gn] if go_left else left[gn]
                w = cover[gn]
                hot_zero = cover[ub + np.uint64(hot)] / w
                cold_zero = cover[ub + np.uint64(cold)] / w
                incoming_zero = np.float32(1.0)
                incoming_one = np.float32(1.0)
                index = 0
                while index <= d and path_feature[seg + index] != split:
                    index += 1
                if index <= d:
                    incoming_zero = path_zero[seg + index]
                    incoming_one = path_one[seg + index]
                    _unwind(path_feature, path_zero, path_one, path_weight, seg, d, index)
                    d -= 1
                top += 1  # the other branch waits while the row's own branch runs
                stack[top, 0] = cold
                stack[top, 1] = d + 1
                stack[top, 2] = seg
                stack[top, 3] = split
                fractions[top, 0] = cold_zero * incoming_zero
                fractions[top, 1] = np.float32(0.0)
                top += 1
                stack[top, 0] = hot
                stack[top, 1] = d + 1
                stack[top, 2] = seg
                stack[top, 3] = split
                fractions[top, 0] = hot_zero * incoming_zero
                fractions[top, 1] = incoming_one
            for k in range(n_used):
                f = features[k]
                if memo:
                    stored[groups, k] = tree_phi[f]
                out[r, f] += tree_phi[f]
                tree_phi[f] = np.float32(0.0)
            if memo:
                groups += 1
        for g in range(groups):
            slot_group[group_slot[g]] = -1
