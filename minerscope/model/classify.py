"""Stage 1 inference: per-flow mining probability, coin, and why.

Every flow is scored per window (the model's window length), and the flow reports its
*most suspicious* window: a long flow that mines in one window is a mining flow, and
the analyst sees when. For that window the coin booster gives the coin distribution and
XGBoost's tree contributions (``pred_contribs``, SHAP values in log-odds; exact for any
window an analyst may look at, Saabas's cheaper attribution below ``EXACT_FLOOR``) name
the five features that moved the score most, with their values, so a verdict is never a
bare number.

Only windows the model could have learnt from are scored: training left out windows with
fewer than ``Model.min_messages`` application messages (a reconnect, a lone handshake:
they say nothing, and the threshold's false-positive rate was measured without them), so
scoring them would report numbers no metric stands behind. A flow with no such window is
*unscored*: ``windows`` 0, ``p_mining`` 0.0, stage 1 ``benign``, no window, coin or top
features (its stage-0 evidence still decides its verdict).

The numbers are XGBoost's, computed without it: one walk of the trees per window gives
the probability (:mod:`minerscope.model.predict`, bit for bit) and the Saabas attribution
together, so a scan process never imports xgboost; a booster the kernels do not cover
is scored by XGBoost.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import numpy.typing as npt
import polars as pl

from minerscope.features.windows import KEY_COLUMNS, extract_features
from minerscope.flows.records import FlowTable
from minerscope.jsonfloat import json_numbers
from minerscope.model import predict, saabas, treeshap
from minerscope.model.artifact import BoosterFile, Model, load_model
from minerscope.model.dedupe import unique_rows
from minerscope.model.jsontext import top_feature_lists

TOP_FEATURES = 5
EXACT_FLOOR = 0.01
"""Windows scored at least this get exact TreeSHAP top features; lower ones Saabas's."""
COIN_FLOOR = EXACT_FLOOR
"""Flows scored at least this (or with stage-0 evidence) get a coin. The coin model is
conditional on mining: for a flow stage 1 calls benign with p 0.0003 its answer ("zec")
is noise an analyst would read as a finding, and computing it was a tenth of a busy
capture's scan."""

MINING = "mining"
BENIGN = "benign"
UNSCORED = "unscored"
"""``stage1`` of a flow none of whose windows the model could score (too few messages):
no verdict of stage 1's, which "benign" claimed (the workstation said "stage 1 benign"
beside "p_mining not scored")."""

TOP_FEATURE_DTYPE = pl.List(pl.Struct({"name": pl.Utf8, "contribution": pl.Float64, "value": pl.Float64}))


def score_schema(model: Model, *, json_text: bool = False) -> dict[str, pl.DataType]:
    """Columns of :func:`score`'s result for ``model`` (see its ``json_text``)."""
    if json_text:
        return {**score_schema(model), "coin_probs": pl.Utf8(), "top_features": pl.Utf8()}
    return {
        "flow_id": pl.Int64(),
        "window": pl.Int32(),
        "window_start": pl.Float64(),
        "window_end": pl.Float64(),
        "windows": pl.Int32(),
        "p_mining": pl.Float64(),
        "stage1": pl.Utf8(),
        "coin": pl.Utf8(),
        "coin_probs": pl.Struct({c: pl.Float64() for c in model.coin_classes})
        if model.coin_classes
        else pl.Struct({}),
        "top_features": TOP_FEATURE_DTYPE,
    }


def score(
    table: FlowTable, model: Model | str | Path | None = None, *, json_text: bool = False
) -> pl.DataFrame:
    """Score every flow of ``table``.

    Args:
        table: the flows.
        model: a loaded :class:`Model`, a model path/name, or None for the shipped default.
        json_text: ``coin_probs`` and ``top_features`` as JSON text (a Utf8 column, null
            for a flow without a window) spelled exactly as
            ``json.dumps(value, separators=(",", ":"))`` spells the struct values, except
            that non-finite numbers are ``null`` (strict JSON); built from the arrays
            directly, which is what the triage rows need, so output can pass the text
            through without parsing it.

    Returns:
        One row per flow, in the table's order: ``flow_id``; ``window``,
        ``window_start``, ``window_end`` of the most suspicious window (null when the flow
        is unscored: no window with ``model.min_messages`` messages); ``windows`` (how many
        were scored); ``p_mining``; ``stage1``
        (``mining`` when ``p_mining >= model.threshold``, else ``benign``); ``coin`` (most
        likely coin *if* the flow mines: the coin model is conditional on mining; null
        without a coin model, and for a flow under :data:`COIN_FLOOR` without stage-0
        evidence in ``table.summary["stage0"]``); ``coin_probs`` (struct coin ->
        probability, null where ``coin`` is; ``.to_dicts()`` gives a dict); ``top_features`` (list of
        {name, contribution, value}, at most five, largest absolute contribution first,
        features with zero contribution left out).

    Raises:
        minerscope.errors.ModelError: the model cannot be loaded.
    """
    if not isinstance(model, Model):
        model = load_model(model)
    schema = score_schema(model, json_text=json_text)
    if len(table) == 0:
        return pl.DataFrame(schema=schema)
    # windows the model was not trained on (too few messages to say anything) are not scored
    feats = extract_features(
        table, window_s=model.window_s, whole_flow=False, min_messages=model.min_messages
    )
    if feats.height == 0:
        return _unscored(table, schema)
    x = _matrix(feats, model.binary_features)
    p, approx = _predict_binary(model.binary_file, x)

    flow_ids, rows, windows = _most_suspicious(feats["flow_id"].to_numpy(), p)
    best = feats.select(KEY_COLUMNS)
    if not _all_rows(rows, feats.height):  # else (one window per flow, the common case) no copy
        x, p, best = x[rows], p[rows], best[rows]
        approx = None if approx is None else (approx[0][rows], approx[1][rows])

    top = _top_features(model.binary_file, x, model.binary_features, p, approx=approx, json_text=json_text)
    coin_rows = np.flatnonzero((p >= COIN_FLOOR) | _has_stage0(table, flow_ids))
    # few flows get a coin: only their rows of the coin model's features are converted
    cx = _matrix(feats[rows[coin_rows]], model.coin_features)
    # stage1 from numpy's comparison (NaN is not >=; in polars it is), passed as a mask:
    # np.where's array of strings cost ~0.3 ms a block to build and hand to polars
    mining = pl.lit(pl.Series(p >= model.threshold))
    out = best.with_columns(
        pl.Series("windows", windows, pl.Int32),
        pl.Series("p_mining", p, pl.Float64),
        pl.when(mining).then(pl.lit(MINING)).otherwise(pl.lit(BENIGN)).alias("stage1"),
        *_scatter(_coin_columns(model, cx, schema, json_text=json_text), coin_rows, best.height),
        top,
    )
    all_ids = table.summary["flow_id"]
    if not out["flow_id"].equals(all_ids):  # else every flow has its row, in order: no join
        # flows without any packet or message get no window: keep them, unscored
        out = (
            all_ids.to_frame()
            .join(out, on="flow_id", how="left", maintain_order="left")
            .with_columns(
                pl.col("windows").fill_null(0),
                pl.col("p_mining").fill_null(0.0),
                pl.col("stage1").fill_null(UNSCORED),
            )
        )
    return out[list(schema)]


def _unscored(table: FlowTable, schema: dict[str, pl.DataType]) -> pl.DataFrame:
    return (
        table.summary.select("flow_id")
        .with_columns(
            pl.lit(0, pl.Int32).alias("windows"),
            pl.lit(0.0).alias("p_mining"),
            pl.lit(UNSCORED).alias("stage1"),
        )
        .join(
            pl.DataFrame(schema=schema).drop("windows", "p_mining", "stage1"),
            on="flow_id",
            how="left",
            maintain_order="left",
        )
        .select(list(schema))
        .cast(schema)  # type: ignore[arg-type]
    )


def _most_suspicious(
    flow_id: npt.NDArray[np.int64], p: npt.NDArray[np.float64]
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.intp], npt.NDArray[np.int64]]:
    """Per flow, in flow-id order: its id, the row of its most suspicious window (the first
    on ties) and how many windows it has. A flow's windows are consecutive rows (as
    :func:`extract_features` orders them), so this is one pass, no grouping."""
    starts = np.flatnonzero(np.r_[True, flow_id[1:] != flow_id[:-1]])
    counts = np.diff(np.r_[starts, flow_id.shape[0]])
    segment = np.repeat(np.arange(starts.shape[0]), counts)
    top = np.maximum.reduceat(p, starts)
    at_top = np.flatnonzero(p == top[segment])
    _, first = np.unique(segment[at_top], return_index=True)
    rows = at_top[first]
    order = np.argsort(flow_id[starts], kind="stable")
    return flow_id[starts][order], rows[order], counts[order]


Attributions = tuple[npt.NDArray[np.int64], npt.NDArray[np.float32]]
"""Per row, the :data:`TOP_FEATURES` feature indices and their Saabas contributions."""


def _predict_binary(
    part: BoosterFile, x: npt.NDArray[np.float32]
) -> tuple[npt.NDArray[np.float64], Attributions | None]:
    """P(mining) of every row of ``x`` and, when the kernels cover the booster, every row's
    Saabas top features, from one walk of the trees (:mod:`minerscope.model.predict`:
    XGBoost's probabilities bit for bit); else XGBoost's prediction and None."""
    arrays = part.trees
    if arrays is None or arrays.groups != 1 or not predict.supported(arrays):
        # no DMatrix: inplace prediction gives the same numbers without copying the matrix
        return np.asarray(part.booster.inplace_predict(x), dtype=np.float64), None
    distinct, inverse = unique_rows(x)
    idx, val, margin = saabas.top_contributions(arrays, distinct, min(TOP_FEATURES, x.shape[1]))
    p = predict.probabilities(arrays, margin).astype(np.float64)
    if distinct is not x:
        idx, val, p = idx[inverse], val[inverse], p[inverse]
    return p, (idx, val)


def _has_stage0(table: FlowTable, flow_ids: npt.NDArray[np.int64]) -> npt.NDArray[np.bool_]:
    """Per flow id, whether stage 0 found evidence (``stage0`` not empty) for the flow."""
    if "stage0" not in table.summary.columns:
        return np.zeros(flow_ids.shape[0], bool)
    summary = table.summary  # Series operations: a frame filter would plan a query per block
    flagged = summary["flow_id"].filter(summary["stage0"].fill_null("") != "").to_numpy()
    return np.isin(flow_ids, flagged)


def _scatter(columns: list[pl.Series], rows: npt.NDArray[np.intp], n: int) -> list[pl.Series]:
    """``columns`` (one value per entry of ``rows``) spread over ``n`` rows, null elsewhere."""
    if rows.shape[0] == n:
        return columns
    if rows.shape[0] == 0:  # most blocks: no flow gets a coin
        return [c.clear(n) for c in columns]
    index = pl.Series("index", rows, pl.Int64)
    frame = pl.DataFrame([index, *columns])
    full = pl.DataFrame({"index": np.arange(n, dtype=np.int64)}).join(frame, on="index", how="left")
    return [full[c.name] for c in columns]


def _matrix(feats: pl.DataFrame, names: tuple[str, ...]) -> npt.NDArray[np.float32]:
    """Those columns of ``feats`` as float32 (as XGBoost reads them), row-major.

    Polars hands a frame over column-major; XGBoost, Saabas and TreeSHAP read a row at a
    time, and on the row-major copy XGBoost's prediction costs ~10 % less (and picking the
    flows' rows is a block copy, not a strided gather). Columns are picked by name
    (``frame[list]``): ``select`` would build and plan one expression per feature. Polars
    writes the row-major matrix itself (``order="c"``): its default column-major copy,
    transposed again by numpy, took 2.8x as long."""
    return feats[list(names)].to_numpy(order="c").astype(np.float32, order="C", copy=False)


def _all_rows(rows: npt.NDArray[np.intp], n: int) -> bool:
    """Whether ``rows`` is ``0, 1, ..., n - 1``: picking them would copy the matrix as it is."""
    return rows.shape[0] == n and bool(np.array_equal(rows, np.arange(n)))


def _coin_columns(
    model: Model, cx: npt.NDArray[np.float32], schema: dict[str, pl.DataType], *, json_text: bool = False
) -> list[pl.Series]:
    """``coin`` and ``coin_probs`` for the rows of ``cx`` (the coin model's features)."""
    n = cx.shape[0]
    # no rows: skip the booster call and the text building (~1 ms of fixed cost a block)
    if n == 0 or model.coin_file is None or not model.coin_classes:
        return [
            pl.Series("coin", [None] * n, pl.Utf8),
            pl.Series("coin_probs", ["{}"] * n if json_text else [{}] * n, schema["coin_probs"]),
        ]
    distinct, inverse = unique_rows(cx)
    arrays = model.coin_file.trees
    if arrays is not None and predict.supported(arrays):
        got = predict.predict(arrays, distinct)
    else:
        got = model.coin_file.booster.inplace_predict(distinct)
    probs = np.asarray(got, dtype=np.float64).reshape(-1, len(model.coin_classes))[inverse]
    classes = list(model.coin_classes)
    coin = pl.Series("coin", np.asarray(classes, dtype=object)[probs.argmax(axis=1)], pl.Utf8)
    if json_text:
        numbers = json_numbers(probs)
        parts: list[pl.Expr | str] = ["{"]
        for i, c in enumerate(classes):
            parts += [f"{',' if i else ''}{json.dumps(c)}:", _utf8(numbers[:, i])]
        return [coin, _concat_text(parts + ["}"]).alias("coin_probs")]
    return [coin, pl.DataFrame({c: probs[:, i] for i, c in enumerate(classes)}).to_struct("coin_probs")]


def _contributions(
    part: BoosterFile,
    x: npt.NDArray[np.float32],
    names: tuple[str, ...],
    p: npt.NDArray[np.float64] | None,
    approx_top: Attributions | None = None,
) -> tuple[npt.NDArray[np.intp], npt.NDArray[np.float64]]:
    """Per row: the ``TOP_FEATURES`` feature indices, largest absolute contribution first
    (ties in feature order), and their contributions (see :func:`_top_features` for which
    rows are exact; ``approx_top``, when given, holds every row's Saabas ones already); a
    slot past the features with any contribution holds 0.0."""
    n = x.shape[0]
    k = min(TOP_FEATURES, len(names))
    order = np.zeros((n, k), np.intp)
    top = np.zeros((n, k), np.float64)
    exact = np.ones(n, bool) if p is None else p >= EXACT_FLOOR
    for rows, approx in ((np.flatnonzero(exact), False), (np.flatnonzero(~exact), True)):
        if not rows.size:
            continue
        if approx and approx_top is not None:
            order[rows], top[rows] = approx_top[0][rows], approx_top[1][rows]
            continue
        distinct, inverse = unique_rows(x if rows.shape[0] == n else x[rows])
        arrays = part.trees
        if arrays is not None and arrays.groups == 1:  # XGBoost's numbers, computed here
            if approx:  # no rows x features matrix at all
                idx, val, _ = saabas.top_contributions(arrays, distinct, k)
                if distinct is not x:
                    idx, val = idx[inverse], val[inverse]
                order[rows], top[rows] = idx, val
                continue
            contribs = treeshap.contributions(arrays, distinct).astype(np.float64)[inverse]
        else:
            import xgboost

            dmat = xgboost.DMatrix(distinct, feature_names=list(names), nthread=1)
            got = part.booster.predict(dmat, pred_contribs=True, approx_contribs=approx)
            contribs = np.asarray(got, np.float64)[inverse, : len(names)]  # last column: bias
        order[rows] = _largest(contribs, k)
        top[rows] = np.take_along_axis(contribs, order[rows], 1)
    return order, top


def _largest(contribs: npt.NDArray[np.float64], k: int) -> npt.NDArray[np.intp]:
    """Per row, the ``k`` columns of largest absolute value, largest first, ties in column
    order (as a stable full sort would give them)."""
    n, width = contribs.shape
    magnitude = np.abs(contribs)
    np.negative(magnitude, out=magnitude)
    part = np.argpartition(magnitude, k - 1, axis=1)[:, :k] if k < width else np.tile(np.arange(k), (n, 1))
    return np.take_along_axis(part, np.lexsort((part, np.take_along_axis(magnitude, part, 1)), axis=1), 1)


def _top_features(
    part: BoosterFile,
    x: npt.NDArray[np.float32],
    names: tuple[str, ...],
    p: npt.NDArray[np.float64] | None = None,
    *,
    approx: Attributions | None = None,
    json_text: bool = False,
) -> pl.Series:
    """The ``TOP_FEATURES`` largest contributions per row, as a ``TOP_FEATURE_DTYPE`` series
    (JSON text with ``json_text``, see :func:`score`).

    Exact TreeSHAP (XGBoost's ``pred_contribs``, computed bit for bit by
    :mod:`minerscope.model.treeshap` at ~25 µs a distinct row with the shipped model,
    XGBoost's own ~100 µs) still costs 5x a Saabas attribution, so only rows an analyst may
    look at (``p >= EXACT_FLOOR``) get it; the rest get Saabas path attributions
    (XGBoost's ``approx_contribs``, computed bit for bit by :mod:`minerscope.model.saabas`
    at ~3 µs a row; on the bundled sample they name the same top feature as TreeSHAP for
    80% of windows, the same top five for 44%). Without ``p`` every row is exact.
    """
    n = x.shape[0]
    if n == 0:
        return pl.Series("top_features", [], dtype=pl.Utf8 if json_text else TOP_FEATURE_DTYPE)
    order, top_contribs = _contributions(part, x, names, p, approx)
    k = order.shape[1]
    top_values = np.take_along_axis(x, order, 1).astype(np.float64)
    if json_text:
        return top_feature_lists(names, order, top_contribs, top_values)
    row = np.repeat(np.arange(n, dtype=np.int64), k)
    flat = pl.DataFrame(
        {
            "row": row,
            "name": np.asarray(names, dtype=object)[order].ravel(),
            "contribution": top_contribs.ravel(),
            "value": top_values.ravel(),
        },
        schema={"row": pl.Int64, "name": pl.Utf8, "contribution": pl.Float64, "value": pl.Float64},
    ).filter(pl.col("contribution") != 0.0)  # a feature no tree used explains nothing
    lists = flat.group_by("row", maintain_order=True).agg(
        pl.struct("name", "contribution", "value").alias("top_features")
    )
    full = pl.DataFrame({"row": np.arange(n, dtype=np.int64)}).join(lists, on="row", how="left")
    return full["top_features"].fill_null([]).cast(TOP_FEATURE_DTYPE)


def _utf8(text: npt.NDArray[np.object_]) -> pl.Expr:
    return pl.lit(pl.Series(text.tolist(), dtype=pl.Utf8))


def _concat_text(parts: list[pl.Expr | str]) -> pl.Series:
    """The row-wise concatenation of ``parts`` (literal strings or row-aligned Utf8 columns)."""
    exprs = [pl.lit(p) if isinstance(p, str) else p for p in parts]
    return pl.select(pl.concat_str(exprs).alias("text")).to_series()
