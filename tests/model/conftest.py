"""A small model trained once per session on synthetic labelled flows (few rounds: fast)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
import pytest

from minerscope.features.synthetic import synthetic_table
from minerscope.model.train import LabelledFlows, TrainResult, train

COINS = ("xmr", "ltc")


def labelled_groups(n_groups: int = 10, per_class: int = 4, seed: int = 0) -> list[LabelledFlows]:
    """``n_groups`` captures of mining and benign flows; mining coin alternates by flow."""
    out = []
    for g in range(n_groups):
        table, kinds = synthetic_table(per_class, per_class, seed=seed * 1000 + g)
        coins = [COINS[i % 2] if k else None for i, k in enumerate(kinds)]
        labels = pl.DataFrame(
            {
                "label": kinds.astype(np.int8),
                "coin": pl.Series(coins, dtype=pl.Utf8),
                "group": [f"capture{g}"] * len(kinds),
                "source": ["synthetic-a" if g % 2 else "synthetic-b"] * len(kinds),
            }
        )
        out.append(LabelledFlows(table, labels))
    return out


@pytest.fixture(scope="session")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, TrainResult]:
    folder = tmp_path_factory.mktemp("models") / "synthetic"
    result = train(labelled_groups(), folder, seed=3, rounds=8, recipe={"data": ["synthetic"]})
    return folder, result
