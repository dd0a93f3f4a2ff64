"""Model folders: round trip, sidecar contents, refusal of foreign or damaged models, no pickle."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import xgboost

from minerscope import resources
from minerscope.atomicfile import atomic_write_bytes
from minerscope.errors import ModelError
from minerscope.features.schema import FEATURE_NAMES, SCHEMA_HASH, SCHEMA_VERSION
from minerscope.features.synthetic import synthetic_table
from minerscope.features.windows import extract_features
from minerscope.model.artifact import METADATA_FILE, load_model, save_model
from minerscope.model.train import TrainResult
from tests.conftest import REPO


def _copy(folder: Path, tmp_path: Path) -> Path:
    dest = tmp_path / folder.name
    shutil.copytree(folder, dest)
    return dest


def test_round_trip_predicts_the_same(trained: tuple[Path, TrainResult]) -> None:
    folder, result = trained
    model = load_model(folder)
    table, _ = synthetic_table(3, 3, seed=42)
    feats = extract_features(table, window_s=model.window_s, whole_flow=False)
    x = feats.select(list(model.binary_features)).to_numpy().astype(np.float32)
    names = list(model.binary_features)
    before = result.binary.predict(xgboost.DMatrix(x, feature_names=names))
    after = model.binary.predict(xgboost.DMatrix(x, feature_names=names))
    np.testing.assert_array_equal(before, after)
    assert model.coin is not None and model.coin_classes == ("ltc", "xmr")


def test_sidecar_contents(trained: tuple[Path, TrainResult]) -> None:
    folder, result = trained
    meta = json.loads((folder / METADATA_FILE).read_text())
    assert meta["format"] == "minerscope-model"
    assert meta["schema_hash"] == SCHEMA_HASH and meta["schema_version"] == SCHEMA_VERSION
    assert meta["n_candidate_features"] == len(FEATURE_NAMES)
    assert meta["window_s"] == 300.0
    assert meta["binary"]["features"] == list(result.binary_selection.selected)
    assert set(meta["binary"]["features"]) <= set(FEATURE_NAMES)
    assert meta["binary"]["classes"] == ["benign", "mining"]
    assert 0.5 <= meta["binary"]["threshold"] <= 1.0
    assert meta["binary"]["selection"]["test"] == "mann-whitney-u"
    assert meta["binary"]["selection"]["selected"] == len(meta["binary"]["features"])
    assert meta["coin"]["classes"] == ["ltc", "xmr"]
    assert meta["coin"]["selection"]["candidates"] == len(FEATURE_NAMES)
    assert meta["data"]["seed"] == 3 and meta["data"]["data"] == ["synthetic"]
    groups = meta["data"]["groups"]
    assert sum(len(v) for v in groups.values()) == 10
    assert not set(groups["train"]) & set(groups["test"])
    for lib in ("xgboost", "numpy", "polars", "scipy", "python"):
        assert meta["libraries"][lib]
    for split in ("train", "val", "test"):
        assert "auc" in meta["metrics"][split]["windows"]
    assert len(meta["binary"]["sha256"]) == 64
    assert (folder / meta["binary"]["file"]).is_file()


def test_other_schema_hash_is_refused(trained: tuple[Path, TrainResult], tmp_path: Path) -> None:
    folder = _copy(trained[0], tmp_path)
    meta = json.loads((folder / METADATA_FILE).read_text())
    meta["schema_hash"] = "0" * 64
    (folder / METADATA_FILE).write_text(json.dumps(meta))
    with pytest.raises(ModelError, match="feature schema"):
        load_model(folder)


def test_edited_booster_is_refused(trained: tuple[Path, TrainResult], tmp_path: Path) -> None:
    folder = _copy(trained[0], tmp_path)
    blob = bytearray((folder / "binary.ubj").read_bytes())
    blob[len(blob) // 2] ^= 0xFF
    (folder / "binary.ubj").write_bytes(bytes(blob))
    with pytest.raises(ModelError, match="checksum"):
        load_model(folder)


@pytest.mark.parametrize("damage", ["missing", "garbage", "not-ours", "no-features"])
def test_damaged_sidecar_is_a_model_error(
    trained: tuple[Path, TrainResult], tmp_path: Path, damage: str
) -> None:
    folder = _copy(trained[0], tmp_path)
    sidecar = folder / METADATA_FILE
    if damage == "missing":
        sidecar.unlink()
    elif damage == "garbage":
        sidecar.write_bytes(b"\x00{not json")
    elif damage == "not-ours":
        sidecar.write_text(json.dumps({"format": "something-else"}))
    else:
        meta = json.loads(sidecar.read_text())
        del meta["binary"]["features"]
        sidecar.write_text(json.dumps(meta))
    with pytest.raises(ModelError):
        load_model(folder)


def test_unknown_name_is_a_model_error() -> None:
    with pytest.raises(ModelError, match="not found"):
        load_model("no-such-model")


def test_save_replaces_atomically_and_leaves_no_temp_files(
    trained: tuple[Path, TrainResult], tmp_path: Path
) -> None:
    _, result = trained
    out = tmp_path / "again"
    save_model(out, result.binary, result.metadata, coin=None)
    save_model(out, result.binary, result.metadata, coin=result.coin)
    assert sorted(p.name for p in out.iterdir()) == ["binary.ubj", "coin.ubj", "metadata.json"]
    save_model(out, result.binary, result.metadata, coin=None)  # the stale coin booster goes
    assert sorted(p.name for p in out.iterdir()) == ["binary.ubj", "metadata.json"]
    assert load_model(out).coin is None
    target = tmp_path / "file.bin"
    atomic_write_bytes(target, b"one")
    atomic_write_bytes(target, b"two")
    assert target.read_bytes() == b"two" and [p.name for p in tmp_path.glob(".file.bin.*")] == []


def test_shipped_default_resolves_and_loads() -> None:
    folder = resources.models_dir() / resources.DEFAULT_MODEL_NAME
    if not (folder / METADATA_FILE).is_file():
        pytest.skip("no shipped default model in this checkout")
    model = load_model()
    assert model.path == folder and model.name == resources.DEFAULT_MODEL_NAME
    assert load_model(resources.DEFAULT_MODEL_NAME).threshold == model.threshold
    assert model.metadata["schema_hash"] == SCHEMA_HASH
    assert sum(f.stat().st_size for f in folder.iterdir()) < 4 * 1024 * 1024


def test_no_pickle_anywhere() -> None:
    """Models are XGBoost JSON/UBJ + JSON; nothing in the package may pickle."""
    out = subprocess.run(
        [
            "grep",
            "-rlE",
            "--include=*.py",
            r"\b(import pickle|from pickle|joblib|cloudpickle|dill)\b",
            "minerscope",
            "bench",
        ],
        capture_output=True,
        text=True,
        cwd=REPO,
    )
    assert out.stdout == "", out.stdout
    for model_file in (REPO / "models").rglob("*"):
        if model_file.is_file():
            head = model_file.read_bytes()[:2]
            assert head[:1] == b"{", model_file  # UBJ and JSON objects both start with '{'
            assert head != b"\x80\x04" and head[:1] != b"\x80", model_file  # pickle protocol header


@pytest.mark.parametrize(
    ("field", "value"),
    [("threshold", 2.5), ("threshold", float("nan")), ("threshold", -0.1), ("window_s", 0.0)],
)
def test_out_of_range_sidecar_numbers_name_the_file_and_field(
    trained: tuple[Path, TrainResult], tmp_path: Path, field: str, value: float
) -> None:
    folder = _copy(trained[0], tmp_path)
    sidecar = folder / METADATA_FILE
    meta = json.loads(sidecar.read_text())
    if field == "threshold":
        meta["binary"]["threshold"] = value
        name = "binary.threshold"
    else:
        meta[field] = value
        name = field
    sidecar.write_text(json.dumps(meta))  # (NaN is written as JSON's NaN extension, as a hand edit might)
    with pytest.raises(ModelError) as caught:
        load_model(folder)
    assert str(sidecar) in str(caught.value) and f"{name} must be" in str(caught.value)


def test_a_model_written_by_a_newer_minerscope_loads_with_a_warning(
    trained: tuple[Path, TrainResult], tmp_path: Path
) -> None:
    folder = _copy(trained[0], tmp_path)
    assert load_model(folder).warnings == ()
    sidecar = folder / METADATA_FILE
    meta = json.loads(sidecar.read_text())
    meta["libraries"]["minerscope"] = "99.1.0"
    sidecar.write_text(json.dumps(meta))
    (warning,) = load_model(folder).warnings
    assert str(sidecar) in warning and "newer" in warning and "99.1.0" in warning


def test_save_refuses_a_folder_holding_other_files(trained: tuple[Path, TrainResult], tmp_path: Path) -> None:
    from minerscope.errors import InputError

    _, result = trained
    proj = tmp_path / "proj"
    (proj / "sub").mkdir(parents=True)
    (proj / "notes.txt").write_text("mine")
    (proj / "sub" / "y.txt").write_text("also mine")
    with pytest.raises(InputError, match="not empty and holds no minerscope model"):
        save_model(proj, result.binary, result.metadata)
    assert sorted(p.name for p in proj.iterdir()) == ["notes.txt", "sub"]
    assert (proj / "sub" / "y.txt").read_text() == "also mine"
    model = tmp_path / "model"
    save_model(model, result.binary, result.metadata)
    save_model(model, result.binary, result.metadata)  # a model folder is still replaced
    (model / "README").write_text("kept")
    with pytest.raises(InputError, match="README"):
        save_model(model, result.binary, result.metadata)
    assert (model / "README").read_text() == "kept"
