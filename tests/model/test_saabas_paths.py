"""The Saabas kernel's two kinds of tree and its row order keep XGBoost's bits."""

from __future__ import annotations

import numpy as np
import xgboost

from minerscope.model import saabas, trees
from minerscope.model.artifact import BoosterFile


def _booster_and_rows() -> tuple[xgboost.Booster, np.ndarray]:
    """Deep trees over few features (paths split twice on a feature) mixed with stumps."""
    rng = np.random.default_rng(11)
    x = rng.normal(size=(400, 5)).astype(np.float32)
    x[rng.random(x.shape) < 0.15] = np.nan
    y = (np.nan_to_num(x[:, 0]) * np.nan_to_num(x[:, 1]) + np.sin(np.nan_to_num(x[:, 2])) > 0).astype(int)
    params = {"objective": "binary:logistic", "max_depth": 5, "eta": 0.3, "nthread": 1, "seed": 1}
    deep = xgboost.train(params, xgboost.DMatrix(x, y), 12)
    stumps = xgboost.train({**params, "max_depth": 1}, xgboost.DMatrix(x, y), 12, xgb_model=deep)
    return stumps, x


def _dense(arrays: trees.TreeArrays, x: np.ndarray) -> np.ndarray:
    idx, val, _ = saabas.top_contributions(arrays, x, x.shape[1])
    dense = np.zeros(x.shape, np.float32)
    rows, slots = np.nonzero(val)
    dense[rows, idx[rows, slots]] = val[rows, slots]
    return dense


def test_plain_and_repeating_trees_give_xgboosts_bits() -> None:
    booster, x = _booster_and_rows()
    arrays = BoosterFile.of(booster).trees
    assert arrays is not None
    plain = saabas._plain_trees(arrays.nodes, arrays.mean)
    assert plain.any() and not plain.all()  # both code paths run
    splits = np.flatnonzero(arrays.left >= 0)
    on = x[:50].copy()
    on[:, arrays.feature[splits[:5]]] = arrays.threshold[splits[:5]]  # exactly on thresholds
    rows = np.concatenate([x, on, -x])
    got = _dense(arrays, rows)
    want = booster.predict(xgboost.DMatrix(rows, nthread=1), pred_contribs=True, approx_contribs=True)
    want = np.asarray(want, np.float32)[:, :-1]
    assert np.array_equal(got.view(np.int32), want.view(np.int32))
    assert np.any(got != 0.0)


def test_each_row_gets_its_own_answer_whatever_the_visiting_order() -> None:
    booster, x = _booster_and_rows()
    arrays = BoosterFile.of(booster).trees
    assert arrays is not None
    perm = np.random.default_rng(12).permutation(x.shape[0])
    idx, val, _ = saabas.top_contributions(arrays, x, 3)
    idx_p, val_p, _ = saabas.top_contributions(arrays, x[perm], 3)
    assert np.array_equal(idx[perm], idx_p)
    assert np.array_equal(val[perm].view(np.int32), val_p.view(np.int32))
    assert len({tuple(r) for r in idx}) > 1  # rows differ, so a mixed-up order would show
