"""The training recipe: samples, the split by group, weights, and what training reports."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from minerscope.errors import InputError
from minerscope.model.train import (
    MIN_MESSAGES,
    LabelledFlows,
    TrainResult,
    build_samples,
    deal_groups,
    group_weights,
    split_groups,
    summary_lines,
    train_models,
)
from tests.model.conftest import labelled_groups


def test_samples_carry_labels_and_skip_tiny_windows() -> None:
    samples = build_samples(labelled_groups(n_groups=2, per_class=2))
    assert {"label", "coin", "group", "source", "flow_key"} <= set(samples.columns)
    assert samples["bidir_msg_count"].min() >= MIN_MESSAGES
    assert (samples["window"] >= 0).all()
    assert (
        samples.filter(pl.col("label") == 0)["coin"].null_count()
        == samples.filter(pl.col("label") == 0).height
    )


def test_split_is_by_group_and_deterministic() -> None:
    samples = build_samples(labelled_groups(n_groups=10, per_class=2))
    split = split_groups(samples, seed=5)
    assert split == split_groups(samples, seed=5)
    assert split != split_groups(samples, seed=6)
    assert set(split.values()) == {"train", "val", "test"}
    tagged = samples.with_columns(pl.col("group").replace_strict(split).alias("split"))
    # every window of a flow, and every flow of a group, sits in one part
    assert tagged.group_by("flow_key").agg(pl.col("split").n_unique())["split"].max() == 1
    assert tagged.group_by("group").agg(pl.col("split").n_unique())["split"].max() == 1


def test_weights_balance_classes_and_groups() -> None:
    frame = pl.DataFrame({"group": ["a"] * 9 + ["b"] + ["c"] * 4, "label": [1] * 10 + [0] * 4})
    w = group_weights(frame)
    assert w[:10].sum() == pytest.approx(w[10:].sum())  # classes weigh the same
    assert w.mean() == pytest.approx(1.0)
    # group a has 9 windows, group b one: a's total is sqrt(9)=3 times b's, not 9 times
    assert w[:9].sum() / w[9] == pytest.approx(3.0)


def test_training_reports_selection_threshold_and_metrics(trained: tuple[Path, TrainResult]) -> None:
    _, result = trained
    lines = summary_lines(result)
    assert lines[0].startswith("binary: ") and "survive mann-whitney-u" in lines[0]
    assert lines[1].startswith("coin: ")
    assert any(line.startswith("threshold ") for line in lines)
    assert result.metadata["metrics"]["test"]["windows"]["auc"] > 0.9
    splits = result.samples["split"].unique().to_list()
    assert sorted(splits) == ["test", "train", "val"]
    per_source = result.metadata["metrics"]["test_per_source"]
    assert set(per_source) <= {"synthetic-a", "synthetic-b"} and per_source


def test_training_needs_both_classes() -> None:
    samples = build_samples(labelled_groups(n_groups=4, per_class=2))
    with pytest.raises(InputError, match="mining and benign"):
        train_models(samples.filter(pl.col("label") == 1), rounds=2)


def test_threshold_is_chosen_on_validation(trained: tuple[Path, TrainResult]) -> None:
    _, result = trained
    meta = result.metadata["binary"]
    val = result.samples.filter(pl.col("split") == "val")
    from minerscope.model.train import predict

    p = predict(result.binary, val, meta["features"])
    benign = p[val["label"].to_numpy() == 0]
    assert meta["threshold"] >= 0.5
    assert (benign >= meta["threshold"]).mean() <= 0.001
    mining = p[val["label"].to_numpy() == 1]
    assert meta["threshold_validation"]["recall"] == pytest.approx(
        float(np.mean(mining >= meta["threshold"]))
    )


def test_excluded_coins_train_the_binary_model_but_are_no_coin_class() -> None:
    samples = build_samples(labelled_groups(n_groups=6, per_class=2))
    # every third xmr window becomes "eth": a coin kept out of the coin classes
    samples = samples.with_columns(
        pl.when((pl.col("coin") == "xmr") & (pl.int_range(pl.len()) % 3 == 0))
        .then(pl.lit("eth"))
        .otherwise(pl.col("coin"))
        .alias("coin")
    )
    result = train_models(samples, seed=1, rounds=3, coin_exclude=("eth",))
    coin = result.metadata["coin"]
    assert coin is not None and coin["classes"] == ["ltc", "xmr"] and coin["excluded"] == ["eth"]
    train = result.samples.filter(pl.col("split") == "train")
    assert (train["coin"] == "eth").any()  # its windows were in the binary training data
    kept = train_models(samples, seed=1, rounds=3, coin_exclude=())
    assert kept.metadata["coin"] is not None and kept.metadata["coin"]["classes"] == ["eth", "ltc", "xmr"]


def test_held_out_groups_are_only_measured(tmp_path: Path) -> None:
    from minerscope.model.train import holdout_split, train

    data = labelled_groups(n_groups=8, per_class=3, seed=4)
    held = labelled_groups(n_groups=2, per_class=3, seed=9)
    for ds in held:  # a different source and group names, as a real-capture folder would have
        ds.labels = ds.labels.with_columns(
            pl.lit("held-source").alias("source"), (pl.lit("held/") + pl.col("group")).alias("group")
        )
    samples = build_samples([*data, *held])
    held_groups = {"held/capture0", "held/capture1"}
    split = holdout_split(samples, held_groups, seed=2)
    assert {split[g] for g in held_groups} == {"test"}
    # the other groups are dealt exactly as without the held-out data
    rest = split_groups(samples.filter(~pl.col("group").is_in(list(held_groups))), seed=2)
    assert {g: v for g, v in split.items() if g not in held_groups} == rest

    result = train(data, tmp_path / "m", seed=2, rounds=5, holdout=held)
    tagged = result.samples.filter(pl.col("source") == "held-source")
    assert tagged.height and set(tagged["split"].unique().to_list()) == {"test"}
    metrics = result.metadata["metrics"]
    assert "held-source" in metrics["test_per_source"]
    flows = metrics["test_per_source_flows"]["held-source"]
    assert flows["n"] == tagged["flow_key"].n_unique()
    assert result.metadata["data"]["heldout_groups"] == 2


def _renamed(datasets: list[LabelledFlows], prefix: str) -> list[LabelledFlows]:
    return [
        dataclasses.replace(
            ds, labels=ds.labels.with_columns((pl.lit(prefix) + pl.col("group")).alias("group"))
        )
        for ds in datasets
    ]


def test_coin_data_trains_the_coin_model_and_leaves_the_binary_one_alone(tmp_path: Path) -> None:
    from minerscope.model.artifact import booster_bytes
    from minerscope.model.train import train

    data = labelled_groups(n_groups=8, per_class=3, seed=4)
    extra = _renamed(labelled_groups(n_groups=6, per_class=3, seed=11), "coin/")
    coin_only = [dataclasses.replace(ds, coin_only=True) for ds in extra]
    samples = build_samples([*data, *coin_only])
    assert samples.filter(~pl.col("binary_task"))["group"].str.starts_with("coin/").all()
    split = split_groups(samples.filter(pl.col("binary_task")), seed=3)
    split.update(split_groups(samples.filter(~pl.col("binary_task")), seed=3))
    assert deal_groups(samples, set(), seed=3) == split
    with_extra = train_models(samples, seed=3, rounds=5, split=split)
    without = train_models(samples.filter(pl.col("binary_task")), seed=3, rounds=5, split=split)
    # same binary rows and split: the binary booster is the same bytes, the coin one is not
    assert booster_bytes(with_extra.binary) == booster_bytes(without.binary)
    assert with_extra.coin is not None and without.coin is not None
    assert booster_bytes(with_extra.coin) != booster_bytes(without.coin)
    # binary metrics count the binary rows; coin metrics the coin-only test windows as well
    meta = with_extra.metadata
    n_binary = sum(meta["metrics"][s]["windows"]["n"] for s in ("train", "val", "test"))
    assert n_binary == samples.filter(pl.col("binary_task")).height
    coin_test = samples.filter(
        pl.col("group").replace_strict(split).eq("test")
        & (pl.col("label") == 1)
        & pl.col("coin").is_not_null()
    )
    assert meta["coin"]["metrics"]["test"]["n"] == coin_test.height
    assert coin_test.filter(~pl.col("binary_task")).height > 0
    assert meta["data"]["coin_only_groups"] == sorted(g for g in split if g.startswith("coin/"))
    # the entry point deals the binary groups as without the coin data: same binary model
    result = train(data, tmp_path / "m", seed=3, rounds=5, coin_data=extra)
    alone = train(data, tmp_path / "alone", seed=3, rounds=5)
    assert booster_bytes(result.binary) == booster_bytes(alone.binary)
    assert result.metadata["data"]["coin_only_groups"] == meta["data"]["coin_only_groups"]
    assert result.metadata["metrics"]["test"] == alone.metadata["metrics"]["test"]


def test_a_threshold_that_catches_no_mining_is_refused_and_nothing_is_written(tmp_path: Path) -> None:
    """Validation groups labelled the wrong way round: the threshold clears their "benign"
    windows (really mining) and so every "mining" one: a model that could never flag mining."""
    from minerscope.model.train import train

    data = labelled_groups(n_groups=10, per_class=4, seed=2)
    split = deal_groups(build_samples(data), set(), seed=1)
    flipped = []
    for ds in data:
        if split[ds.labels["group"][0]] == "val":  # every group has both classes: same split
            ds = dataclasses.replace(
                ds, labels=ds.labels.with_columns((1 - pl.col("label")).cast(pl.Int8).alias("label"))
            )
        flipped.append(ds)
    out = tmp_path / "m"
    with pytest.raises(InputError, match=r"recall 0\).*could never flag mining; not written") as caught:
        train(flipped, out, seed=1, rounds=5)
    assert "threshold 0." in str(caught.value) and "mining validation windows" in str(caught.value)
    assert not out.exists()


def test_few_benign_validation_windows_are_warned_about(trained: tuple[Path, TrainResult]) -> None:
    from minerscope.model.train import threshold_warnings

    _, result = trained
    n_benign = result.metadata["binary"]["threshold_validation"]["n_benign"]
    assert 0 < n_benign < 1000
    (line,) = threshold_warnings(result.metadata)
    assert f"rests on {n_benign} benign validation windows" in line and "needs at least 1000" in line
    many = {**result.metadata, "binary": {**result.metadata["binary"]}}
    many["binary"]["threshold_validation"] = {**many["binary"]["threshold_validation"], "n_benign": 5000}
    assert threshold_warnings(many) == []
