"""Telling an unscored flow's row from a scored one (for every view of the verdicts).

Stage 1 leaves a flow unscored when none of its windows holds the application messages
the model was trained on (:mod:`minerscope.model.classify`); its row then carries
``p_mining`` 0.0 and a null ``window``. A view that printed the 0.0 would show a
measurement where there is none, so views ask this instead. (A module of its own: the
output writers and the workstation need it without importing the model code.)
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

NOT_SCORED = "-"
"""How a view shows the probability of an unscored flow."""


def unscored(row: Mapping[str, Any]) -> bool:
    """Whether verdict ``row`` (a triage row or a JSON record) is of an unscored flow: it
    has a ``window`` field, and that is null."""
    return "window" in row and row["window"] is None
