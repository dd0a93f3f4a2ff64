"""The coin registry: every coin the lab can mine is a row of data in ``coins.json``.

Why data, not code: the cadence (block time, job refresh), the dialect and the message
shapes (transactions per block -> merkle branches, blob/target lengths, ports, agents)
are exactly what differs between coins, and the generator reads nothing else. Adding a
coin is adding an entry; :func:`load_coins` validates the fields the generator needs so a
typo fails loudly with the coin and field named.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from minerscope.errors import InputError

DIALECTS = ("stratum1", "monero", "ethereum")
_REQUIRED = (
    "dialect",
    "algorithm",
    "block_time",
    "refresh",
    "ports",
    "tls_ports",
    "agents",
    "classes",
    "solo",
)


@dataclass(frozen=True, slots=True)
class Coin:
    """One coin: ``ticker`` plus the raw registry entry (``spec``) with typed accessors."""

    ticker: str
    spec: dict[str, Any]

    @property
    def dialect(self) -> str:
        return str(self.spec["dialect"])

    @property
    def variant(self) -> str:
        return str(self.spec.get("variant", ""))

    @property
    def block_time(self) -> float:
        return float(self.spec["block_time"])

    def range(self, key: str, default: tuple[float, float] = (0.0, 0.0)) -> tuple[float, float]:
        value = self.spec.get(key)
        if value is None:
            return default
        return float(value[0]), float(value[1])


def load_coins(path: Path | None = None) -> dict[str, Coin]:
    """Read and validate the registry (default: the ``coins.json`` shipped with the lab)."""
    if path is None:
        text = resources.files("minerscope.lab").joinpath("coins.json").read_text(encoding="utf-8")
        where = "minerscope/lab/coins.json"
    else:
        where = str(path)
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise InputError(f"{where}: cannot read coin registry: {exc.strerror}") from exc
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError(f"{where}: line {exc.lineno}: not valid JSON: {exc.msg}") from exc
    coins: dict[str, Coin] = {}
    for ticker, spec in data.get("coins", {}).items():
        for key in _REQUIRED:
            if key not in spec:
                raise InputError(f"{where}: coin {ticker!r} lacks field {key!r}")
        if spec["dialect"] not in DIALECTS:
            raise InputError(
                f"{where}: coin {ticker!r}: unknown dialect {spec['dialect']!r} (known: {DIALECTS})"
            )
        if float(spec["block_time"]) <= 0:
            raise InputError(f"{where}: coin {ticker!r}: block_time must be positive")
        coins[ticker] = Coin(ticker, spec)
    if not coins:
        raise InputError(f"{where}: no coins defined")
    return coins
