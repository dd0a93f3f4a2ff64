"""``minerscope train`` and ``minerscope evaluate``: thin shells over :mod:`minerscope.model`.

Results (the summary, the comparison tables) go to stdout; progress to stderr.
"""

from __future__ import annotations

import math
from typing import Any

import click

from minerscope import errors
from minerscope.cli.common import fail, warn

DATA_HELP = (
    "Labelled data: a manifest folder or MANIFEST.csv (../shared/datasets/real format), "
    "a labels CSV (5-tuples + label/coin/session), or a capture with its labels CSV beside it. "
    "Repeat the option or list several paths."
)


def _progress(message: str) -> None:
    click.echo(f"minerscope: {message}", err=True)


@click.command()
@click.option("--data", "data", multiple=True, type=click.Path(exists=True), help=DATA_HELP)
@click.argument("more_data", nargs=-1, type=click.Path(exists=True))
@click.option(
    "--out",
    "out",
    required=True,
    type=click.Path(file_okay=False),
    help="Model folder to write (e.g. models/NAME).",
)
@click.option("--window", "window_s", default=300.0, show_default=True, help="Window length in seconds.")
@click.option("--seed", default=0, show_default=True, help="Seed of the split and the boosters.")
@click.option(
    "--rounds", default=300, show_default=True, help="Maximum boosting rounds (early stopping on validation)."
)
@click.option("--alpha", default=0.01, show_default=True, help="FDR level of the feature selection.")
@click.option("--note", default="", help="Free text stored in the sidecar's recipe (how the data was made).")
def train(
    data: tuple[str, ...],
    more_data: tuple[str, ...],
    out: str,
    window_s: float,
    seed: int,
    rounds: int,
    alpha: float,
    note: str,
) -> None:
    """Train the mining and coin models from labelled captures and write a model folder."""
    from minerscope.model import data as data_mod
    from minerscope.model import train as train_mod

    specs = [*data, *more_data]
    if not specs:
        raise click.UsageError("give at least one --data path")
    try:
        _progress(f"reading {len(specs)} data item(s)")
        datasets, recipe = data_mod.load_data(specs)
        for item in recipe["skipped"]:
            warn(f"skipped {item}")
        recipe["window_s"] = window_s
        if note:
            recipe["note"] = note
        _progress(f"{sum(len(d.table) for d in datasets)} flows from {len(datasets)} capture(s); training")
        result = train_mod.train(
            datasets, out, seed=seed, rounds=rounds, window_s=window_s, alpha=alpha, recipe=recipe
        )
    except errors.MinerscopeError as exc:
        fail(exc)
        return
    for line in train_mod.summary_lines(result):
        click.echo(line)
    click.echo(f"model written to {out}")


@click.command()
@click.option("--data", "data", multiple=True, type=click.Path(exists=True), help=DATA_HELP)
@click.argument("more_data", nargs=-1, type=click.Path(exists=True))
@click.option(
    "--model", "model_name", default=None, help="Model folder or shipped name (default: the shipped model)."
)
def evaluate(data: tuple[str, ...], more_data: tuple[str, ...], model_name: str | None) -> None:
    """Compare seven classifiers on the model's split and report per-source and coin metrics."""
    specs = [*data, *more_data]
    if not specs:
        raise click.UsageError("give at least one --data path")
    try:
        report = run_evaluation(specs, model_name)
    except errors.MinerscopeError as exc:
        fail(exc)
        return
    except ImportError as exc:
        fail(errors.InputError(f"evaluate needs scikit-learn (pip install 'minerscope[bench]'): {exc}"))
        return
    click.echo(report)


def run_evaluation(specs: list[str], model_name: str | None) -> str:
    """Rebuild the model's split on ``specs`` and return the evaluation report text."""
    import numpy as np
    import polars as pl

    from minerscope.model import data as data_mod
    from minerscope.model import evaluate as ev
    from minerscope.model import train as train_mod
    from minerscope.model.artifact import load_model

    model = load_model(model_name)
    meta = model.metadata
    _progress(f"model {model.name}: reading {len(specs)} data item(s)")
    datasets, _ = data_mod.load_data(specs)
    samples = train_mod.build_samples(datasets, window_s=model.window_s)
    known = {g: s for s, groups in meta.get("data", {}).get("groups", {}).items() for g in groups}
    unseen = sorted(set(samples["group"].unique().to_list()) - known.keys())
    seed = int(meta.get("data", {}).get("seed", 0))
    split = (
        {**train_mod.split_groups(samples.filter(pl.col("group").is_in(unseen)), seed=seed), **known}
        if unseen
        else known
    )
    if not known:
        split = train_mod.split_groups(samples, seed=seed)
    samples = samples.with_columns(pl.col("group").replace_strict(split, default="test").alias("split"))
    train_part = samples.filter(pl.col("split") == "train")
    test_part = samples.filter(pl.col("split") == "test")
    if test_part.height == 0 or train_part.height == 0 or test_part["label"].n_unique() < 2:
        raise errors.InputError(
            "the data gives no train split or no test split with both classes for this model"
        )
    feats = list(model.binary_features)
    xgb_scores = train_mod.predict(model.binary, test_part, feats)
    lines: list[str] = []
    lines.append(
        f"model {model.name} ({len(feats)} binary features, threshold {model.threshold:.4f}, window {model.window_s:g} s)"
    )
    lines.append(
        f"split: train {train_part.height} windows / {train_part['group'].n_unique()} groups, "
        f"test {test_part.height} windows / {test_part['group'].n_unique()} groups"
        + (f" ({len(unseen)} groups unseen by the model, dealt by seed {seed})" if unseen else "")
    )
    rows = ev.compare_classifiers(
        train_mod.matrix(train_part, feats),
        train_part["label"].to_numpy(),
        train_mod.group_weights(train_part),
        train_mod.matrix(test_part, feats),
        test_part["label"].to_numpy(),
        seed=seed,
        xgb_scores=xgb_scores,
        threshold=model.threshold,
    )
    cols = ["classifier", "threshold", "auc", "recall", "fpr", "precision", "f1", "tp", "fp", "fn", "tn"]
    lines += ["", "Classifier comparison (test windows):", ev.format_table(rows, cols)]

    scored = test_part.select("flow_key", "label", "source").with_columns(pl.Series("p", xgb_scores))
    per_source = []
    for source in sorted(scored["source"].unique().to_list()):
        part = scored.filter(pl.col("source") == source)
        flows = part.group_by("flow_key").agg(pl.col("label").first(), pl.col("p").max())
        w = ev.binary_metrics(part["label"].to_numpy(), part["p"].to_numpy(), model.threshold)
        f = ev.binary_metrics(flows["label"].to_numpy(), flows["p"].to_numpy(), model.threshold)
        per_source.append(
            {
                "source": source,
                "windows": w["n"],
                "mining": w["n_mining"],
                "benign": w["n_benign"],
                "recall": w["recall"],
                "fpr": w["fpr"],
                "flows": f["n"],
                "flow_recall": f["recall"],
                "flow_fpr": f["fpr"],
            }
        )
    lines += [
        "",
        "XGBoost at the shipped threshold, per source (test):",
        ev.format_table(
            per_source,
            ["source", "windows", "mining", "benign", "recall", "fpr", "flows", "flow_recall", "flow_fpr"],
        ),
    ]

    if model.coin is not None:
        classes = list(model.coin_classes)
        ctest = test_part.filter((pl.col("label") == 1) & pl.col("coin").is_in(classes))
        lines += ["", f"Coin model ({', '.join(classes)}), test mining windows:"]
        if ctest.height:
            probs = train_mod.predict(model.coin, ctest, list(model.coin_features)).reshape(
                ctest.height, len(classes)
            )
            pred = [classes[i] for i in np.argmax(probs, axis=1)]
            cm = ev.coin_metrics(ctest["coin"].to_list(), pred, classes)
            lines.append(
                f"accuracy {_fmt(cm['accuracy'])}, macro-F1 {_fmt(cm['macro_f1'])}, {cm['n']} windows"
            )
            lines.append(ev.format_confusion(cm["confusion"], classes))
        else:
            lines.append("no test windows of a trained coin (the split is by capture)")
        mlog = (meta.get("coin") or {}).get("mlogloss_per_round", {})
        lines += ["", "Coin mlogloss per boosting round (from training):", _per_round(mlog)]
    blog = meta.get("binary", {}).get("logloss_per_round", {})
    lines += ["", "Binary logloss per boosting round (from training):", _per_round(blog)]
    return "\n".join(lines)


def _per_round(curves: dict[str, Any]) -> str:
    if not curves:
        return "(not recorded)"
    names = sorted(curves)
    n = max(len(curves[k]) for k in names)
    step = max(1, n // 20)
    rows = []
    for i in list(range(0, n, step)) + ([n - 1] if (n - 1) % step else []):
        rows.append({"round": i + 1, **{k: curves[k][i] if i < len(curves[k]) else math.nan for k in names}})
    from minerscope.model.evaluate import format_table

    return format_table(rows, ["round", *names])


def _fmt(v: float) -> str:
    return "nan" if v != v else f"{v:.4f}"
