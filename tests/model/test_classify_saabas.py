"""The Saabas kernel gives XGBoost's ``approx_contribs`` bit for bit (it replaces them in scoring)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import xgboost

from minerscope import resources
from minerscope.features.synthetic import synthetic_table
from minerscope.features.windows import extract_features
from minerscope.model import saabas, trees
from minerscope.model.artifact import BoosterFile, Model, load_model
from minerscope.model.train import TrainResult


def _xgboost_saabas(model: Model, x: np.ndarray) -> np.ndarray:
    names = list(model.binary_features)
    dmat = xgboost.DMatrix(x, feature_names=names, nthread=1)
    return np.asarray(model.binary.predict(dmat, pred_contribs=True, approx_contribs=True))[:, :-1]


def _dense(arrays: trees.TreeArrays, x: np.ndarray) -> np.ndarray:
    """Every feature's contribution, from the kernel asked for all of them."""
    idx, val, _ = saabas.top_contributions(arrays, x, x.shape[1])
    dense = np.zeros(x.shape, np.float32)
    rows, slots = np.nonzero(val)  # (padding slots name feature 0 with a zero)
    dense[rows, idx[rows, slots]] = val[rows, slots]
    magnitude = np.abs(val)
    assert np.all(magnitude[:, :-1] >= magnitude[:, 1:])  # largest first
    return dense


def _windows(model: Model, seed: int) -> np.ndarray:
    table, _ = synthetic_table(8, 8, seed=seed)
    feats = extract_features(table, window_s=model.window_s, whole_flow=False)
    return feats.select(list(model.binary_features)).to_numpy().astype(np.float32)


def _assert_bit_identical(model: Model, x: np.ndarray) -> None:
    arrays = model.binary_file.trees
    assert arrays is not None
    got = _dense(arrays, x)
    want = _xgboost_saabas(model, x)
    assert got.dtype == np.float32 and got.shape == want.shape
    assert np.array_equal(got.view(np.int32), want.view(np.int32))  # bits, so -0.0 != 0.0 too
    assert np.any(got != 0.0)


def test_same_bits_as_xgboost_on_feature_windows(trained: tuple[Path, TrainResult]) -> None:
    model = load_model(trained[0])
    _assert_bit_identical(model, _windows(model, seed=81))


def test_same_bits_with_missing_values_and_values_on_the_thresholds(
    trained: tuple[Path, TrainResult],
) -> None:
    """NaN takes each split's default branch; a value equal to a threshold goes right."""
    model = load_model(trained[0])
    x = _windows(model, seed=82)
    rng = np.random.default_rng(3)
    x[rng.random(x.shape) < 0.2] = np.nan
    arrays = model.binary_file.trees
    assert arrays is not None
    splits = arrays.left >= 0
    on_threshold = x.copy()
    on_threshold[:, arrays.feature[splits][: x.shape[1]] % x.shape[1]] = arrays.threshold[splits][
        : x.shape[1]
    ]
    _assert_bit_identical(model, np.concatenate([x, on_threshold, -x]))


def test_same_bits_for_the_shipped_model() -> None:
    folder = resources.models_dir() / resources.DEFAULT_MODEL_NAME
    if not (folder / "metadata.json").is_file():
        pytest.skip("no shipped default model in this checkout")
    model = load_model(folder)
    _assert_bit_identical(model, _windows(model, seed=83))


def test_boosters_the_kernel_does_not_cover_are_left_to_xgboost() -> None:
    rng = np.random.default_rng(4)
    x = rng.random((60, 3)).astype(np.float32)
    y = rng.integers(0, 3, 60)
    multi = xgboost.train(
        {"objective": "multi:softprob", "num_class": 3, "nthread": 1}, xgboost.DMatrix(x, y), 2
    )
    linear = xgboost.train({"booster": "gblinear", "nthread": 1}, xgboost.DMatrix(x, y % 2), 2)
    arrays = BoosterFile.of(multi).trees
    assert arrays is not None and arrays.groups == 3
    with pytest.raises(ValueError, match="one output group"):
        saabas.top_contributions(arrays, x, 5)
    assert BoosterFile.of(linear).trees is None
