"""Threshold choice and metrics, against hand-computed expectations."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from minerscope.model import evaluate as ev


def test_threshold_sits_just_above_the_highest_benign_score() -> None:
    y = np.array([0] * 100 + [1] * 10)
    benign = np.linspace(0.0, 0.8, 100)
    mining = np.array([0.5, 0.7, 0.81, 0.85, 0.9, 0.95, 0.97, 0.99, 0.995, 1.0])
    t = ev.choose_threshold(y, np.concatenate([benign, mining]), max_fpr=0.001)
    assert 0.8 < t.value < 0.8 + 1e-9
    assert t.fpr == 0.0
    assert t.recall == pytest.approx(0.8)  # 0.81 and above
    assert t.n_benign == 100 and t.n_mining == 10


def test_threshold_allows_the_permitted_false_positives() -> None:
    rng = np.random.default_rng(0)
    benign = rng.uniform(0.0, 1.0, 3000)
    y = np.array([0] * 3000 + [1] * 5)
    t = ev.choose_threshold(y, np.concatenate([benign, np.ones(5)]), max_fpr=0.001)
    # 3 benign (0.1 % of 3000) may score at or above the threshold, not 4
    assert (benign >= t.value).sum() == 3
    assert t.fpr <= 0.001
    assert t.value == pytest.approx(np.sort(benign)[::-1][3], abs=1e-9)


def test_threshold_never_below_one_half() -> None:
    y = np.array([0, 0, 0, 1, 1])
    t = ev.choose_threshold(y, np.array([0.01, 0.02, 0.03, 0.4, 0.9]))
    assert t.value == ev.MIN_THRESHOLD
    assert t.recall == 0.5


def test_threshold_needs_benign_samples() -> None:
    with pytest.raises(ValueError, match="benign"):
        ev.choose_threshold(np.array([1, 1]), np.array([0.2, 0.9]))


def test_auc_equals_mann_whitney_statistic() -> None:
    rng = np.random.default_rng(1)
    y = rng.integers(0, 2, 200)
    score = rng.normal(y * 0.7, 1.0)
    u = stats.mannwhitneyu(score[y == 1], score[y == 0]).statistic
    assert ev.roc_auc(y, score) == pytest.approx(u / ((y == 1).sum() * (y == 0).sum()))
    assert math.isnan(ev.roc_auc(np.ones(3), np.zeros(3)))


def test_binary_metrics_counts() -> None:
    m = ev.binary_metrics(np.array([1, 1, 1, 0, 0]), np.array([0.9, 0.6, 0.2, 0.7, 0.1]), 0.5)
    assert (m["tp"], m["fp"], m["fn"], m["tn"]) == (2, 1, 1, 1)
    assert m["recall"] == pytest.approx(2 / 3) and m["fpr"] == pytest.approx(0.5)
    assert m["precision"] == pytest.approx(2 / 3)


def test_coin_confusion_matrix() -> None:
    got = ev.coin_metrics(["xmr", "xmr", "ltc", "eth"], ["xmr", "ltc", "ltc", "eth"], ["eth", "ltc", "xmr"])
    assert got["confusion"] == [[1, 0, 0], [0, 1, 0], [0, 1, 1]]
    assert got["accuracy"] == pytest.approx(0.75)
    text = ev.format_confusion(got["confusion"], ["eth", "ltc", "xmr"])
    assert text.splitlines()[3].split() == ["xmr", "0", "1", "1"]


def test_seven_classifiers_on_separable_data() -> None:
    pytest.importorskip("sklearn")
    rng = np.random.default_rng(2)
    y = np.repeat([0, 1], 60)
    x = np.column_stack([rng.normal(y * 3.0, 1.0), rng.normal(0, 1, 120)]).astype(np.float32)
    x[::9, 1] = np.nan  # undefined statistics must not break the baselines
    rows = ev.compare_classifiers(
        x[::2], y[::2], np.ones(60), x[1::2], y[1::2], seed=0, xgb_scores=y[1::2] * 0.9 + 0.05, threshold=0.6
    )
    names = [r["classifier"] for r in rows]
    assert names[:7] == list(ev.CLASSIFIERS) and names[7] == "xgboost@shipped"
    for row in rows:
        assert row["auc"] > 0.9, row["classifier"]
    table = ev.format_table(rows, ["classifier", "auc", "recall"])
    assert "random-forest" in table and len(table.splitlines()) == 2 + len(rows)


def test_family_accuracy_counts_etc_and_ethw_as_one_answer() -> None:
    truth = ["etc", "ethw", "xmr", "btc"]
    pred = ["ethw", "ethw", "xmr", "ltc"]
    assert ev.coin_metrics(truth, pred, ["btc", "etc", "ethw", "ltc", "xmr"])["accuracy"] == 0.5
    assert ev.family_accuracy(truth, pred) == 0.75
    assert "etc/ethw as one" in ev.family_note()
    assert math.isnan(ev.family_accuracy([], []))


def test_a_gap_between_the_classes_gives_the_floor_and_costs_no_recall() -> None:
    benign = np.linspace(0.0, 0.3, 500)
    mining = np.linspace(0.6, 1.0, 1000)
    y = np.array([0] * 500 + [1] * 1000)
    score = np.concatenate([benign, mining])
    low = ev.choose_threshold(y, score)
    assert low.value == ev.MIN_THRESHOLD and low.recall == 1.0 and low.fpr == 0.0


def test_baselines_adapt_to_a_tiny_training_split() -> None:
    """12 training windows (lab-real's split under the shipped model): kNN asked for 15
    neighbours raised; a training split of one class cannot fit most baselines at all."""
    pytest.importorskip("sklearn")
    rng = np.random.default_rng(3)
    y = np.repeat([0, 1], 10)
    x = np.column_stack([rng.normal(y * 3.0, 1.0), rng.normal(0, 1, 20)]).astype(np.float32)
    train, test = np.r_[0:6, 10:16], np.r_[6:10, 16:20]
    kw = {"seed": 0, "xgb_scores": y[test] * 0.9, "threshold": 0.6, "model_label": "mine"}
    rows = ev.compare_classifiers(x[train], y[train], np.ones(12), x[test], y[test], **kw)
    assert [r["classifier"] for r in rows][-1] == "xgboost@mine"
    assert not any(r.get("note") for r in rows)
    knn = next(r for r in rows if r["classifier"] == "knn")
    assert knn["auc"] > 0.6  # fitted and scoring (6 neighbours of 12 windows)

    one_class = np.r_[10:16]  # mining only
    rows = ev.compare_classifiers(x[one_class], y[one_class], np.ones(6), x[test], y[test], **kw)
    noted = {r["classifier"]: r["note"] for r in rows if r.get("note")}
    assert "logistic-regression" in noted and "could not be fitted" in noted["logistic-regression"]
    for row in rows:
        if row.get("note"):
            assert math.isnan(row["auc"]) and row["tp"] == "-"
    assert ev.format_table(rows, ["classifier", "auc", "tp"])  # the table still renders
