"""Scoring flows: one row per flow, its most suspicious window, coin and explanation."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import polars as pl
import pytest
import xgboost

from minerscope.features.synthetic import synthetic_table
from minerscope.features.windows import extract_features
from minerscope.flows.records import FlowTable
from minerscope.jsonfloat import json_numbers
from minerscope.model import classify
from minerscope.model.artifact import load_model
from minerscope.model.classify import score
from minerscope.model.train import TrainResult


def test_one_row_per_flow_with_verdict_coin_and_reasons(trained: tuple[Path, TrainResult]) -> None:
    folder, _ = trained
    model = load_model(folder)
    table, kinds = synthetic_table(6, 6, seed=77)
    rows = score(table, model)
    assert rows["flow_id"].to_list() == list(range(12))
    assert set(rows["stage1"].unique().to_list()) <= {"mining", "benign", "unscored"}
    assert (rows["stage1"] == "mining").to_list() == (rows["p_mining"] >= model.threshold).to_list()
    # synthetic mining is easy: the verdicts follow the labels
    assert ((rows["p_mining"].to_numpy() >= model.threshold) == (kinds == 1)).mean() >= 0.9
    for row in rows.iter_rows(named=True):
        probs = row["coin_probs"]
        if row["p_mining"] >= classify.COIN_FLOOR:
            assert set(probs) == {"ltc", "xmr"} and abs(sum(probs.values()) - 1.0) < 1e-5
            assert row["coin"] == max(probs, key=probs.__getitem__)
        else:
            assert row["coin"] is None and probs is None
        top = row["top_features"]
        assert 1 <= len(top) <= 5
        assert all(t["name"] in model.binary_features for t in top)
        contributions = [abs(t["contribution"]) for t in top]
        assert contributions == sorted(contributions, reverse=True)


def test_the_reported_window_is_the_most_suspicious(trained: tuple[Path, TrainResult]) -> None:
    folder, _ = trained
    model = load_model(folder)
    table, _ = synthetic_table(4, 4, seed=78, mining_duration=(1000.0, 1500.0))
    rows = score(table, model)
    feats = extract_features(table, window_s=model.window_s, whole_flow=False)
    names = list(model.binary_features)
    p = model.binary.predict(
        xgboost.DMatrix(feats.select(names).to_numpy().astype(np.float32), feature_names=names)
    )
    per_window = feats.select("flow_id", "window").with_columns(pl.Series("p", p))
    for row in rows.iter_rows(named=True):
        mine = per_window.filter(pl.col("flow_id") == row["flow_id"])
        assert row["windows"] == mine.height
        assert row["p_mining"] == float(mine["p"].max())
        assert row["window"] == mine.filter(pl.col("p") == mine["p"].max())["window"][0]
    assert rows["windows"].max() >= 4  # long flows are scored window by window


def test_top_feature_values_are_the_window_values(trained: tuple[Path, TrainResult]) -> None:
    folder, _ = trained
    table, _ = synthetic_table(2, 2, seed=79)
    rows = score(table, folder)
    feats = extract_features(table, window_s=300.0, whole_flow=False)
    for row in rows.iter_rows(named=True):
        window = feats.filter((pl.col("flow_id") == row["flow_id"]) & (pl.col("window") == row["window"]))
        for t in row["top_features"]:
            assert t["value"] == window[t["name"]][0] or (
                np.isnan(t["value"]) and np.isnan(window[t["name"]][0])
            )


def test_empty_table_gives_empty_frame(trained: tuple[Path, TrainResult]) -> None:
    folder, _ = trained
    rows = score(FlowTable.empty(), folder)
    assert rows.height == 0 and "p_mining" in rows.columns


def test_default_model_scores_when_shipped() -> None:
    from minerscope import resources

    if not (resources.models_dir() / resources.DEFAULT_MODEL_NAME / "metadata.json").is_file():
        import pytest

        pytest.skip("no shipped default model in this checkout")
    table, kinds = synthetic_table(3, 3, seed=80)
    rows = score(table)
    assert rows.height == 6 and rows["p_mining"].is_between(0.0, 1.0).all()


def test_a_coin_only_for_flows_worth_a_look() -> None:
    """Above COIN_FLOOR, or with stage-0 evidence, a flow gets the coin model's answer;
    a flow stage 1 calls clearly benign gets none (it would be noise read as a finding)."""
    from minerscope import resources
    from minerscope.flows.assemble import assemble_capture

    model = load_model(None)
    table = assemble_capture(str(resources.sample_capture()))[0]
    rows = score(table, model, json_text=True)
    low = rows["p_mining"] < classify.COIN_FLOOR
    assert 0 < int(low.sum()) < rows.height
    assert rows.filter(low)["coin"].null_count() == int(low.sum())
    assert rows.filter(low)["coin_probs"].null_count() == int(low.sum())
    high = rows.filter(~low)
    assert high["coin"].null_count() == 0
    assert all(set(json.loads(text)) == set(model.coin_classes) for text in high["coin_probs"])
    # stage-0 evidence on two clearly benign (scored) flows: they get a coin too, the rest do not change
    quiet = rows.filter(low & (pl.col("windows") > 0))["flow_id"].to_list()[:2]
    table.summary = table.summary.with_columns(
        pl.when(pl.col("flow_id").is_in(quiet))
        .then(pl.lit('[{"kind":"stratum"}]'))
        .otherwise(pl.lit(""))
        .alias("stage0")
    )
    again = score(table, model, json_text=True)
    changed = again.filter(pl.col("coin").is_not_null() != rows["coin"].is_not_null())
    assert sorted(changed["flow_id"].to_list()) == sorted(quiet)
    assert again.drop("coin", "coin_probs").equals(rows.drop("coin", "coin_probs"))


def test_flows_without_packets_are_kept_unscored(trained: tuple[Path, TrainResult]) -> None:
    from minerscope.flows.records import FLOW_SUMMARY_SCHEMA

    folder, _ = trained
    empty = FlowTable.empty()
    summary = (
        pl.DataFrame({"flow_id": [0, 1]}, schema={"flow_id": pl.Int64})
        .with_columns(
            *[pl.lit(None, dtype=d).alias(n) for n, d in FLOW_SUMMARY_SCHEMA.items() if n != "flow_id"]
        )
        .select(list(FLOW_SUMMARY_SCHEMA))
    )
    table = FlowTable(
        summary=summary,
        pkt_offsets=np.zeros(3, np.int64),
        pkt_ts=empty.pkt_ts,
        pkt_size=empty.pkt_size,
        pkt_payload_len=empty.pkt_payload_len,
        pkt_dir=empty.pkt_dir,
        pkt_flags=empty.pkt_flags,
        msg_offsets=np.zeros(3, np.int64),
        msg_ts=empty.msg_ts,
        msg_len=empty.msg_len,
        msg_dir=empty.msg_dir,
        msg_type=empty.msg_type,
    )
    rows = score(table, folder)
    assert rows["flow_id"].to_list() == [0, 1]
    assert rows["stage1"].to_list() == ["unscored", "unscored"] and rows["windows"].to_list() == [0, 0]
    assert rows["window"].null_count() == 2


def test_windows_with_too_few_messages_are_not_scored() -> None:
    """The shipped model trained on windows of >= min_messages application messages: those
    are the windows scored; a flow with none of them is unscored (p 0.0, no window, no coin
    or reasons, stage-0 evidence or not), and the others report their best scored window."""
    from minerscope import resources
    from minerscope.flows.assemble import assemble_capture

    model = load_model(None)
    assert model.min_messages == 4
    table = assemble_capture(str(resources.sample_capture()))[0]
    every = extract_features(table, window_s=model.window_s, whole_flow=False)
    enough = every.filter(pl.col("bidir_msg_count") >= model.min_messages)
    assert 0 < enough.height < every.height  # the sample has both
    # stage-0 evidence on every flow: an unscored flow still gets no coin
    table.summary = table.summary.with_columns(pl.lit('[{"kind":"stratum"}]').alias("stage0"))
    rows = score(table, model, json_text=True)
    counts = dict(enough.group_by("flow_id").len().iter_rows())
    assert rows["windows"].to_list() == [counts.get(f, 0) for f in rows["flow_id"].to_list()]
    none = rows.filter(pl.col("windows") == 0)
    assert 0 < none.height < rows.height
    assert none["p_mining"].to_list() == [0.0] * none.height and set(none["stage1"]) == {"unscored"}
    for name in ("window", "window_start", "coin", "coin_probs", "top_features"):
        assert none[name].null_count() == none.height, name
    scored = rows.filter(pl.col("windows") > 0)
    best = scored.join(enough.select("flow_id", "window", "bidir_msg_count"), on=["flow_id", "window"])
    assert best.height == scored.height  # every reported window is one of those scored
    assert scored["coin"].null_count() == 0 and scored["top_features"].null_count() == 0


def test_a_model_that_does_not_say_scores_every_window(tmp_path: Path) -> None:
    """A sidecar without ``min_messages`` (older models) scores every window, as before;
    a malformed one is refused by name."""
    import shutil

    from minerscope import resources
    from minerscope.errors import ModelError
    from minerscope.flows.assemble import assemble_capture

    folder = tmp_path / "older"
    shutil.copytree(resources.models_dir() / resources.DEFAULT_MODEL_NAME, folder)
    meta = json.loads((folder / "metadata.json").read_text())
    del meta["min_messages"]
    (folder / "metadata.json").write_text(json.dumps(meta))
    model = load_model(folder)
    assert model.min_messages == 0
    table = assemble_capture(str(resources.sample_capture()))[0]
    rows = score(table, model)
    every = extract_features(table, window_s=model.window_s, whole_flow=False)
    counts = dict(every.group_by("flow_id").len().iter_rows())
    assert rows["windows"].to_list() == [counts.get(f, 0) for f in rows["flow_id"].to_list()]
    for bad in (-1, 2.5, True, "4", 10**7):
        meta["min_messages"] = bad
        (folder / "metadata.json").write_text(json.dumps(meta))
        with pytest.raises(ModelError, match="min_messages must be a whole number"):
            load_model(folder)


def test_exact_shap_above_the_floor_saabas_below(
    trained: tuple[Path, TrainResult], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Exact TreeSHAP for every window an analyst may look at; the cheap attribution only below."""
    # this small model scores synthetic benign flows above the shipped floor: raise it
    monkeypatch.setattr(classify, "EXACT_FLOOR", 0.5)
    folder, _ = trained
    model = load_model(folder)
    table, _ = synthetic_table(6, 6, seed=80)
    rows = score(table, model)
    feats = extract_features(table, window_s=model.window_s, whole_flow=False)
    names = list(model.binary_features)
    methods = set()
    for row in rows.iter_rows(named=True):
        window = feats.filter((pl.col("flow_id") == row["flow_id"]) & (pl.col("window") == row["window"]))
        dmat = xgboost.DMatrix(window.select(names).to_numpy().astype(np.float32), feature_names=names)
        approx = row["p_mining"] < classify.EXACT_FLOOR
        methods.add(approx)
        want = model.binary.predict(dmat, pred_contribs=True, approx_contribs=approx)[0]
        for t in row["top_features"]:
            assert t["contribution"] == pytest.approx(float(want[names.index(t["name"])]), abs=1e-6)
    assert methods == {True, False}  # both paths were exercised


def _strict_json(value: object) -> str:
    """``value`` as compact strict JSON, non-finite numbers as null (what the JSONL writer prints)."""

    def finite(v: object) -> object:
        if isinstance(v, float):
            return v if np.isfinite(v) else None
        if isinstance(v, dict):
            return {k: finite(x) for k, x in v.items()}
        if isinstance(v, list):
            return [finite(x) for x in v]
        return v

    return json.dumps(finite(value), separators=(",", ":"), allow_nan=False)


def test_json_text_spells_the_struct_values_as_json_does(trained: tuple[Path, TrainResult]) -> None:
    """The text columns triage passes through to JSONL: byte for byte ``json.dumps`` of the structs."""
    folder, _ = trained
    model = load_model(folder)
    table, _ = synthetic_table(8, 8, seed=81)
    structs = score(table, model)
    texts = score(table, model, json_text=True)
    assert texts.drop("coin_probs", "top_features").equals(structs.drop("coin_probs", "top_features"))
    assert texts.schema["coin_probs"] == pl.Utf8 and texts.schema["top_features"] == pl.Utf8
    checked = 0
    for s, t in zip(structs.iter_rows(named=True), texts.iter_rows(named=True), strict=True):
        assert t["coin_probs"] == _strict_json(s["coin_probs"])
        assert t["top_features"] == _strict_json(s["top_features"])
        checked += len(s["top_features"])
    assert checked > 0
    # tiny values are where a formatter may spell numbers differently from Python's json
    small = np.array([1e-05, 3.2e-05, 0.0001, -0.0, 1.5e16, np.nan, np.inf, 0.1], dtype=np.float64)
    assert json_numbers(small).tolist() == [
        "1e-05",
        "3.2e-05",
        "0.0001",
        "-0.0",
        "1.5e+16",
        "null",
        "null",
        "0.1",
    ]


def test_repeated_windows_are_explained_once_with_the_same_result(trained: tuple[Path, TrainResult]) -> None:
    """Deduplicated rows give the attributions and coin probabilities of scoring every row."""
    folder, _ = trained
    model = load_model(folder)
    table, _ = synthetic_table(4, 4, seed=82)
    feats = extract_features(table, window_s=model.window_s, whole_flow=False)
    x = feats.select(list(model.binary_features)).to_numpy().astype(np.float32)
    x[1] = np.nan  # NaN rows are equal bit for bit
    x[3] = np.nan
    repeated = np.concatenate([x, x[::-1], x[:3]])
    distinct, inverse = classify.unique_rows(repeated)
    assert distinct.shape[0] == np.unique(np.ascontiguousarray(x).view(np.void(x.shape[1] * 4)).ravel()).size
    assert np.array_equal(distinct[inverse], repeated, equal_nan=True)
    names = list(model.binary_features)
    for approx in (False, True):
        p = np.full(len(repeated), 0.0 if approx else 1.0)
        order, got = classify._contributions(model.binary_file, repeated, model.binary_features, p)
        whole = model.binary.predict(
            xgboost.DMatrix(repeated, feature_names=names), pred_contribs=True, approx_contribs=approx
        )[:, : len(names)].astype(np.float64)
        # the top five of every row, largest magnitude first, ties in feature order
        want = np.argsort(-np.abs(whole), axis=1, kind="stable")[:, : order.shape[1]]
        assert np.array_equal(got, np.take_along_axis(whole, want, 1))
        assert np.array_equal(np.where(got != 0, order, -1), np.where(got != 0, want, -1))
        assert np.count_nonzero(got) > len(repeated)
    chosen = pl.concat([feats, feats.reverse(), feats.head(3)])
    cx = chosen.select(list(model.coin_features)).to_numpy().astype(np.float32)
    coin, coin_probs = classify._coin_columns(model, cx, classify.score_schema(model))
    probs = model.coin.predict(xgboost.DMatrix(cx, feature_names=list(model.coin_features)))
    assert np.array_equal(coin_probs.struct.unnest().to_numpy(), probs.astype(np.float64))
    assert model.coin_classes and coin.to_list() == [model.coin_classes[i] for i in probs.argmax(axis=1)]
