"""Significance-based selection on data whose differing columns are known."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from minerscope.features.selection import benjamini_hochberg, select_features


def _data(seed: int, n: int = 300, noise: int = 30) -> tuple[np.ndarray, np.ndarray, list[str]]:
    rng = np.random.default_rng(seed)
    y = (np.arange(n) % 2).astype(np.int64)
    cols = [
        rng.normal(0, 1, n) + 1.0 * y,  # location shift
        rng.exponential(1, n) * (1 + 2 * y),  # scale (and median) shift
        np.where(y == 1, rng.normal(5, 1, n), rng.normal(0, 1, n)),  # large shift
    ]
    cols += [rng.normal(0, 1, n) for _ in range(noise)]
    names = ["shift", "scale", "big"] + [f"noise{i}" for i in range(noise)]
    return np.column_stack(cols), y, names


def test_differing_features_survive_and_noise_does_not() -> None:
    x, y, names = _data(1)
    sel = select_features(x, y, names, task="binary")
    assert {"shift", "scale", "big"} <= set(sel.selected)
    assert not [n for n in sel.selected if n.startswith("noise")]
    assert sel.test == "mann-whitney-u"
    assert "3/33 features survive" in sel.summary()


def test_p_values_are_mann_whitney() -> None:
    x, y, names = _data(2, noise=2)
    sel = select_features(x, y, names, task="binary")
    expected = stats.mannwhitneyu(x[y == 0, 0], x[y == 1, 0], alternative="two-sided").pvalue
    assert sel.p_values[0] == pytest.approx(expected)


def test_multiclass_uses_kruskal_wallis() -> None:
    rng = np.random.default_rng(3)
    y = np.repeat([0, 1, 2], 100)
    x = np.column_stack([rng.normal(y.astype(float), 1.0), rng.normal(0, 1, 300)])
    sel = select_features(x, y, ["coin_signal", "noise"], task="coin")
    assert sel.test == "kruskal-wallis"
    assert sel.selected == ("coin_signal",)
    assert sel.p_values[0] == pytest.approx(stats.kruskal(*(x[y == c, 0] for c in range(3))).pvalue)


def test_constant_sparse_and_nan_columns_are_not_selected() -> None:
    rng = np.random.default_rng(4)
    y = (np.arange(200) % 2).astype(np.int64)
    constant = np.full(200, 3.0)
    mostly_nan = np.full(200, np.nan)
    mostly_nan[:6] = [1, 2, 3, 4, 5, 6]  # 3 defined values per class < min_per_class
    with_nan = rng.normal(0, 1, 200) + 3 * y
    with_nan[::7] = np.nan
    sel = select_features(
        np.column_stack([constant, mostly_nan, with_nan]), y, ["c", "n", "w"], task="binary"
    )
    assert sel.selected == ("w",)
    assert sel.p_values[0] == 1.0 and sel.p_values[1] == 1.0


def test_benjamini_hochberg_matches_the_textbook_procedure() -> None:
    p = np.array([0.001, 0.008, 0.039, 0.041, 0.042, 0.06, 0.074, 0.205, 0.212, 0.216])
    q = benjamini_hochberg(p)
    m = p.shape[0]
    for i in range(m):  # q_i = min over j >= i (in sorted order) of p_j * m / j
        order = np.argsort(p)
        rank = int(np.where(order == i)[0][0])
        expected = min(1.0, min(p[order[j]] * m / (j + 1) for j in range(rank, m)))
        assert q[i] == pytest.approx(expected)
    assert (q >= p).all()


def test_one_class_is_an_error() -> None:
    with pytest.raises(ValueError, match="two classes"):
        select_features(np.zeros((10, 1)), np.zeros(10, np.int64), ["a"], task="binary")
