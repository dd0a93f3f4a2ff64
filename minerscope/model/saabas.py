"""Saabas path attributions (XGBoost's ``approx_contribs``), computed here bit for bit.

XGBoost computes them one row at a time and, per tree, clears and adds a whole row of
feature contributions (266 columns x 359 trees for the shipped model) although a tree
touches only the few features on one root-to-leaf path: ~20 µs a row, the largest single
cost of ``scan`` on busy captures. The kernel below walks the same paths with the same
float32 arithmetic in the same order and adds only the path's features, so its numbers
are XGBoost's exactly (``tests/model/test_classify_saabas.py`` compares them on real
and random rows, missing values included) at a fraction of the cost.

Why the shortcut is exact: XGBoost adds each tree's contribution vector into the row's
(``row += tree * 1.0f``); for a feature off the path that adds ``+0.0``, which changes a
float32 only if it is ``-0.0``, and a sum that starts at ``+0.0`` and only ever has
numbers added to it is never ``-0.0`` under round-to-nearest.

Only plain ``gbtree`` boosters with numerical splits and one output group are handled
(:func:`tree_arrays` returns None otherwise and the caller asks XGBoost).

The trees are read from the booster's UBJSON serialisation, where floats are stored as
float32 bytes (the JSON text would go through float64 on the way in).
"""

from __future__ import annotations

import struct
import weakref
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numba
import numpy as np
import numpy.typing as npt

if TYPE_CHECKING:
    import xgboost


@dataclass(frozen=True, slots=True)
class TreeArrays:
    """Every tree of a booster, nodes concatenated; ``start[t]`` is tree ``t``'s root."""

    start: npt.NDArray[np.int64]
    left: npt.NDArray[np.int32]
    right: npt.NDArray[np.int32]
    feature: npt.NDArray[np.int32]
    threshold: npt.NDArray[np.float32]
    default_left: npt.NDArray[np.bool_]
    mean: npt.NDArray[np.float32]
    """Cover-weighted mean leaf value under each node (XGBoost's ``FillNodeMeanValues``)."""


_CACHE: weakref.WeakKeyDictionary[Any, TreeArrays | None] = weakref.WeakKeyDictionary()


def tree_arrays(booster: xgboost.Booster) -> TreeArrays | None:
    """The booster's trees as arrays (cached per booster), or None when the kernel does not
    cover it (another booster type, categorical splits, several outputs, tree weights)."""
    try:
        return _CACHE[booster]
    except KeyError:
        pass
    arrays = _read_trees(bytes(booster.save_raw("ubj")))
    _CACHE[booster] = arrays
    return arrays


def contributions(arrays: TreeArrays, x: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    """Per row of ``x`` (rows x features, float32; NaN = missing) each feature's Saabas
    contribution, as ``booster.predict(DMatrix(x), pred_contribs=True,
    approx_contribs=True)[:, :-1]`` gives it (the bias column left out)."""
    x = np.ascontiguousarray(x, dtype=np.float32)
    out = np.zeros(x.shape, np.float32)
    _saabas(
        x,
        arrays.start,
        arrays.left,
        arrays.right,
        arrays.feature,
        arrays.threshold,
        arrays.default_left,
        arrays.mean,
        out,
    )
    return out


@numba.njit(cache=True, nogil=True)
def _saabas(
    x: Any,
    start: Any,
    left: Any,
    right: Any,
    feature: Any,
    threshold: Any,
    default_left: Any,
    mean: Any,
    out: Any,
) -> None:  # pragma: no cover - compiled
    n, n_features = x.shape
    tree_sum = np.zeros(n_features, np.float32)
    path = np.empty(left.size, np.int64)
    for r in range(n):
        row = x[r]
        acc = out[r]
        for t in range(start.size - 1):
            base = start[t]
            if left[base] < 0:  # a lone leaf only moves the bias
                continue
            node = 0
            node_value = mean[base]
            depth = 0
            split = 0
            while left[base + node] >= 0:
                split = feature[base + node]
                value = row[split]
                if np.isnan(value):
                    go_left = default_left[base + node]
                else:
                    go_left = value < threshold[base + node]
                node = left[base + node] if go_left else right[base + node]
                new_value = mean[base + node]
                tree_sum[split] += new_value - node_value
                node_value = new_value
                path[depth] = split
                depth += 1
            # XGBoost's last step: the leaf value minus its own mean (both the leaf's value)
            tree_sum[split] += mean[base + node] - node_value
            for i in range(depth):
                f = path[i]
                acc[f] += tree_sum[f]
                tree_sum[f] = np.float32(0.0)


def _read_trees(raw: bytes) -> TreeArrays | None:
    model = _UBJReader(raw).value()
    learner = model["learner"]
    booster = learner["gradient_booster"]
    if booster.get("name") != "gbtree" or int(learner["learner_model_param"].get("num_target", "1")) != 1:
        return None
    if int(learner["learner_model_param"].get("num_class", "0")) > 1:
        return None
    trees = booster["model"]["trees"]
    if any(int(g) != 0 for g in booster["model"]["tree_info"]):
        return None
    starts = [0]
    parts: dict[str, list[Any]] = {k: [] for k in ("left", "right", "feature", "threshold", "dleft", "mean")}
    for tree in trees:
        if (
            np.any(np.asarray(tree["split_type"]) != 0)
            or int(tree["tree_param"].get("size_leaf_vector", "1")) > 1
        ):
            return None
        left = np.asarray(tree["left_children"], np.int32)
        right = np.asarray(tree["right_children"], np.int32)
        cond = np.asarray(tree["split_conditions"], np.float32)
        hess = np.asarray(tree["sum_hessian"], np.float32)
        parts["left"].append(left)
        parts["right"].append(right)
        parts["feature"].append(np.asarray(tree["split_indices"], np.int32))
        parts["threshold"].append(cond)
        parts["dleft"].append(np.asarray(tree["default_left"], np.uint8).astype(bool))
        parts["mean"].append(_node_means(left, right, cond, hess))
        starts.append(starts[-1] + left.size)
    if not trees:
        return None
    return TreeArrays(
        start=np.asarray(starts, np.int64),
        left=np.concatenate(parts["left"]),
        right=np.concatenate(parts["right"]),
        feature=np.concatenate(parts["feature"]),
        threshold=np.concatenate(parts["threshold"]),
        default_left=np.concatenate(parts["dleft"]),
        mean=np.concatenate(parts["mean"]),
    )


def _node_means(
    left: npt.NDArray[np.int32],
    right: npt.NDArray[np.int32],
    leaf_value: npt.NDArray[np.float32],
    hess: npt.NDArray[np.float32],
) -> npt.NDArray[np.float32]:
    """XGBoost's node mean values, in its float32 operation order: children first, then
    ``(mean_l * hess_l + mean_r * hess_r) / hess``."""
    mean = np.zeros(left.size, np.float32)
    order: list[int] = []
    stack = [0]
    while stack:  # preorder; reversed it visits children before parents
        node = stack.pop()
        order.append(node)
        if left[node] >= 0:
            stack.extend((int(left[node]), int(right[node])))
    for node in reversed(order):
        lc, rc = int(left[node]), int(right[node])
        if lc < 0:
            mean[node] = leaf_value[node]
        else:
            total = mean[lc] * hess[lc]
            total = np.float32(total + mean[rc] * hess[rc])
            mean[node] = np.float32(total / hess[node])
    return mean


class _UBJReader:
    """Just enough UBJSON (draft 12, as XGBoost writes it) to read a model back: typed
    numeric arrays become numpy arrays (big-endian in the file), the rest Python values."""

    _SCALARS = {
        ord("i"): ("b", 1),
        ord("U"): ("B", 1),
        ord("I"): ("h", 2),
        ord("l"): ("i", 4),
        ord("L"): ("q", 8),
        ord("d"): ("f", 4),
        ord("D"): ("d", 8),
    }
    _DTYPES = {
        ord("i"): ">i1",
        ord("U"): ">u1",
        ord("I"): ">i2",
        ord("l"): ">i4",
        ord("L"): ">i8",
        ord("d"): ">f4",
        ord("D"): ">f8",
    }

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def _marker(self) -> int:
        marker = self.data[self.pos]
        self.pos += 1
        return marker

    def _scalar(self, marker: int) -> Any:
        fmt, size = self._SCALARS[marker]
        (value,) = struct.unpack_from(">" + fmt, self.data, self.pos)
        self.pos += size
        return value

    def _length(self) -> int:
        return int(self._scalar(self._marker()))

    def _string(self) -> str:
        n = self._length()
        text = self.data[self.pos : self.pos + n].decode()
        self.pos += n
        return text

    def value(self, marker: int | None = None) -> Any:
        marker = self._marker() if marker is None else marker
        if marker in self._SCALARS:
            return self._scalar(marker)
        if marker == ord("S"):
            return self._string()
        if marker == ord("{"):
            obj: dict[str, Any] = {}
            while self.data[self.pos] != ord("}"):
                key = self._string()
                obj[key] = self.value()
            self.pos += 1
            return obj
        if marker == ord("["):
            return self._array()
        if marker == ord("T"):
            return True
        if marker == ord("F"):
            return False
        if marker == ord("Z"):
            return None
        raise ValueError(f"UBJSON marker {chr(marker)!r} at byte {self.pos - 1} not understood")

    def _array(self) -> Any:
        item_type = None
        if self.data[self.pos] == ord("$"):
            self.pos += 1
            item_type = self._marker()
        count = None
        if self.data[self.pos] == ord("#"):
            self.pos += 1
            count = self._length()
        if item_type is not None:
            assert count is not None  # UBJSON: a typed array always has a count
            if item_type in self._DTYPES:
                dtype = np.dtype(self._DTYPES[item_type])
                arr = np.frombuffer(self.data, dtype, count, self.pos)
                self.pos += count * dtype.itemsize
                return arr.astype(dtype.newbyteorder("="))
            return [self.value(item_type) for _ in range(count)]
        if count is not None:
            return [self.value() for _ in range(count)]
        items = []
        while self.data[self.pos] != ord("]"):
            items.append(self.value())
        self.pos += 1
        return items
