"""A booster's trees as flat arrays, read from XGBoost's own UBJSON.

The attribution kernels (:mod:`minerscope.model.saabas`, :mod:`minerscope.model.treeshap`)
walk XGBoost's trees themselves: XGBoost computes attributions one row at a time over
whole rows of features, and that was the largest cost of ``scan``. Prediction stays
XGBoost's (its blocked predictor beat a numba walk of these arrays: 0.21 vs 0.22-0.36 s
for 73 k windows of the binary model, 0.39 vs 0.54 s for the coin model).

Only plain ``gbtree`` boosters with numerical splits and one target are read
(:func:`tree_arrays` returns None otherwise and the caller asks XGBoost). The trees come
from the booster's UBJSON serialisation, where floats are stored as float32 bytes (the
JSON text would go through float64 on the way in).
"""

from __future__ import annotations

import struct
import weakref
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

if TYPE_CHECKING:
    import xgboost


@dataclass(frozen=True, slots=True)
class TreeArrays:
    """Every tree of a booster, nodes concatenated; ``start[t]`` is tree ``t``'s root.

    A node is a leaf when ``left < 0``; a leaf's ``threshold`` is its value (XGBoost keeps
    both in ``split_conditions``).
    """

    start: npt.NDArray[np.int64]
    left: npt.NDArray[np.int32]
    right: npt.NDArray[np.int32]
    feature: npt.NDArray[np.int32]
    threshold: npt.NDArray[np.float32]
    default_left: npt.NDArray[np.bool_]
    cover: npt.NDArray[np.float32]
    """Sum of hessians under each node (TreeSHAP's weights)."""
    mean: npt.NDArray[np.float32]
    """Cover-weighted mean leaf value under each node (XGBoost's ``FillNodeMeanValues``)."""
    group: npt.NDArray[np.int32]
    """Output group (class) of each tree."""
    groups: int

    @property
    def nodes(self) -> tuple[Any, ...]:
        """``(start, left, right, feature, threshold, default_left)``: what a kernel needs
        to walk a row down every tree, as one argument (numba takes the tuple as is)."""
        return (self.start, self.left, self.right, self.feature, self.threshold, self.default_left)


_CACHE: weakref.WeakKeyDictionary[Any, TreeArrays | None] = weakref.WeakKeyDictionary()


def tree_arrays(booster: xgboost.Booster) -> TreeArrays | None:
    """The booster's trees as arrays (cached per booster), or None when the kernels do not
    cover it (another booster type, categorical splits, several targets). Like XGBoost's
    ``Booster.predict``, every tree counts (a ``best_iteration`` attribute cuts nothing)."""
    try:
        return _CACHE[booster]
    except KeyError:
        pass
    arrays = read_trees(bytes(booster.save_raw("ubj")))
    _CACHE[booster] = arrays
    return arrays


def read_trees(raw: bytes) -> TreeArrays | None:
    """The trees of a UBJSON model (``Booster.save_raw("ubj")``), or None (see module doc)."""
    model = _UBJReader(raw).value()
    learner = model["learner"]
    booster = learner["gradient_booster"]
    param = learner["learner_model_param"]
    if booster.get("name") != "gbtree" or int(param.get("num_target", "1")) != 1:
        return None
    trees = booster["model"]["trees"]
    if not trees:
        return None
    groups = max(1, int(param.get("num_class", "0")))
    starts = [0]
    parts: dict[str, list[Any]] = {
        k: [] for k in ("left", "right", "feature", "threshold", "dleft", "cover", "mean")
    }
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
        parts["cover"].append(hess)
        parts["mean"].append(_node_means(left, right, cond, hess))
        starts.append(starts[-1] + left.size)
    return TreeArrays(
        start=np.asarray(starts, np.int64),
        left=np.concatenate(parts["left"]),
        right=np.concatenate(parts["right"]),
        feature=np.concatenate(parts["feature"]),
        threshold=np.concatenate(parts["threshold"]),
        default_left=np.concatenate(parts["dleft"]),
        cover=np.concatenate(parts["cover"]),
        mean=np.concatenate(parts["mean"]),
        group=np.asarray(booster["model"]["tree_info"], np.int32),
        groups=groups,
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
