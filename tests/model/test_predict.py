"""Scoring's own tree walk gives XGBoost's predictions bit for bit, so scan needs no xgboost."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import xgboost

from minerscope import resources
from minerscope.errors import ModelError
from minerscope.features.windows import extract_features
from minerscope.flows.assemble import assemble_capture
from minerscope.model import classify, predict, saabas, trees
from minerscope.model.artifact import BINARY_FILE, METADATA_FILE, BoosterFile, Model, load_model
from minerscope.model.train import TrainResult


def _bits(a: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(a, np.float32).view(np.int32)


def _shipped_windows() -> tuple[Model, np.ndarray, np.ndarray]:
    folder = resources.models_dir() / resources.DEFAULT_MODEL_NAME
    if not (folder / METADATA_FILE).is_file():
        pytest.skip("no shipped default model in this checkout")
    model = load_model(folder)
    table = assemble_capture(str(resources.sample_capture()))[0]
    feats = extract_features(table, window_s=model.window_s, whole_flow=False)
    xb = feats.select(list(model.binary_features)).to_numpy().astype(np.float32)
    xc = feats.select(list(model.coin_features)).to_numpy().astype(np.float32)
    holes = np.random.default_rng(5).random(xb.shape) < 0.1  # default branches too
    xb = np.concatenate([xb, np.where(holes, np.nan, xb).astype(np.float32)])
    xc = np.concatenate([xc, xc[:, ::-1].copy()])  # other values on the coin splits
    return model, xb, xc


def test_shipped_models_predict_xgboosts_bits_on_real_windows() -> None:
    model, xb, xc = _shipped_windows()
    assert model.coin_file is not None and model.coin is not None
    binary, coin = model.binary_file.trees, model.coin_file.trees
    assert binary is not None and coin is not None
    assert predict.supported(binary) and predict.supported(coin)

    want = np.asarray(model.binary.inplace_predict(xb))
    got = predict.predict(binary, xb)
    assert np.array_equal(_bits(got), _bits(want))
    assert 0.0 < want.min() and want.max() > 0.5  # both classes present: not a trivial match

    # the margin the Saabas walk adds up on its way is XGBoost's margin too
    _, _, margin = saabas.top_contributions(binary, xb, 5)
    want_margin = np.asarray(model.binary.inplace_predict(xb, predict_type="margin"))
    assert np.array_equal(_bits(margin), _bits(want_margin))

    want_c = np.asarray(model.coin.inplace_predict(xc)).reshape(-1, len(model.coin_classes))
    got_c = predict.predict(coin, xc)
    assert got_c.shape == want_c.shape and np.array_equal(_bits(got_c), _bits(want_c))
    assert len(set(want_c.argmax(axis=1).tolist())) >= 3


def test_another_base_score_single_leaf_trees_and_three_classes() -> None:
    """A logistic base score other than 0.5 moves every margin (XGBoost's logit in float32);
    trees of one leaf only move the margin; softprob with three groups interleaves trees."""
    rng = np.random.default_rng(9)
    x = rng.normal(size=(400, 6)).astype(np.float32)
    y = (x[:, 0] + 0.5 * x[:, 1] > 0.3).astype(np.float32)
    x[rng.random(x.shape) < 0.05] = np.nan
    logistic = xgboost.train(
        {"objective": "binary:logistic", "base_score": 0.3, "max_depth": 3, "nthread": 1, "seed": 1},
        xgboost.DMatrix(x, y),
        12,
    )
    stump = xgboost.train(  # gamma this large leaves each tree a lone leaf
        {"objective": "binary:logistic", "base_score": 0.7, "gamma": 1e6, "nthread": 1},
        xgboost.DMatrix(x, y),
        3,
    )
    classes = np.digitize(x[:, 2], [-0.5, 0.5]).astype(np.float32)
    softprob = xgboost.train(
        {"objective": "multi:softprob", "num_class": 3, "max_depth": 3, "nthread": 1, "seed": 1},
        xgboost.DMatrix(x, classes),
        10,
    )
    for booster in (logistic, stump, softprob):
        arrays = BoosterFile.of(booster).trees
        assert arrays is not None and predict.supported(arrays)
        want = np.asarray(booster.inplace_predict(x)).reshape(x.shape[0], -1)
        got = predict.predict(arrays, x).reshape(x.shape[0], -1)
        assert np.array_equal(_bits(got), _bits(want)), arrays.objective
    assert BoosterFile.of(stump).trees.left.max() < 0  # type: ignore[union-attr]
    assert np.ptp(np.asarray(stump.inplace_predict(x))) == 0.0


def test_other_objectives_are_left_to_xgboost(trained: tuple[Path, TrainResult], tmp_path: Path) -> None:
    """``binary:logitraw`` gives margins, not probabilities: not ours to transform, so
    scoring asks XGBoost, with the same verdicts."""
    folder = tmp_path / "raw"
    shutil.copytree(trained[0], folder)
    booster = load_model(folder).binary
    booster.set_param({"objective": "binary:logitraw"})
    blob = bytes(booster.save_raw("ubj"))
    (folder / BINARY_FILE).write_bytes(blob)
    meta = json.loads((folder / METADATA_FILE).read_text())
    meta["binary"]["sha256"] = hashlib.sha256(blob).hexdigest()
    (folder / METADATA_FILE).write_text(json.dumps(meta))
    model = load_model(folder)
    assert model.binary_file.trees is not None and not predict.supported(model.binary_file.trees)
    table = assemble_capture(str(resources.sample_capture()))[0]
    scored = classify.score(table, model)
    feats = extract_features(table, window_s=model.window_s, whole_flow=False)
    x = feats.select(list(model.binary_features)).to_numpy().astype(np.float32)
    assert scored["p_mining"].max() == pytest.approx(float(np.max(booster.inplace_predict(x))))


def _rewrite_binary(folder: Path, edit: object) -> None:
    """Edit the binary booster's JSON (through XGBoost's own JSON round trip) and re-sign it."""
    doc = json.loads(bytes(load_model(folder).binary.save_raw("json")))
    edit(doc["learner"]["gradient_booster"]["model"]["trees"][0])  # type: ignore[operator]
    booster = xgboost.Booster()
    booster.load_model(bytearray(json.dumps(doc).encode()))
    blob = bytes(booster.save_raw("ubj"))
    (folder / BINARY_FILE).write_bytes(blob)
    meta = json.loads((folder / METADATA_FILE).read_text())
    meta["binary"]["sha256"] = hashlib.sha256(blob).hexdigest()
    (folder / METADATA_FILE).write_text(json.dumps(meta))


def test_trees_the_kernels_could_not_walk_safely_are_refused(
    trained: tuple[Path, TrainResult], tmp_path: Path
) -> None:
    """The kernels index with the trees' numbers unchecked: a split on a feature the
    sidecar does not list is a clear ModelError naming the file, not a read out of bounds."""
    folder = tmp_path / "wide"
    shutil.copytree(trained[0], folder)
    n_features = len(load_model(folder).binary_features)

    def far_feature(tree: dict[str, list[int]]) -> None:
        inner = [i for i, c in enumerate(tree["left_children"]) if c >= 0]
        tree["split_indices"][inner[0]] = n_features + 40

    _rewrite_binary(folder, far_feature)
    with pytest.raises(ModelError, match=rf"{BINARY_FILE}: booster splits on feature #{n_features + 40}"):
        load_model(folder)


def test_damaged_tree_links_are_refused(trained: tuple[Path, TrainResult], tmp_path: Path) -> None:
    """A child link out of its tree, or a cycle, passes a re-signed sidecar but not the reader."""
    blob = (trained[0] / BINARY_FILE).read_bytes()
    arrays = trees.read_trees(blob)
    assert arrays is not None and np.all(np.isfinite(arrays.mean))
    left = bytes(load_model(trained[0]).binary.save_raw("json"))
    doc = json.loads(left)
    tree = doc["learner"]["gradient_booster"]["model"]["trees"][0]
    inner = [i for i, c in enumerate(tree["left_children"]) if c >= 0]
    for bad in (len(tree["left_children"]) + 7, 0):  # outside the tree; back to the root
        edited = json.loads(left)
        edited["learner"]["gradient_booster"]["model"]["trees"][0]["right_children"][inner[-1]] = bad
        raw = _ubj_of(edited)
        with pytest.raises(ValueError, match="tree 0: a node links outside the tree"):
            trees.read_trees(raw)


def test_typed_and_plain_arrays_read_to_the_same_trees() -> None:
    """The shipped coin model as XGBoost wrote it (typed arrays, copied out column by
    column) and as a plain UBJSON document of the same JSON (every number its own value)
    give identical arrays."""
    folder = resources.models_dir() / resources.DEFAULT_MODEL_NAME
    blob = (folder / "coin.ubj").read_bytes()
    typed = trees.read_trees(blob)
    booster = xgboost.Booster(model_file=str(folder / "coin.ubj"))
    plain = trees.read_trees(_ubj_of(json.loads(bytes(booster.save_raw("json")))))
    assert typed is not None and plain is not None and typed.start.size > 500
    for name in ("start", "left", "right", "feature", "threshold", "default_left", "cover", "mean", "group"):
        a, b = getattr(typed, name), getattr(plain, name)
        assert a.dtype == b.dtype and np.array_equal(a, b), name
    assert typed.left.flags.writeable and typed.base_margin.tolist() == plain.base_margin.tolist()


@pytest.mark.parametrize(
    ("cut", "message"),
    [
        (lambda raw, at: raw[: at + 20], "runs past the end"),  # a typed array cut short
        (
            lambda raw, at: raw[:at] + b"L" + (2**63 - 5).to_bytes(8, "big") + raw[at + 9 :],
            "runs past the end",
        ),
    ],
)
def test_a_typed_array_longer_than_the_file_is_refused(cut: object, message: str) -> None:
    blob = ((resources.models_dir() / resources.DEFAULT_MODEL_NAME) / BINARY_FILE).read_bytes()
    at = blob.index(b"left_children[$l#") + len(b"left_children[$l#")
    assert blob[at : at + 1] == b"L"  # XGBoost writes counts as int64
    with pytest.raises(ValueError, match=message):
        trees.read_trees(cut(blob, at))  # type: ignore[operator]


def test_a_negative_length_is_refused_not_walked_back() -> None:
    raw = b"{" + b"L" + (-3).to_bytes(8, "big", signed=True) + b"abc" + b"Z}"
    with pytest.raises(ValueError, match="is not a count"):
        trees._UBJReader(raw).value()


def _ubj_of(doc: dict[str, object]) -> bytes:
    """A model document in UBJSON, written here (XGBoost itself refuses to load such trees)."""
    import struct

    def enc(v: object) -> bytes:
        if isinstance(v, bool):
            return b"T" if v else b"F"
        if isinstance(v, int):
            return b"L" + struct.pack(">q", v)
        if isinstance(v, float):
            return b"d" + struct.pack(">f", v)
        if isinstance(v, str):
            return b"S" + key(v)
        if isinstance(v, list):
            return b"[" + b"".join(enc(i) for i in v) + b"]"
        if isinstance(v, dict):
            return b"{" + b"".join(key(k) + enc(i) for k, i in v.items()) + b"}"
        raise TypeError(type(v))

    def key(k: str) -> bytes:
        data = k.encode()
        return b"L" + struct.pack(">q", len(data)) + data

    return enc(doc)


def test_a_sidecar_listing_other_columns_than_the_booster_takes_is_refused(
    trained: tuple[Path, TrainResult], tmp_path: Path
) -> None:
    """XGBoost refuses input of another width at prediction; the kernels would not, so the
    load does, naming the file."""
    folder = tmp_path / "narrow"
    shutil.copytree(trained[0], folder)
    meta = json.loads((folder / METADATA_FILE).read_text())
    n = len(meta["binary"]["features"])
    meta["binary"]["features"] = meta["binary"]["features"][:-1]
    (folder / METADATA_FILE).write_text(json.dumps(meta))
    with pytest.raises(ModelError, match=rf"{BINARY_FILE}: booster takes {n} features, .* lists {n - 1}"):
        load_model(folder)
