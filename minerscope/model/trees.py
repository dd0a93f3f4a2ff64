"""A booster's trees as flat arrays, read from XGBoost's own UBJSON.

The attribution kernels (:mod:`minerscope.model.saabas`, :mod:`minerscope.model.treeshap`)
walk XGBoost's trees themselves: XGBoost computes attributions one row at a time over
whole rows of features, and that was the largest cost of ``scan``. Prediction on its own
is no faster here (XGBoost's blocked predictor beat a numba walk of these arrays: 0.21 vs
0.22-0.36 s for 73 k windows of the binary model, 0.39 vs 0.54 s for the coin model), so
:mod:`minerscope.model.predict` adds the leaves up inside the Saabas walk scoring makes
anyway; the objective and the base margin are read here for that.

Only plain ``gbtree`` boosters with numerical splits and one target are read
(:func:`read_trees` returns None otherwise and the caller asks XGBoost). The trees come
from the booster's UBJSON serialisation, where floats are stored as float32 bytes (the
JSON text would go through float64 on the way in).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import numba
import numpy as np
import numpy.typing as npt


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
    objective: str = ""
    """XGBoost's objective name (``binary:logistic``, ``multi:softprob``, ...)."""
    n_features: int = 0
    """Input columns the booster was trained on (``num_feature``)."""
    base_margin: npt.NDArray[np.float32] = field(default_factory=lambda: np.zeros(0, np.float32))
    """Per output group, the margin every row starts from (empty when not known: see
    :func:`minerscope.model.predict.supported`)."""

    @property
    def nodes(self) -> tuple[Any, ...]:
        """``(start, left, right, feature, threshold, default_left)``: what a kernel needs
        to walk a row down every tree, as one argument (numba takes the tuple as is)."""
        return (self.start, self.left, self.right, self.feature, self.threshold, self.default_left)


_TREE_COLUMNS = (
    "left_children",
    "right_children",
    "split_indices",
    "split_conditions",
    "default_left",
    "sum_hessian",
)
"""Per-node arrays of a tree that the kernels read, in :class:`TreeArrays` order."""


class _Span(NamedTuple):
    """A typed numeric UBJSON array left where it is in the file: ``length`` items of numpy
    type ``dtype`` (big-endian) from byte ``offset``. A model holds ~15 such arrays per
    tree, and the kernels read six: each of those columns is copied out of the file once
    for all trees, and the others are never converted (with the reader's inlining, reading
    the shipped model's trees went from 0.118 to 0.085 CPU s, best of 30)."""

    dtype: str
    offset: int
    length: int


def _count(piece: Any) -> int:
    return piece.length if isinstance(piece, _Span) else len(piece)


def _materialize(raw: bytes, piece: Any, dtype: Any = None) -> npt.NDArray[Any]:
    """One array value of the document (a :class:`_Span` or a plain list) as numpy."""
    if isinstance(piece, _Span):
        arr = np.frombuffer(raw, piece.dtype, piece.length, piece.offset)
        return arr.astype(dtype if dtype is not None else arr.dtype.newbyteorder("="))
    return np.asarray(piece, dtype)


def _concatenate(raw: bytes, pieces: list[Any], dtype: Any) -> npt.NDArray[Any]:
    """One column of every tree as one array: a single copy out of the file when every tree
    stores it as a typed array of one type (as XGBoost writes it), else piece by piece."""
    first = pieces[0]
    if isinstance(first, _Span) and all(isinstance(p, _Span) and p.dtype == first.dtype for p in pieces):
        size = np.dtype(first.dtype).itemsize
        joined = b"".join([raw[p.offset : p.offset + p.length * size] for p in pieces])
        return np.frombuffer(joined, first.dtype).astype(dtype)
    parts = [_materialize(raw, piece, dtype) for piece in pieces]
    if any(part.ndim != 1 for part in parts):
        raise ValueError("a tree's node array is not a flat list")
    return np.concatenate(parts)


def read_trees(raw: bytes) -> TreeArrays | None:
    """The trees of a UBJSON model (``Booster.save_raw("ubj")``), or None when the kernels
    do not cover it (another booster type, categorical splits, several targets). Like
    XGBoost's ``Booster.predict``, every tree counts (a ``best_iteration`` attribute cuts
    nothing). :class:`minerscope.model.artifact.BoosterFile` keeps them with a model.

    Raises:
        ValueError, KeyError, IndexError, TypeError: the bytes are no sound model.
    """
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
    columns: dict[str, list[Any]] = {key: [] for key in _TREE_COLUMNS}
    for tree in trees:
        if (
            np.any(_materialize(raw, tree["split_type"]) != 0)
            or int(tree["tree_param"].get("size_leaf_vector", "1")) > 1
        ):
            return None
        for key in _TREE_COLUMNS:
            columns[key].append(tree[key])
    sizes = np.asarray([_count(piece) for piece in columns["left_children"]], np.int64)
    for key in _TREE_COLUMNS:
        bad = next(
            (t for t, piece in enumerate(columns[key]) if _count(piece) != sizes[t] or sizes[t] == 0), None
        )
        if bad is not None:
            raise ValueError(f"tree {bad}: node arrays of different lengths, or no node")
    left, right, feature = (_concatenate(raw, columns[key], np.int32) for key in _TREE_COLUMNS[:3])
    threshold = _concatenate(raw, columns["split_conditions"], np.float32)
    default_left = _concatenate(raw, columns["default_left"], np.uint8).astype(bool)
    cover = _concatenate(raw, columns["sum_hessian"], np.float32)
    start = np.concatenate((np.zeros(1, np.int64), np.cumsum(sizes)))
    group = _materialize(raw, booster["model"]["tree_info"], np.int32)
    objective = str(learner.get("objective", {}).get("name", ""))
    return linked_trees(
        start=start,
        left=left,
        right=right,
        feature=feature,
        threshold=threshold,
        default_left=default_left,
        cover=cover,
        group=group,
        groups=groups,
        objective=objective,
        n_features=int(param.get("num_feature", "0")),
        base_margin=_base_margin(objective, str(param.get("base_score", "")), groups),
    )


ARRAY_FIELDS = {
    "start": np.int64,
    "left": np.int32,
    "right": np.int32,
    "feature": np.int32,
    "threshold": np.float32,
    "default_left": np.bool_,
    "cover": np.float32,
    "group": np.int32,
    "base_margin": np.float32,
}
"""The array fields of :class:`TreeArrays` (``mean`` aside) and the dtypes the kernels are compiled for."""


def linked_trees(**columns: Any) -> TreeArrays:
    """:class:`TreeArrays` from its fields but ``mean``, checked: every node array as long
    as the trees' nodes, every link inside its own tree, every tree in a valid output
    group. ``mean`` is computed on the way (it walks the links the check follows).

    Raises:
        ValueError: the arrays do not make whole trees.
    """
    for name, dtype in ARRAY_FIELDS.items():
        if columns[name].dtype != dtype:
            raise ValueError(f"{name} is {columns[name].dtype}, not {np.dtype(dtype)}")
    start = columns["start"]
    nodes = int(start[-1]) if start.ndim == 1 and start.size else -1
    if nodes < 0 or int(start[0]) != 0 or np.any(np.diff(start) <= 0):
        raise ValueError("tree starts are not increasing from 0")
    for name in ("left", "right", "feature", "threshold", "default_left", "cover"):
        if columns[name].shape != (nodes,):
            raise ValueError(f"{name} holds {columns[name].shape} items for {nodes} nodes")
    mean = np.zeros(nodes, np.float32)
    bad = _link_and_mean(
        start, columns["left"], columns["right"], columns["threshold"], columns["cover"], mean
    )
    if bad >= 0:
        raise ValueError(f"tree {bad}: a node links outside the tree, twice, or to one child only")
    group, groups = columns["group"], columns["groups"]
    if group.shape != (start.size - 1,) or np.any((group < 0) | (group >= groups)):
        raise ValueError(f"tree_info does not give each of {start.size - 1} trees one of {groups} outputs")
    return TreeArrays(mean=mean, **columns)


def _base_margin(objective: str, base_score: str, groups: int) -> npt.NDArray[np.float32]:
    """XGBoost's ``ProbToMargin`` of the stored base score (``"[5E-1]"``, or ``"5E-1"`` from
    older versions), one per group: the logit for the logistic objective, the scores as
    they are for softprob; empty for other objectives or a score that makes no margin."""
    try:
        scores = np.asarray([float(v) for v in base_score.strip("[]").split(",")], np.float32)
    except ValueError:
        return np.zeros(0, np.float32)
    if objective == "binary:logistic":
        if scores.size != 1 or not 0.0 < float(scores[0]) < 1.0:
            return np.zeros(0, np.float32)
        return np.asarray([_logit(scores[0])], np.float32)
    if objective == "multi:softprob":
        return np.repeat(scores, groups) if scores.size == 1 else scores
    return np.zeros(0, np.float32)


@numba.njit(cache=True, nogil=True, inline="always")
def goes_left(value: Any, threshold: Any, default_left: Any) -> Any:  # pragma: no cover - compiled
    """XGBoost's step at a split, for every kernel that walks the trees: a missing value
    (NaN) takes the node's default side, else ``value < threshold``."""
    if np.isnan(value):
        return default_left
    return value < threshold


@numba.njit(cache=True, nogil=True)
def _logit(score: Any) -> Any:  # pragma: no cover - compiled
    """``-logf(1.0f / score - 1.0f)``, in float32 throughout as XGBoost computes it."""
    one = np.float32(1.0)
    return -np.log(one / score - one)


@numba.njit(cache=True, nogil=True)
def _link_and_mean(
    start: Any, left: Any, right: Any, leaf_value: Any, hess: Any, mean: Any
) -> int:  # pragma: no cover - compiled
    """Check each tree's links and fill ``mean``: XGBoost's node mean values, in its float32
    operation order (children first, then ``(mean_l * hess_l + mean_r * hess_r) / hess``).

    The kernels index with these links unchecked and walk until a leaf, so a tree must be
    one tree from its root: every link inside it, both children or none, no node reached
    twice (a cycle or a shared child). Nodes the root does not reach become leaves (mean
    0). Returns the first bad tree's index, or -1.
    """
    order = np.empty(left.size, np.int64)
    seen = np.zeros(left.size, np.bool_)
    stack = np.empty(left.size + 1, np.int64)
    for t in range(start.size - 1):
        base, n = start[t], start[t + 1] - start[t]
        count = 0
        depth = 1
        stack[0] = 0
        while depth > 0:  # preorder from the root
            depth -= 1
            node = stack[depth]
            if node < 0 or node >= n or seen[base + node]:
                return t
            seen[base + node] = True
            order[count] = node
            count += 1
            lc, rc = left[base + node], right[base + node]
            if (lc >= 0) != (rc >= 0):
                return t
            if lc >= 0:
                if depth + 2 > n:  # more links than nodes: some node comes twice
                    return t
                stack[depth] = lc
                stack[depth + 1] = rc
                depth += 2
        for i in range(count - 1, -1, -1):  # children before parents
            g = base + order[i]
            if left[g] < 0:
                mean[g] = leaf_value[g]
            else:
                lc, rc = base + left[g], base + right[g]
                total = mean[lc] * hess[lc]
                total = total + mean[rc] * hess[rc]
                mean[g] = total / hess[g]
        for g in range(base, base + n):
            if not seen[g]:
                left[g] = -1
                right[g] = -1
    return -1


class _UBJReader:
    """Just enough UBJSON (draft 12, as XGBoost writes it) to read a model back: typed
    numeric arrays become :class:`_Span` (bounds checked; :func:`_materialize` and
    :func:`_concatenate` make numpy arrays of them), the rest Python values.

    Written for speed where a model has bulk (~30 values per tree, over a thousand trees
    in the shipped coin model): one ``struct.Struct`` per scalar marker, object keys read
    inline, the position kept in a local inside loops.
    """

    _SCALARS = {
        ord(marker): struct.Struct(">" + fmt)
        for marker, fmt in (
            ("i", "b"),
            ("U", "B"),
            ("I", "h"),
            ("l", "i"),
            ("L", "q"),
            ("d", "f"),
            ("D", "d"),
        )
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
    _CONSTANTS = {ord("T"): True, ord("F"): False, ord("Z"): None}

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def _length(self) -> int:
        """A length: an integer scalar, never negative (a negative one would walk back)."""
        data, pos = self.data, self.pos
        scalar = self._SCALARS[data[pos]]
        (n,) = scalar.unpack_from(data, pos + 1)
        self.pos = pos + 1 + scalar.size
        if not isinstance(n, int) or n < 0:
            raise ValueError(f"UBJSON length {n!r} at byte {pos} is not a count")
        return n

    def _string(self) -> str:
        n = self._length()
        text = self.data[self.pos : self.pos + n].decode()
        self.pos += n
        return text

    def value(self, marker: int | None = None) -> Any:
        data = self.data
        if marker is None:
            marker = data[self.pos]
            self.pos += 1
        scalar = self._SCALARS.get(marker)
        if scalar is not None:
            (number,) = scalar.unpack_from(data, self.pos)
            self.pos += scalar.size
            return number
        if marker == 123:  # "{"
            obj: dict[str, Any] = {}
            scalars = self._SCALARS
            pos = self.pos
            while data[pos] != 125:  # "}"
                scalar = scalars[data[pos]]  # the key's length (as _length, inline: the bulk)
                (n,) = scalar.unpack_from(data, pos + 1)
                pos += 1 + scalar.size
                if not isinstance(n, int) or n < 0:
                    raise ValueError(f"UBJSON length {n!r} at byte {pos} is not a count")
                key = data[pos : pos + n].decode()
                self.pos = pos + n
                obj[key] = self.value()
                pos = self.pos
            self.pos = pos + 1
            return obj
        if marker == 91:  # "["
            return self._array()
        if marker == 83:  # "S"
            return self._string()
        if marker in self._CONSTANTS:
            return self._CONSTANTS[marker]
        raise ValueError(f"UBJSON marker {chr(marker)!r} at byte {self.pos - 1} not understood")

    def _array(self) -> Any:
        data = self.data
        item_type = None
        if data[self.pos] == 36:  # "$"
            item_type = data[self.pos + 1]
            self.pos += 2
        count = None
        if data[self.pos] == 35:  # "#"
            self.pos += 1
            count = self._length()
        if item_type is not None:
            if count is None:
                raise ValueError(f"UBJSON typed array without a count at byte {self.pos}")
            if item_type in self._DTYPES:
                dtype = np.dtype(self._DTYPES[item_type])
                end = self.pos + count * dtype.itemsize
                if end > len(data):
                    raise ValueError(f"typed array of {count} items at byte {self.pos} runs past the end")
                span = _Span(dtype.str, self.pos, count)
                self.pos = end
                return span
            return [self.value(item_type) for _ in range(count)]
        if count is not None:
            return [self.value() for _ in range(count)]
        items = []
        while data[self.pos] != 93:  # "]"
            items.append(self.value())
        self.pos += 1
        return items
