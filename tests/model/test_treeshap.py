"""The TreeSHAP kernel gives XGBoost's exact ``pred_contribs`` bit for bit (it replaces them in scoring)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import xgboost

from minerscope import resources
from minerscope.features.windows import extract_features
from minerscope.flows.assemble import assemble_capture
from minerscope.model import trees, treeshap
from minerscope.model.artifact import BoosterFile, Model, load_model
from minerscope.model.train import TrainResult


def _shipped() -> Model:
    folder = resources.models_dir() / resources.DEFAULT_MODEL_NAME
    if not (folder / "metadata.json").is_file():
        pytest.skip("no shipped default model in this checkout")
    return load_model(folder)


def _sample_windows(model: Model) -> np.ndarray:
    table = assemble_capture(str(resources.sample_capture()))[0]
    feats = extract_features(table, window_s=model.window_s, whole_flow=False)
    return feats.select(list(model.binary_features)).to_numpy().astype(np.float32)


def _with_holes_and_thresholds(x: np.ndarray, arrays: trees.TreeArrays) -> np.ndarray:
    """``x`` with 20 % NaN, then rows whose features sit exactly on split thresholds, then ``-x``."""
    holes = x.copy()
    holes[np.random.default_rng(5).random(x.shape) < 0.2] = np.nan
    on = x.copy()
    splits = np.flatnonzero(arrays.left >= 0)[: x.shape[1] * 4]
    on[:, arrays.feature[splits]] = arrays.threshold[splits]
    return np.concatenate([holes, on, -x])


def _assert_same_bits(booster: xgboost.Booster, x: np.ndarray, names: list[str] | None = None) -> None:
    arrays = BoosterFile.of(booster).trees
    assert arrays is not None
    got = treeshap.contributions(arrays, x)
    dmat = xgboost.DMatrix(x, feature_names=names, nthread=1)
    want = np.asarray(booster.predict(dmat, pred_contribs=True))[:, :-1]
    assert got.dtype == want.dtype == np.float32 and got.shape == want.shape
    assert np.array_equal(got.view(np.int32), want.view(np.int32))  # bits, so -0.0 != 0.0 too
    assert np.count_nonzero(want) > x.shape[0]  # real attributions, not all zeros
    # exact SHAP differs from the path (Saabas) attributions, so this is not that computation
    assert not np.array_equal(
        got, np.asarray(booster.predict(dmat, pred_contribs=True, approx_contribs=True))[:, :-1]
    )


def test_the_shipped_model_on_the_sample_capture() -> None:
    model = _shipped()
    _assert_same_bits(model.binary, _sample_windows(model), list(model.binary_features))


def test_the_shipped_model_with_missing_values_and_values_on_the_thresholds() -> None:
    model = _shipped()
    arrays = model.binary_file.trees
    assert arrays is not None
    x = _with_holes_and_thresholds(_sample_windows(model), arrays)
    _assert_same_bits(model.binary, x, list(model.binary_features))


def test_a_freshly_trained_model_with_missing_values_and_values_on_the_thresholds(
    trained: tuple[Path, TrainResult],
) -> None:
    model = load_model(trained[0])
    arrays = model.binary_file.trees
    assert arrays is not None
    x = _sample_windows(model)
    _assert_same_bits(
        model.binary, np.concatenate([x, _with_holes_and_thresholds(x, arrays)]), list(model.binary_features)
    )


def test_a_deep_model_that_splits_on_the_same_features_again_with_missing_values() -> None:
    """Depth 8 over 5 features: paths meet a feature again, which unwinds and re-extends the path."""
    rng = np.random.default_rng(11)
    x = rng.normal(size=(600, 5)).astype(np.float32)
    y = (x[:, 0] * x[:, 1] + np.sin(3 * x[:, 2]) > 0.3).astype(int)
    x[rng.random(x.shape) < 0.15] = np.nan
    booster = xgboost.train(
        {"objective": "binary:logistic", "max_depth": 8, "min_child_weight": 0.1, "nthread": 1},
        xgboost.DMatrix(x, y),
        15,
    )
    arrays = BoosterFile.of(booster).trees
    assert arrays is not None
    assert treeshap._max_depth(arrays.start, arrays.left, arrays.right) == 8
    splits = np.add.reduceat(arrays.left >= 0, arrays.start[:-1])
    assert splits.max() > treeshap._MEMO_SPLITS >= splits.min()  # both ways of computing a tree
    test = rng.normal(size=(300, 5)).astype(np.float32)
    test[rng.random(test.shape) < 0.2] = np.nan
    x = np.concatenate([test, _with_holes_and_thresholds(test, arrays)])
    _assert_same_bits(booster, x)
    one_by_one = np.concatenate([treeshap.contributions(arrays, row[None]) for row in x[::7]])
    assert np.array_equal(one_by_one.view(np.int32), treeshap.contributions(arrays, x[::7]).view(np.int32))
    assert treeshap.contributions(arrays, x[:0]).shape == (0, 5)


def test_several_output_groups_are_refused() -> None:
    rng = np.random.default_rng(4)
    x = rng.random((60, 3)).astype(np.float32)
    multi = xgboost.train(
        {"objective": "multi:softprob", "num_class": 3, "nthread": 1},
        xgboost.DMatrix(x, rng.integers(0, 3, 60)),
        2,
    )
    arrays = BoosterFile.of(multi).trees
    assert arrays is not None and arrays.groups == 3
    with pytest.raises(ValueError, match="one output group"):
        treeshap.contributions(arrays, x)
