"""The tree arrays are the booster's trees: a walk of them reaches XGBoost's leaves."""

from __future__ import annotations

import numpy as np
import pytest
import xgboost

from minerscope import resources
from minerscope.features.windows import extract_features
from minerscope.flows.assemble import assemble_capture
from minerscope.model import trees
from minerscope.model.artifact import BoosterFile, load_model


def _leaves(arrays: trees.TreeArrays, row: np.ndarray) -> list[int]:
    """The leaf each tree sends ``row`` to (node index within its tree), by the arrays."""
    out = []
    for t in range(arrays.start.size - 1):
        base, node = int(arrays.start[t]), 0
        while arrays.left[base + node] >= 0:
            value = row[arrays.feature[base + node]]
            go_left = (
                arrays.default_left[base + node] if np.isnan(value) else value < arrays.threshold[base + node]
            )
            node = int(arrays.left[base + node] if go_left else arrays.right[base + node])
        out.append(node)
    return out


def test_the_shipped_coin_model_walks_to_xgboosts_leaves() -> None:
    folder = resources.models_dir() / resources.DEFAULT_MODEL_NAME
    if not (folder / "metadata.json").is_file():
        pytest.skip("no shipped default model in this checkout")
    model = load_model(folder)
    assert model.coin is not None
    assert model.coin_file is not None
    arrays = model.coin_file.trees
    assert arrays is not None and arrays.groups == len(model.coin_classes) == 7
    assert arrays.group.size == arrays.start.size - 1 and set(arrays.group.tolist()) == set(range(7))
    table = assemble_capture(str(resources.sample_capture()))[0]
    feats = extract_features(table, window_s=model.window_s, whole_flow=False)
    x = feats.select(list(model.coin_features)).to_numpy().astype(np.float32)[::20]
    x[np.random.default_rng(0).random(x.shape) < 0.2] = np.nan  # default branches too
    want = np.asarray(
        model.coin.predict(xgboost.DMatrix(x, feature_names=list(model.coin_features)), pred_leaf=True)
    )
    got = np.asarray([_leaves(arrays, row) for row in x])
    assert got.shape == want.shape and np.array_equal(got, want)
    assert np.unique(want).size > 20


def test_boosters_the_reader_does_not_cover() -> None:
    rng = np.random.default_rng(4)
    x = rng.random((60, 3)).astype(np.float32)
    linear = xgboost.train({"booster": "gblinear", "nthread": 1}, xgboost.DMatrix(x, x[:, 0] > 0.5), 2)
    assert BoosterFile.of(linear).trees is None
    category = rng.integers(0, 4, 60)
    cats = xgboost.DMatrix(
        np.c_[x[:, :2], category].astype(np.float32),
        np.isin(category, (1, 3)),  # only the category tells the classes apart
        feature_types=["q", "q", "c"],
        enable_categorical=True,
    )
    categorical = xgboost.train({"nthread": 1, "max_cat_to_onehot": 1, "tree_method": "hist"}, cats, 4)
    assert BoosterFile.of(categorical).trees is None
