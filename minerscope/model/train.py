"""Training: labelled flows -> window samples -> selection -> XGBoost -> a model folder.

The recipe, in the order it runs (all of it recorded in the sidecar):

1. Every labelled flow is cut into windows (:func:`~minerscope.features.windows.extract_features`);
   a window with fewer than :data:`MIN_MESSAGES` application messages says nothing
   and is dropped (reconnect attempts, lone DNS packets).
2. The split is by *group* (a capture file, or a lab session), never by window: every
   window of a flow, and every flow of a capture, lands in the same part. Groups are
   shuffled with the seed inside two strata (groups with mining / without) and dealt
   60/20/20 into train/validation/test. *Held-out* data (``--holdout``: real captures)
   goes to test whole (:func:`holdout_split`): measured per source, never trained on.
   *Coin-only* data (``--coin-data``) is dealt on its own and serves the coin model
   only; the binary groups are dealt as if it were absent.
3. Features are selected on the training part only (Mann-Whitney U for mining vs
   benign, Kruskal-Wallis across coins, Benjamini-Hochberg FDR 0.01).
4. Sample weights make every group count about the same whatever its length
   (``1/sqrt(windows in group)``), then balance the two classes: an 11-hour capture
   must not outvote fifty short ones.
5. XGBoost (``binary:logistic``; ``multi:softprob`` over the coins, trained on mining
   windows only) with early stopping on the validation part; the operating threshold
   is the lowest one that keeps the benign false-positive rate on validation windows
   <= 0.1 %. A threshold that catches no mining validation window is refused, and one
   resting on too few benign windows for that rate to be measured is warned about
   (:func:`threshold_warnings`).
6. Metrics on the test part, per window and per flow (a flow's score is its most
   suspicious window), overall and per data source.
"""

from __future__ import annotations

import dataclasses
import math
import platform
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt
import polars as pl

from minerscope.errors import InputError
from minerscope.features.schema import FEATURE_NAMES, SCHEMA_HASH, SCHEMA_VERSION
from minerscope.features.selection import DEFAULT_ALPHA, Selection, select_features
from minerscope.features.windows import DEFAULT_WINDOW_S, extract_features
from minerscope.flows.records import FlowTable
from minerscope.model import evaluate as ev

if TYPE_CHECKING:
    import xgboost

MIN_MESSAGES = 4
"""Windows with fewer application messages are not training or test samples."""

LABEL_COLUMNS = ("label", "coin", "group", "source")

SPLITS = ("train", "val", "test")

DEFAULT_PARAMS: dict[str, Any] = {
    "max_depth": 4,
    "eta": 0.1,
    "subsample": 0.8,
    "colsample_bytree": 0.8,
    "min_child_weight": 1.0,
    "lambda": 1.0,
    "tree_method": "hist",
    "nthread": 1,  # the machine is shared; training is small
}

COIN_PARAMS: dict[str, Any] = {**DEFAULT_PARAMS}
"""Coin model parameters (depth 6 measured no better than 4 on the lab test split)."""

COIN_EXCLUDE: tuple[str, ...] = ("eth",)
"""Coins kept out of the coin model's classes (their windows still train the binary model).

Pre-Merge ETH comes only from real captures: two independent ethminer sessions (one flow
appears in two CJ-Sniffer files) and one nDPI flow, too few groups to train *and* test a
class, and a coin that has not been mined since September 2022. Its traffic is the
ethash-family dialect that ETC and ETHW continue, so a flow of it is reported as one of
those; as its own class it would only take probability from ETC/ETHW.
"""


@dataclass(slots=True)
class LabelledFlows:
    """A flow table and one label row per flow.

    ``labels`` columns: ``label`` (Int8: 1 mining, 0 benign, -1 unlabelled: excluded),
    ``coin`` (Utf8, lower case, null when benign or unknown), ``group`` (Utf8: the unit
    of the split, e.g. the capture path or lab session), ``source`` (Utf8: where the data
    came from, for per-source metrics).

    ``coin_only``: the flows train and test the coin model and never the binary one
    (``train --coin-data``: mining-heavy captures that would tilt the binary model
    towards calling short exchanges mining, see :func:`train_models`).
    """

    table: FlowTable
    labels: pl.DataFrame
    coin_only: bool = False

    def __post_init__(self) -> None:
        if self.labels.height != len(self.table):
            raise InputError(f"{self.labels.height} label rows for {len(self.table)} flows")
        missing = [c for c in LABEL_COLUMNS if c not in self.labels.columns]
        if missing:
            raise InputError(f"label frame lacks columns {missing}")


def build_samples(
    datasets: Sequence[LabelledFlows],
    *,
    window_s: float = DEFAULT_WINDOW_S,
    min_messages: int = MIN_MESSAGES,
) -> pl.DataFrame:
    """Window feature rows of every labelled flow, with its label columns and a ``flow_key``.

    ``flow_key`` (``"<dataset index>:<flow_id>"``) identifies a flow across datasets;
    ``binary_task`` is false for the rows of ``coin_only`` datasets.
    """
    frames = []
    for i, ds in enumerate(datasets):
        if len(ds.table) == 0:
            continue
        feats = extract_features(ds.table, window_s=window_s, whole_flow=False, min_messages=min_messages)
        labels = ds.labels.select(
            pl.Series("flow_id", ds.table.summary["flow_id"].to_numpy()),
            pl.col("label").cast(pl.Int8),
            pl.col("coin").cast(pl.Utf8),
            pl.col("group").cast(pl.Utf8),
            pl.col("source").cast(pl.Utf8),
        )
        joined = feats.join(labels, on="flow_id", how="left").with_columns(
            pl.format("{}:{}", pl.lit(i), pl.col("flow_id")).alias("flow_key"),
            pl.lit(not ds.coin_only).alias("binary_task"),
        )
        frames.append(joined)
    if not frames:
        raise InputError("no flows in the training data")
    samples = pl.concat(frames, how="vertical")
    return samples.filter(pl.col("label") >= 0)


def split_groups(
    samples: pl.DataFrame, *, seed: int, fractions: tuple[float, float, float] = (0.6, 0.2, 0.2)
) -> dict[str, str]:
    """Assign every group to train/val/test, stratified by "has mining windows".

    Each stratum with at least 3 groups gives val and test at least one group each.

    Returns:
        group -> split name.
    """
    per_group = samples.group_by("group").agg(pl.col("label").max().alias("has_mining")).sort("group")
    rng = np.random.default_rng(seed)
    out: dict[str, str] = {}
    for flag in (0, 1):
        groups = per_group.filter(pl.col("has_mining") == flag)["group"].to_list()
        groups = [groups[i] for i in rng.permutation(len(groups))]
        n = len(groups)
        n_val = max(1, round(fractions[1] * n)) if n >= 3 else 0
        n_test = max(1, round(fractions[2] * n)) if n >= 3 else (1 if n == 2 else 0)
        for j, g in enumerate(groups):
            out[g] = "val" if j < n_val else "test" if j < n_val + n_test else "train"
    return out


def holdout_split(samples: pl.DataFrame, held: set[str] | frozenset[str], *, seed: int) -> dict[str, str]:
    """:func:`split_groups` over the groups not in ``held``; every ``held`` group goes to test.

    Held-out groups (real captures, say) are never trained on and never choose the
    threshold or stop the boosting: they are measured only, which is the honest figure
    for data the lab did not make.
    """
    split = split_groups(samples.filter(~pl.col("group").is_in(list(held))), seed=seed)
    split.update({g: "test" for g in held})
    return split


def deal_groups(samples: pl.DataFrame, held: set[str] | frozenset[str], *, seed: int) -> dict[str, str]:
    """The split :func:`train` uses: ``held`` groups to test, the rest by :func:`split_groups`.

    Binary-task groups are dealt as if the coin-only ones were absent (the binary model is
    then the one the other data alone give); coin-only groups are dealt on their own.
    """
    binary_rows = samples.filter(pl.col("binary_task"))
    split = holdout_split(binary_rows, held, seed=seed) if held else split_groups(binary_rows, seed=seed)
    if binary_rows.height < samples.height:
        split.update(split_groups(samples.filter(~pl.col("binary_task")), seed=seed))
    return split


def group_weights(samples: pl.DataFrame, target: str = "label") -> npt.NDArray[np.float64]:
    """``1/sqrt(windows in group)``, rescaled so every class of ``target`` has equal total weight."""
    if samples.height == 0:
        return np.zeros(0)
    raw = samples.select(
        (1.0 / pl.len().over("group").cast(pl.Float64).sqrt()).alias("w"), pl.col(target).alias("t")
    )
    n_classes = raw["t"].n_unique()
    per_class = samples.height / n_classes  # so the mean weight is 1
    w = raw.with_columns((pl.col("w") * per_class / pl.col("w").sum().over("t")).alias("w"))
    return w["w"].to_numpy().astype(np.float64)


def matrix(frame: pl.DataFrame, names: Sequence[str]) -> npt.NDArray[np.float32]:
    if not names:
        return np.zeros((frame.height, 0), np.float32)
    return frame.select(list(names)).to_numpy().astype(np.float32)


@dataclass(slots=True)
class TrainResult:
    """What :func:`train_models` produced."""

    binary: xgboost.Booster
    coin: xgboost.Booster | None
    metadata: dict[str, Any]
    samples: pl.DataFrame  # with a ``split`` column
    binary_selection: Selection
    coin_selection: Selection | None
    evals: dict[str, Any] = field(default_factory=dict)


def train_models(
    samples: pl.DataFrame,
    *,
    seed: int = 0,
    rounds: int = 300,
    early_stopping: int = 30,
    alpha: float = DEFAULT_ALPHA,
    window_s: float = DEFAULT_WINDOW_S,
    max_fpr: float = ev.DEFAULT_MAX_FPR,
    recipe: dict[str, Any] | None = None,
    split: dict[str, str] | None = None,
    coin_exclude: Sequence[str] = COIN_EXCLUDE,
    coin_rounds: int | None = None,
) -> TrainResult:
    """Select features, train both boosters, choose the threshold, measure on test.

    Args:
        samples: output of :func:`build_samples`.
        seed: seeds the split, the boosters' subsampling and nothing else.
        rounds: maximum boosting rounds (early stopping on validation).
        early_stopping: rounds without validation improvement before stopping.
        alpha: FDR level of the feature selection.
        window_s: window length of the samples (recorded; the model scores this length).
        max_fpr: benign false-positive rate the threshold is chosen for.
        recipe: description of the training data, stored in the sidecar.
        split: a precomputed group -> split assignment (default: :func:`deal_groups`).
        coin_exclude: coins that are not coin-model classes (see :data:`COIN_EXCLUDE`).
        coin_rounds: maximum coin-model rounds (default: ``rounds``).

    Raises:
        InputError: the data lacks a class or a split lacks the samples needed.
    """
    import xgboost  # heavy; training only

    if "binary_task" not in samples.columns:  # a frame not made by build_samples
        samples = samples.with_columns(pl.lit(True).alias("binary_task"))
    split = split or deal_groups(samples, frozenset(), seed=seed)
    samples = samples.with_columns(pl.col("group").replace_strict(split, default="train").alias("split"))
    parts = {name: samples.filter(pl.col("split") == name) for name in SPLITS}
    # the binary model sees the binary-task rows only; the coin model every mining row
    bparts = {name: part.filter(pl.col("binary_task")) for name, part in parts.items()}
    for name in ("train", "val"):
        labels = set(bparts[name]["label"].unique().to_list())
        if labels != {0, 1}:
            raise InputError(
                f"the {name} split needs mining and benign windows (has labels {sorted(labels)}); "
                "add labelled captures of both kinds (the split is by capture/session)"
            )

    # -- binary task
    train = bparts["train"]
    bsel = select_features(
        matrix(train, FEATURE_NAMES), train["label"].to_numpy(), FEATURE_NAMES, task="binary", alpha=alpha
    )
    if not bsel.selected:
        raise InputError("no feature differs significantly between mining and benign training windows")
    bfeat = list(bsel.selected)
    params = {
        **DEFAULT_PARAMS,
        "objective": "binary:logistic",
        "eval_metric": ["auc", "logloss"],
        "seed": seed,
    }
    dtrain = xgboost.DMatrix(
        matrix(train, bfeat),
        label=train["label"].to_numpy(),
        weight=group_weights(train),
        feature_names=bfeat,
    )
    val = bparts["val"]
    dval = xgboost.DMatrix(
        matrix(val, bfeat), label=val["label"].to_numpy(), weight=group_weights(val), feature_names=bfeat
    )
    bevals: dict[str, Any] = {}
    binary = xgboost.train(
        params,
        dtrain,
        num_boost_round=rounds,
        evals=[(dtrain, "train"), (dval, "val")],
        early_stopping_rounds=early_stopping,
        evals_result=bevals,
        verbose_eval=False,
    )
    binary = _trim(binary)
    val_scores = predict(binary, val, bfeat)
    thr = ev.choose_threshold(val["label"].to_numpy(), val_scores, max_fpr=max_fpr)

    # -- coin task (mining windows with a known coin)
    coin_booster = None
    csel: Selection | None = None
    cevals: dict[str, Any] = {}
    coins = sorted(
        c
        for c in samples.filter(
            (pl.col("label") == 1) & pl.col("coin").is_not_null() & ~pl.col("coin").is_in(list(coin_exclude))
        )["coin"]
        .unique()
        .to_list()
    )
    ctrain = parts["train"].filter((pl.col("label") == 1) & pl.col("coin").is_in(coins))
    coin_meta: dict[str, Any] | None = None
    train_coins = sorted(ctrain["coin"].unique().to_list())
    if len(train_coins) >= 2:
        coins = train_coins  # a coin never seen in training cannot be a class
        index = {c: i for i, c in enumerate(coins)}
        cy = ctrain["coin"].replace_strict(index).to_numpy()
        csel = select_features(matrix(ctrain, FEATURE_NAMES), cy, FEATURE_NAMES, task="coin", alpha=alpha)
        cfeat = list(csel.selected) or bfeat  # no coin feature survives: the binary ones are the best we have
        cparams = {
            **COIN_PARAMS,
            "objective": "multi:softprob",
            "num_class": len(coins),
            "eval_metric": "mlogloss",
            "seed": seed,
        }
        cdtrain = xgboost.DMatrix(
            matrix(ctrain, cfeat), label=cy, weight=group_weights(ctrain, "coin"), feature_names=cfeat
        )
        cval = parts["val"].filter((pl.col("label") == 1) & pl.col("coin").is_in(coins))
        evals_list = [(cdtrain, "train")]
        if cval.height:
            cdval = xgboost.DMatrix(
                matrix(cval, cfeat), label=cval["coin"].replace_strict(index).to_numpy(), feature_names=cfeat
            )
            evals_list.append((cdval, "val"))
        coin_booster = xgboost.train(
            cparams,
            cdtrain,
            num_boost_round=coin_rounds or rounds,
            evals=evals_list,
            early_stopping_rounds=early_stopping if cval.height else None,
            evals_result=cevals,
            verbose_eval=False,
        )
        coin_booster = _trim(coin_booster)
        coin_meta = {
            "features": cfeat,
            "classes": coins,
            "rounds": coin_booster.num_boosted_rounds(),
            "selection": {
                **_selection_meta(csel),
                **({} if csel.selected else {"fallback": "binary features (none survived the coin test)"}),
            },
            "excluded": sorted(coin_exclude),
            "params": {k: v for k, v in cparams.items() if k != "eval_metric"},
            "mlogloss_per_round": {k: [round(v, 5) for v in d["mlogloss"]] for k, d in cevals.items()},
        }

    metrics = measure(samples, binary, bfeat, thr.value, coin_booster, coin_meta)
    if coin_meta is not None:
        coin_meta["metrics"] = metrics.pop("coin")
    else:
        metrics.pop("coin", None)
    metadata: dict[str, Any] = {
        "schema_version": SCHEMA_VERSION,
        "schema_hash": SCHEMA_HASH,
        "n_candidate_features": len(FEATURE_NAMES),
        "window_s": window_s,
        "min_messages": MIN_MESSAGES,
        "created": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "binary": {
            "features": bfeat,
            "classes": ["benign", "mining"],
            "threshold": thr.value,
            "threshold_rule": f"lowest threshold >= {ev.MIN_THRESHOLD} with validation benign FPR <= {max_fpr:g}",
            "threshold_validation": {
                "fpr": thr.fpr,
                "recall": thr.recall,
                "n_benign": thr.n_benign,
                "n_mining": thr.n_mining,
            },
            "rounds": binary.num_boosted_rounds(),
            "params": {k: v for k, v in params.items() if k != "eval_metric"},
            "selection": _selection_meta(bsel),
            "logloss_per_round": {k: [round(v, 5) for v in d["logloss"]] for k, d in bevals.items()},
        },
        "coin": coin_meta,
        "metrics": metrics,
        "data": {
            **(recipe or {}),
            "seed": seed,
            "split_rule": "by group (capture/session), stratified by has-mining, 60/20/20",
            "groups": {s: sorted(g for g, v in split.items() if v == s) for s in SPLITS},
            "windows": {s: parts[s].height for s in SPLITS},
            "coin_only_groups": sorted(samples.filter(~pl.col("binary_task"))["group"].unique().to_list()),
            "weights": "1/sqrt(windows in group), classes balanced",
        },
        "libraries": library_versions(),
    }
    return TrainResult(
        binary=binary,
        coin=coin_booster,
        metadata=metadata,
        samples=samples,
        binary_selection=bsel,
        coin_selection=csel,
        evals={"binary": bevals, "coin": cevals},
    )


def _trim(booster: xgboost.Booster) -> xgboost.Booster:
    """Keep only the rounds up to the best validation iteration."""
    best = getattr(booster, "best_iteration", None)
    if best is not None and best + 1 < booster.num_boosted_rounds():
        return booster[: best + 1]
    return booster


def predict(booster: xgboost.Booster, frame: pl.DataFrame, names: Sequence[str]) -> npt.NDArray[np.float64]:
    import xgboost

    if frame.height == 0:
        return np.zeros(0)
    d = xgboost.DMatrix(matrix(frame, names), feature_names=list(names))
    return np.asarray(booster.predict(d), dtype=np.float64)


def _selection_meta(sel: Selection) -> dict[str, Any]:
    return {
        "test": sel.test,
        "alpha": sel.alpha,
        "candidates": len(sel.names),
        "selected": len(sel.selected),
    }


def measure(
    samples: pl.DataFrame,
    binary: xgboost.Booster,
    bfeat: Sequence[str],
    threshold: float,
    coin: xgboost.Booster | None,
    coin_meta: dict[str, Any] | None,
) -> dict[str, Any]:
    """Metrics per split (window and flow level), per source on test, and coin metrics on test.

    Binary metrics cover the binary-task rows; coin metrics every mining row.
    """
    bsamples = samples.filter(pl.col("binary_task"))
    scores = predict(binary, bsamples, bfeat)
    scored = bsamples.select("flow_key", "label", "coin", "source", "split").with_columns(
        pl.Series("p", scores)
    )
    out: dict[str, Any] = {"threshold": threshold}
    for name in SPLITS:
        part = scored.filter(pl.col("split") == name)
        flows = part.group_by("flow_key").agg(
            pl.col("label").first(), pl.col("p").max(), pl.col("source").first()
        )
        out[name] = {
            "windows": ev.binary_metrics(part["label"].to_numpy(), part["p"].to_numpy(), threshold),
            "flows": ev.binary_metrics(flows["label"].to_numpy(), flows["p"].to_numpy(), threshold),
        }
    test = scored.filter(pl.col("split") == "test")
    per_source: dict[str, Any] = {}
    per_source_flows: dict[str, Any] = {}
    for source in sorted(test["source"].unique().to_list()):
        part = test.filter(pl.col("source") == source)
        per_source[source] = ev.binary_metrics(part["label"].to_numpy(), part["p"].to_numpy(), threshold)
        flows = part.group_by("flow_key").agg(pl.col("label").first(), pl.col("p").max())
        per_source_flows[source] = ev.binary_metrics(
            flows["label"].to_numpy(), flows["p"].to_numpy(), threshold
        )
    out["test_per_source"] = per_source
    out["test_per_source_flows"] = per_source_flows
    if coin is not None and coin_meta is not None:
        classes = list(coin_meta["classes"])
        cfeat = list(coin_meta["features"])
        ctest = samples.filter(
            (pl.col("split") == "test") & (pl.col("label") == 1) & pl.col("coin").is_in(classes)
        )
        if ctest.height:
            probs = predict(coin, ctest, cfeat).reshape(ctest.height, len(classes))
            pred = [classes[i] for i in probs.argmax(axis=1)]
            truth = ctest["coin"].to_list()
            sources = ctest["source"].to_list()
            out["coin"] = {
                "test": {
                    **ev.coin_metrics(truth, pred, classes),
                    "family_accuracy": ev.family_accuracy(truth, pred),
                },
                "test_per_source": {
                    src: ev.coin_metrics(
                        [t for t, s in zip(truth, sources, strict=True) if s == src],
                        [p for p, s in zip(pred, sources, strict=True) if s == src],
                        classes,
                    )
                    for src in sorted(set(sources))
                },
            }
        else:
            out["coin"] = {"test": None, "note": "no test windows of a trained coin (split is by capture)"}
    return out


def library_versions() -> dict[str, str]:
    """Versions of the libraries a model depends on."""
    import scipy
    import xgboost

    return {
        "python": platform.python_version(),
        "xgboost": str(xgboost.__version__),
        "numpy": np.__version__,
        "polars": pl.__version__,
        "scipy": str(scipy.__version__),
        "minerscope": _minerscope_version(),
    }


def _minerscope_version() -> str:
    from minerscope import __version__

    return __version__


def train(
    datasets: Sequence[LabelledFlows],
    out: str | Path,
    *,
    seed: int = 0,
    rounds: int = 300,
    window_s: float = DEFAULT_WINDOW_S,
    alpha: float = DEFAULT_ALPHA,
    recipe: dict[str, Any] | None = None,
    holdout: Sequence[LabelledFlows] = (),
    coin_data: Sequence[LabelledFlows] = (),
) -> TrainResult:
    """Build samples, train, and save the model folder ``out`` (atomic writes).

    ``holdout`` data is measured only (its groups all go to the test split, see
    :func:`holdout_split`); its per-source metrics land in the sidecar. ``coin_data``
    is split like ``datasets`` but serves the coin model only.

    Raises:
        InputError: unusable training data.
    """
    from minerscope.model.artifact import save_model

    coin_only = [dataclasses.replace(ds, coin_only=True) for ds in coin_data]
    samples = build_samples([*datasets, *coin_only, *holdout], window_s=window_s)
    held = {g for ds in holdout for g in ds.labels["group"].unique().to_list()}
    split = deal_groups(samples, held, seed=seed)
    if held:
        recipe = {**(recipe or {}), "heldout_groups": len(held)}
    result = train_models(
        samples, seed=seed, rounds=rounds, alpha=alpha, window_s=window_s, recipe=recipe, split=split
    )
    refuse_blind_threshold(result.metadata)
    save_model(out, result.binary, result.metadata, coin=result.coin)
    return result


def refuse_blind_threshold(metadata: dict[str, Any]) -> None:
    """Refuse a model whose operating threshold catches no mining validation window.

    Why refuse rather than warn or exit 3: such a model flags nothing at its threshold,
    so stage 1 would pass every miner as benign, the silent wrong result a detector must
    not ship; exit 3 means "partial input" here, which this is not. Refusing before the
    save also keeps whatever model ``--out`` held (a working one, often) in place. The
    data is what fell short (classes the validation split cannot tell apart at this
    size), so it is an :class:`InputError` (exit 4) naming the numbers.

    Raises:
        InputError: validation recall at the threshold is 0.
    """
    binary = metadata["binary"]
    tv = binary["threshold_validation"]
    if tv["n_mining"] and tv["recall"] == 0:
        raise InputError(
            f"threshold {binary['threshold']:.4f} (benign validation FPR <= {_max_fpr(metadata):g} over "
            f"{tv['n_benign']} windows) catches none of the {tv['n_mining']} mining validation windows "
            "(recall 0): this model could never flag mining; not written. Add labelled captures "
            "(more sessions of both kinds) or another --seed"
        )


def _max_fpr(metadata: dict[str, Any]) -> float:
    rule = str(metadata["binary"].get("threshold_rule", ""))
    try:
        return float(rule.rsplit("<=", 1)[1])
    except (IndexError, ValueError):
        return ev.DEFAULT_MAX_FPR


def threshold_warnings(metadata: dict[str, Any]) -> list[str]:
    """Lines to warn with about a written model's threshold (empty when it is sound).

    The rule keeps the benign FPR on validation windows <= ``max_fpr``; with fewer than
    ``1/max_fpr`` benign windows no false positive at all is allowed, so the threshold
    only has to clear the highest benign score seen, and the rate the rule promises was
    never measured. Such a model is written (it flags mining), but the analyst must hear that
    its false-positive rate is unknown.
    """
    binary = metadata["binary"]
    tv = binary["threshold_validation"]
    max_fpr = _max_fpr(metadata)
    needed = math.ceil(1 / max_fpr) if max_fpr > 0 else 0
    if tv["n_benign"] < needed:
        return [
            f"threshold {binary['threshold']:.4f} rests on {tv['n_benign']} benign validation windows: "
            f"measuring a benign FPR <= {max_fpr:g} needs at least {needed}, so the model's false-positive "
            f"rate is unknown (validation recall {_f(tv['recall'])} over {tv['n_mining']} windows)"
        ]
    return []


def summary_lines(result: TrainResult) -> list[str]:
    """Human-readable summary of a training run (selection counts, threshold, test metrics)."""
    meta = result.metadata
    lines = [result.binary_selection.summary()]
    if result.coin_selection is not None:
        line = result.coin_selection.summary()
        if not result.coin_selection.selected and meta.get("coin"):
            line += f"; the coin model is trained on the binary model's {len(meta['coin']['features'])} features instead"
        lines.append(line)
    b = meta["binary"]
    tv = b["threshold_validation"]
    lines.append(
        f"threshold {b['threshold']:.4f} (validation benign FPR {tv['fpr']:.4f} over {tv['n_benign']} windows, "
        f"recall {tv['recall']:.4f} over {tv['n_mining']} windows); {b['rounds']} rounds"
    )
    for split in SPLITS:
        for level in ("windows", "flows"):
            m = meta["metrics"][split][level]
            lines.append(
                f"{split:5s} {level:7s} n={m['n']:6d} (mining {m['n_mining']}, benign {m['n_benign']}) "
                f"AUC {_f(m['auc'])} recall {_f(m['recall'])} FPR {_f(m['fpr'])} F1 {_f(m['f1'])}"
            )
    if meta.get("coin"):
        cm = meta["coin"].get("metrics", {}).get("test")
        if cm:
            lines.append(
                f"coin test: accuracy {_f(cm['accuracy'])} macro-F1 {_f(cm['macro_f1'])} over {cm['n']} windows"
            )
        lines.append(f"coin classes: {', '.join(meta['coin']['classes'])}")
    return lines


def _f(v: float) -> str:
    return "nan" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.4f}"
