"""Keep only features whose distributions differ between classes (FDR-controlled).

~280 candidates and a few hundred labelled sessions invite a model that memorises noise.
Before training, each candidate is tested on the *training split only*: Mann-Whitney U
between mining and benign samples for the binary task, Kruskal-Wallis across coins for
the coin task (rank tests: no distribution assumed, robust to the heavy tails of sizes
and gaps). The p-values are corrected with Benjamini-Hochberg and a feature survives at
false discovery rate ``alpha`` (default 0.01). The survivors are stored with the model,
so inference reads exactly those columns.

NaN (an undefined statistic) is dropped per feature before testing; a feature that is
constant, or has fewer than ``min_per_class`` defined values in some class, cannot be
tested and is not selected.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

DEFAULT_ALPHA = 0.01


@dataclass(frozen=True, slots=True)
class Selection:
    """Result of a significance filter.

    Attributes:
        task: ``binary`` or ``coin``.
        test: the statistical test used.
        alpha: the FDR level.
        names: candidate names, in input order.
        p_values: raw p-value per candidate (1.0 when untestable).
        q_values: Benjamini-Hochberg adjusted p-values.
        selected: names with ``q <= alpha``, in input order.
    """

    task: str
    test: str
    alpha: float
    names: tuple[str, ...]
    p_values: npt.NDArray[np.float64]
    q_values: npt.NDArray[np.float64]
    selected: tuple[str, ...]

    def summary(self) -> str:
        """One line: how many survived."""
        return (
            f"{self.task}: {len(self.selected)}/{len(self.names)} features survive "
            f"{self.test} with BH FDR <= {self.alpha:g}"
        )


def benjamini_hochberg(p: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """Benjamini-Hochberg adjusted p-values (q-values), monotone, capped at 1."""
    m = p.shape[0]
    if m == 0:
        return p.copy()
    order = np.argsort(p, kind="stable")
    ranked = p[order] * m / np.arange(1, m + 1)
    q_sorted = np.minimum.accumulate(ranked[::-1])[::-1]
    q = np.empty(m)
    q[order] = np.minimum(q_sorted, 1.0)
    return q


def select_features(
    x: npt.NDArray[np.floating],
    y: npt.NDArray[np.integer],
    names: Sequence[str],
    *,
    task: str,
    alpha: float = DEFAULT_ALPHA,
    min_per_class: int = 5,
) -> Selection:
    """Test every column of ``x`` for a difference between the classes in ``y``.

    Args:
        x: ``(samples, features)`` matrix (NaN = undefined).
        y: class per sample; two classes use Mann-Whitney U (two-sided), more use
            Kruskal-Wallis.
        names: column names.
        task: label stored in the result (``binary``/``coin``).
        alpha: FDR level for Benjamini-Hochberg.
        min_per_class: fewer defined values than this in any class: untestable.

    Returns:
        The :class:`Selection`.

    Raises:
        ValueError: fewer than two classes, or shapes disagree.
    """
    from scipy import stats  # scipy is heavy; only training needs it

    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y)
    if x.ndim != 2 or x.shape[0] != y.shape[0] or x.shape[1] != len(names):
        raise ValueError(f"shape mismatch: x {x.shape}, y {y.shape}, {len(names)} names")
    classes = np.unique(y)
    if classes.shape[0] < 2:
        raise ValueError(f"feature selection needs at least two classes, got {classes.tolist()}")
    test = "mann-whitney-u" if classes.shape[0] == 2 else "kruskal-wallis"
    p = np.ones(x.shape[1])
    for j in range(x.shape[1]):  # one test per candidate feature, not per sample
        col = x[:, j]
        defined = ~np.isnan(col)
        groups = [col[defined & (y == c)] for c in classes]
        if any(g.shape[0] < min_per_class for g in groups):
            continue
        pooled = np.concatenate(groups)
        if float(pooled.max()) == float(pooled.min()):
            continue
        if test == "mann-whitney-u":
            p[j] = float(stats.mannwhitneyu(groups[0], groups[1], alternative="two-sided").pvalue)
        else:
            p[j] = float(stats.kruskal(*groups).pvalue)
    p = np.nan_to_num(p, nan=1.0)
    q = benjamini_hochberg(p)
    selected = tuple(name for name, qv in zip(names, q, strict=True) if qv <= alpha)
    return Selection(
        task=task, test=test, alpha=alpha, names=tuple(names), p_values=p, q_values=q, selected=selected
    )
