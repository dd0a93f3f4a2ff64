"""The coin registry is data; bad registries fail loudly with the coin and field named."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from minerscope.errors import InputError
from minerscope.lab.coins import load_coins
from minerscope.lab.generate import ALL_COINS


def test_shipped_registry_has_the_seven_coins_with_cadence() -> None:
    coins = load_coins()
    assert set(ALL_COINS) <= set(coins)
    assert coins["btc"].block_time == 600 and coins["xmr"].block_time == 120 and coins["etc"].block_time == 13


def test_a_new_coin_is_only_data(tmp_path: Path) -> None:
    data = json.loads((Path(__file__).parents[2] / "minerscope/lab/coins.json").read_text())
    data["coins"]["doge"] = dict(data["coins"]["ltc"], name="Dogecoin", block_time=60)
    path = tmp_path / "coins.json"
    path.write_text(json.dumps(data))
    assert load_coins(path)["doge"].block_time == 60
    del data["coins"]["doge"]["dialect"]
    path.write_text(json.dumps(data))
    with pytest.raises(InputError, match="coin 'doge' lacks field 'dialect'"):
        load_coins(path)
    path.write_text("{not json")
    with pytest.raises(InputError, match="line 1"):
        load_coins(path)
