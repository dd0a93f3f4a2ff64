"""Telling an unscored flow's row from a scored one (for every view of the verdicts).

Stage 1 leaves a flow unscored when none of its windows holds the application messages
the model was trained on (:mod:`minerscope.model.classify`); its row then carries
``p_mining`` 0.0 and a null ``window``. A view that printed the 0.0 would show a
measurement where there is none, so views ask this instead. (A module of its own: the
output writers and the workstation need it without importing the model code.)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # polars only for the frame-wide form, imported when it is used
    import polars as pl

NOT_SCORED = "-"
"""How a view shows the probability of an unscored flow."""


def unscored(row: Mapping[str, Any]) -> bool:
    """Whether verdict ``row`` (a triage row or a JSON record) is of an unscored flow: it
    has a ``window`` field, and that is null."""
    return "window" in row and row["window"] is None


def measured(col: str, names: Sequence[str]) -> pl.Expr:
    """Column ``col`` of a rows frame with columns ``names``, as a measurement: the same
    rule as :func:`unscored`, frame-wide, so ``p_mining`` is null for an unscored flow
    (comparisons with it fail, sorts put it with the nulls); other columns as they are."""
    import polars as pl

    if col == "p_mining" and "window" in names:
        return pl.when(pl.col("window").is_not_null()).then(pl.col(col))
    return pl.col(col)
