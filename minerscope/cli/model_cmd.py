"""``minerscope train`` and ``minerscope evaluate``: thin shells over :mod:`minerscope.model`.

Results (the summary, the comparison tables) go to stdout; progress and warnings to
stderr. Exit 3 (partial) when data was left out or read only in part (a damaged capture,
a labels CSV matching none of its capture's flows): the results are still produced, from
what could be read, and each loss is one warning line.
"""

from __future__ import annotations

import math
import sys
from typing import Any

import click

from minerscope import errors
from minerscope.cli.common import (
    ExitCode,
    FiniteFloatRange,
    echo_report,
    fail,
    progress_note,
    seconds,
    warn,
)

DATA_HELP = (
    "Labelled data: a manifest folder or MANIFEST.csv (../shared/datasets/real format), "
    "a labels CSV (5-tuples + label/coin/session), or a capture with its labels CSV beside it. "
    "Repeat the option or list several paths."
)


HOLDOUT_HELP = (
    "Held-out data (same shapes as --data): measured per source, never trained on, never used "
    "for the threshold or early stopping (e.g. ../shared/datasets/real). Repeatable."
)


COIN_DATA_HELP = (
    "Labelled data (same shapes as --data) that trains and tests the coin model only, never the "
    "binary one: mining-heavy captures that give the coin model more sessions without tilting "
    "the mining-vs-benign balance. Give the option once per path."
)


LOSS_KEYS = ("skipped", "damaged", "unmatched", "read_notes")
"""Recipe lists of what loading the data left out (see :func:`minerscope.model.data.load_data`)."""


def _report_losses(recipe: dict[str, Any]) -> ExitCode:
    """One warning line per capture loading left out or read in part; the exit status it calls for.

    Damaged captures and unmatched labels files are partial input (exit 3); a manifest
    capture of an undecodable link type (``skipped``) and a whole capture's reader notes
    are said, as before, without changing the status.
    """
    for item in recipe.get("skipped", []):
        warn(f"skipped {item}")
    for item in [*recipe.get("damaged", []), *recipe.get("unmatched", []), *recipe.get("read_notes", [])]:
        warn(item)
    return ExitCode.PARTIAL if recipe.get("damaged") or recipe.get("unmatched") else ExitCode.OK


def _load(
    specs: list[str], holdout: list[str], coin_specs: list[str] | None = None
) -> tuple[list[Any], list[Any], dict[str, Any], list[Any]]:
    """Load ``--data``, ``--holdout`` and ``--coin-data`` items.

    Returns (data, held-out, recipe, coin-only data); a flow in several gets one group
    (held out wins).
    """
    from minerscope.model import data as data_mod

    datasets, recipe = data_mod.load_data(specs)
    extra: dict[str, list[Any]] = {"holdout": [], "coin_data": []}
    for key, items in (("coin_data", coin_specs or []), ("holdout", holdout)):
        if items:
            extra[key], more = data_mod.load_data(items)
            recipe[key] = more["data"]
            recipe[f"{key}_flows_per_source"] = more["flows_per_source"]
            for lost in LOSS_KEYS:
                recipe[lost] = [*recipe.get(lost, []), *more.get(lost, [])]
    coin, held = extra["coin_data"], extra["holdout"]
    if coin or held:
        merged = data_mod.merge_duplicate_groups([*datasets, *coin, *held])
        n, m = len(datasets), len(datasets) + len(coin)
        datasets, coin, held = merged[:n], merged[n:m], merged[m:]
    return datasets, held, recipe, coin


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
@click.option(
    "--window", "window_s", type=seconds(), default=300.0, show_default=True, help="Window length in seconds."
)
@click.option(
    "--seed",
    type=click.IntRange(0, 2**31 - 1),
    default=0,
    show_default=True,
    help="Seed of the split and the boosters.",
)
@click.option(
    "--rounds",
    type=click.IntRange(min=1),
    default=300,
    show_default=True,
    help="Maximum boosting rounds (early stopping on validation).",
)
@click.option(
    "--alpha",
    type=FiniteFloatRange(0.0, 1.0, min_open=True),
    default=0.01,
    show_default=True,
    help="FDR level of the feature selection.",
)
@click.option("--note", default="", help="Free text stored in the sidecar's recipe (how the data was made).")
@click.option("--holdout", "holdout", multiple=True, type=click.Path(exists=True), help=HOLDOUT_HELP)
@click.option("--coin-data", "coin_data", multiple=True, type=click.Path(exists=True), help=COIN_DATA_HELP)
def train(
    data: tuple[str, ...],
    more_data: tuple[str, ...],
    out: str,
    window_s: float,
    seed: int,
    rounds: int,
    alpha: float,
    note: str,
    holdout: tuple[str, ...],
    coin_data: tuple[str, ...],
) -> None:
    """Train the mining and coin models from labelled captures and write a model folder."""
    from minerscope.model import train as train_mod
    from minerscope.model.artifact import check_model_folder

    specs = [*data, *more_data]
    if not specs:
        raise click.UsageError("give at least one --data path")
    try:
        check_model_folder(out)  # before minutes of training, not after
        progress_note(f"reading {len(specs) + len(holdout) + len(coin_data)} data item(s)")
        datasets, held, recipe, coin = _load(specs, list(holdout), list(coin_data))
        status = _report_losses(recipe)
        recipe["window_s"] = window_s
        if note:
            recipe["note"] = note
        train_sets = [*datasets, *coin]
        progress_note(
            f"{sum(len(d.table) for d in train_sets)} flows from {len(train_sets)} capture(s); training"
        )
        result = train_mod.train(
            datasets,
            out,
            seed=seed,
            rounds=rounds,
            window_s=window_s,
            alpha=alpha,
            recipe=recipe,
            holdout=held,
            coin_data=coin,
        )
    except errors.MinerscopeError as exc:
        fail(exc)
        return
    for line in train_mod.threshold_warnings(result.metadata):
        warn(line)
    echo_report("\n".join([*train_mod.summary_lines(result), f"model written to {out}"]))
    if status:
        sys.exit(int(status))


@click.command()
@click.option("--data", "data", multiple=True, type=click.Path(exists=True), help=DATA_HELP)
@click.argument("more_data", nargs=-1, type=click.Path(exists=True))
@click.option(
    "--model", "model_name", default=None, help="Model folder or shipped name (default: the shipped model)."
)
@click.option(
    "--holdout",
    "holdout",
    multiple=True,
    type=click.Path(exists=True),
    help=HOLDOUT_HELP
    + " If the model was trained on any of it, a fresh model is trained with the model's recipe "
    "on --data alone and measured instead.",
)
def evaluate(
    data: tuple[str, ...], more_data: tuple[str, ...], model_name: str | None, holdout: tuple[str, ...]
) -> None:
    """Compare seven classifiers on the model's split and report per-source and coin metrics."""
    specs = [*data, *more_data]
    if not specs:
        raise click.UsageError("give at least one --data path")
    status: list[ExitCode] = []
    try:
        report = run_evaluation(specs, model_name, list(holdout), status=status)
    except errors.MinerscopeError as exc:
        fail(exc)
        return
    except ImportError as exc:
        fail(errors.InputError(f"evaluate needs scikit-learn (pip install 'minerscope[bench]'): {exc}"))
        return
    echo_report(report)
    if any(status):
        sys.exit(int(max(status)))


def run_evaluation(
    specs: list[str],
    model_name: str | None,
    holdout: list[str] | None = None,
    *,
    status: list[ExitCode] | None = None,
) -> str:
    """Rebuild the model's split on ``specs`` and return the evaluation report text.

    What loading left out is warned about on stderr as it is found; its exit status
    (:attr:`ExitCode.PARTIAL` when captures were damaged or unmatched) is appended to
    ``status``, for the caller to exit with once the report is out.

    ``holdout`` items go to the test split whole. When the model trained (or chose its
    threshold) on any held-out group, its figures there would be flattering, so a fresh
    model is trained with the model's recipe (seed, window, rounds, selection level,
    threshold rule) on ``specs`` alone, and the report measures that model instead.
    """
    import numpy as np
    import polars as pl

    from minerscope.model import evaluate as ev
    from minerscope.model import train as train_mod
    from minerscope.model.artifact import BoosterFile, Model, load_model

    model = load_model(model_name)
    for line in model.warnings:
        warn(line)
    meta = model.metadata
    progress_note(f"model {model.name}: reading {len(specs) + len(holdout or [])} data item(s)")
    datasets, held_data, recipe, _ = _load(specs, list(holdout or []))
    if status is not None:
        status.append(_report_losses(recipe))
    held = {g for ds in held_data for g in ds.labels["group"].unique().to_list()}
    samples = train_mod.build_samples(
        [*datasets, *held_data], window_s=model.window_s, min_messages=model.min_messages
    )
    # groups the model's coin model alone trained on stay out of the binary figures
    coin_only = list(meta.get("data", {}).get("coin_only_groups", []))
    samples = samples.with_columns(
        (pl.col("binary_task") & ~pl.col("group").is_in(coin_only)).alias("binary_task")
    )
    known = {g: s for s, groups in meta.get("data", {}).get("groups", {}).items() for g in groups}
    seed = int(meta.get("data", {}).get("seed", 0))
    seen_held = sorted(g for g in held if known.get(g) in ("train", "val"))
    if seen_held:
        progress_note(
            f"the model trained on {len(seen_held)} held-out group(s); training a fresh one without them"
        )
        binfo = meta.get("binary", {})
        result = train_mod.train_models(
            samples,
            seed=seed,
            rounds=max(int(binfo.get("rounds", 300)), 300),
            alpha=float(binfo.get("selection", {}).get("alpha", 0.01)),
            window_s=model.window_s,
            split=train_mod.deal_groups(samples, held, seed=seed),
        )
        samples = result.samples
        cmeta = result.metadata.get("coin") or {}
        model = Model(
            name=f"{model.name}, retrained without the held-out data",
            path=model.path,
            metadata=result.metadata,
            binary_file=BoosterFile.of(result.binary),
            binary_features=tuple(result.metadata["binary"]["features"]),
            threshold=float(result.metadata["binary"]["threshold"]),
            window_s=model.window_s,
            min_messages=model.min_messages,
            coin_file=None if result.coin is None else BoosterFile.of(result.coin),
            coin_features=tuple(cmeta.get("features", ())),
            coin_classes=tuple(cmeta.get("classes", ())),
        )
        meta = model.metadata
        unseen = []
    else:
        unseen = sorted(set(samples["group"].unique().to_list()) - known.keys() - held)
        split = dict(known)
        if unseen or not known:
            rest = samples.filter(~pl.col("group").is_in(list(held)))
            if not known:
                unseen = rest["group"].unique().to_list()
            split.update(train_mod.split_groups(rest.filter(pl.col("group").is_in(unseen)), seed=seed))
        split.update({g: "test" for g in held})
        samples = samples.with_columns(pl.col("group").replace_strict(split, default="test").alias("split"))
        unseen = [g for g in unseen if g not in held]
    coin_samples = samples
    samples = samples.filter(pl.col("binary_task"))
    train_part = samples.filter(pl.col("split") == "train")
    test_all = samples.filter(pl.col("split") == "test")
    test_part = test_all.filter(~pl.col("group").is_in(list(held)))
    held_part = test_all.filter(pl.col("group").is_in(list(held)))
    if test_part.height == 0 or train_part.height == 0 or test_part["label"].n_unique() < 2:
        raise errors.InputError(
            "the data gives no train split or no test split with both classes for this model"
        )
    feats = list(model.binary_features)
    lines: list[str] = []
    lines.append(
        f"model {model.name} ({len(feats)} binary features, threshold {model.threshold:.4f}, window {model.window_s:g} s)"
    )
    lines.append(
        f"split: train {train_part.height} windows / {train_part['group'].n_unique()} groups, "
        f"test {test_part.height} windows / {test_part['group'].n_unique()} groups"
        + (f" ({len(unseen)} groups unseen by the model, dealt by seed {seed})" if unseen else "")
        + (
            f"; held out {held_part.height} windows / {held_part['group'].n_unique()} groups (never trained on)"
            if held
            else ""
        )
    )
    x_train = train_mod.matrix(train_part, feats)
    y_train = train_part["label"].to_numpy()
    w_train = train_mod.group_weights(train_part)
    parts = [("test windows", test_part)]
    if held_part.height and held_part["label"].n_unique() == 2:
        parts.append(("held-out windows", held_part))
    label = "retrained" if seen_held else model.name
    for title, part in parts:
        rows = ev.compare_classifiers(
            x_train,
            y_train,
            w_train,
            train_mod.matrix(part, feats),
            part["label"].to_numpy(),
            seed=seed,
            xgb_scores=train_mod.predict(model.binary, part, feats),
            threshold=model.threshold,
            model_label=label,
        )
        cols = ["classifier", "threshold", "auc", "recall", "fpr", "precision", "f1", "tp", "fp", "fn", "tn"]
        lines += ["", f"Classifier comparison ({title}):", ev.format_table(rows, cols)]
        lines.append(_trained_on_line(train_part.height, model, retrained=bool(seen_held)))
        lines += [f"  {row['note']}" for row in rows if row.get("note")]

    scored = test_all.select("flow_key", "label", "source", "group").with_columns(
        pl.Series("p", train_mod.predict(model.binary, test_all, feats))
    )
    per_source = []
    for source in sorted(scored["source"].unique().to_list()):
        part = scored.filter(pl.col("source") == source)
        flows = part.group_by("flow_key").agg(pl.col("label").first(), pl.col("p").max())
        w = ev.binary_metrics(part["label"].to_numpy(), part["p"].to_numpy(), model.threshold)
        f = ev.binary_metrics(flows["label"].to_numpy(), flows["p"].to_numpy(), model.threshold)
        is_held = bool(part["group"].is_in(list(held)).any())
        per_source.append(
            {
                "source": source + (" *" if is_held else ""),
                "windows": w["n"],
                "mining": w["n_mining"],
                "benign": w["n_benign"],
                "recall": w["recall"],
                "fpr": w["fpr"],
                "f1": w["f1"],
                "flows": f["n"],
                "flow_recall": f["recall"],
                "flow_fp": f["fp"],
                "flow_fpr": f["fpr"],
            }
        )
    lines += [
        "",
        f"XGBoost at {'the retrained model' if seen_held else f'model {model.name}'}'s threshold, per source (test"
        + ("; * = held out, never trained on" if held else "")
        + "):",
        ev.format_table(
            per_source,
            ["source", "windows", "mining", "benign", "recall", "fpr", "f1", "flows", "flow_recall"]
            + ["flow_fp", "flow_fpr"],
        ),
    ]

    if model.coin is not None:
        classes = list(model.coin_classes)
        lines += ["", f"Coin model ({', '.join(classes)}), test mining windows:"]
        coin_test = coin_samples.filter(pl.col("split") == "test")
        in_held = pl.col("group").is_in(list(held))
        for title, part in (("test", coin_test.filter(~in_held)), ("held out", coin_test.filter(in_held))):
            ctest = part.filter((pl.col("label") == 1) & pl.col("coin").is_in(classes))
            if not ctest.height:
                if title == "test":
                    lines.append("no test windows of a trained coin (the split is by capture)")
                continue
            probs = train_mod.predict(model.coin, ctest, list(model.coin_features)).reshape(
                ctest.height, len(classes)
            )
            pred = [classes[i] for i in np.argmax(probs, axis=1)]
            truth = ctest["coin"].to_list()
            cm = ev.coin_metrics(truth, pred, classes)
            fam = ev.family_accuracy(truth, pred)
            lines.append(
                f"{title}: accuracy {_fmt(cm['accuracy'])}, macro-F1 {_fmt(cm['macro_f1'])}, "
                f"{cm['n']} windows; with {ev.family_note()}: accuracy {_fmt(fam)}"
            )
            if title == "test":
                lines.append(ev.format_confusion(cm["confusion"], classes))
            else:
                sources = ctest["source"].to_list()
                for src in sorted(set(sources)):
                    keep = [i for i, s_ in enumerate(sources) if s_ == src]
                    sm = ev.coin_metrics([truth[i] for i in keep], [pred[i] for i in keep], classes)
                    lines.append(f"  {src}: accuracy {_fmt(sm['accuracy'])} over {sm['n']} windows")
        mlog = (meta.get("coin") or {}).get("mlogloss_per_round", {})
        lines += ["", "Coin mlogloss per boosting round (from training):", _per_round(mlog)]
    blog = meta.get("binary", {}).get("logloss_per_round", {})
    lines += ["", "Binary logloss per boosting round (from training):", _per_round(blog)]
    return "\n".join(lines)


def _trained_on_line(n_train: int, model: Any, *, retrained: bool) -> str:
    """What each row of the comparison was trained on: the baselines on this run's train
    split; XGBoost as the model was (its own data, often far more than ``--data`` gives)."""
    if retrained:
        return (
            f"trained on: every classifier on the train split above ({n_train} windows); "
            "xgboost is the model retrained on it"
        )
    windows = model.metadata.get("data", {}).get("windows", {}).get("train")
    theirs = f"{windows} training windows" if isinstance(windows, int) else "data its sidecar does not count"
    return (
        f"trained on: the six baselines on the train split above ({n_train} windows of --data); "
        f"xgboost rows are model {model.name} as trained ({theirs}), not refitted"
    )


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
