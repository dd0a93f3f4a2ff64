"""The feature list: size, grammar, uniqueness, and a hash that only moves on purpose."""

from __future__ import annotations

import re

from minerscope.features import schema

# Changing the feature list or its definitions changes this value: bump SCHEMA_VERSION,
# retrain the shipped model, then update the pin.
PINNED_HASH = "55ff7789dd831a3a919a9b921923429c860c0c711a60875637dbb8252f90f403"


def test_at_least_231_unique_candidates() -> None:
    assert len(schema.FEATURE_NAMES) >= 231
    assert len(set(schema.FEATURE_NAMES)) == len(schema.FEATURE_NAMES)


def test_names_follow_direction_statistic_unit_grammar() -> None:
    units = "|".join(sorted(schema.UNITS, key=len, reverse=True))
    pattern = re.compile(rf"^(c2s|s2c|bidir)_[a-z0-9_]+_({units})$|^(c2s|s2c|bidir)_[a-z0-9_]*({units})$")
    for name in schema.FEATURE_NAMES:
        assert pattern.match(name), name
        assert name.split("_")[0] in schema.DIRECTIONS


def test_no_lab_artefacts_among_features() -> None:
    for name in schema.FEATURE_NAMES:
        for banned in ("port", "addr", "ip_", "timestamp", "epoch", "is_tls", "sni"):
            assert banned not in name, name


def test_hash_is_stable_and_pinned() -> None:
    assert schema.schema_hash() == schema.SCHEMA_HASH
    assert schema.schema_hash(list(schema.FEATURE_NAMES)) == schema.SCHEMA_HASH
    assert schema.SCHEMA_HASH == PINNED_HASH


def test_hash_changes_with_order_and_version() -> None:
    names = list(schema.FEATURE_NAMES)
    swapped = [names[1], names[0], *names[2:]]
    assert schema.schema_hash(swapped) != schema.SCHEMA_HASH
    assert schema.schema_hash(names, version=schema.SCHEMA_VERSION + 1) != schema.SCHEMA_HASH
    assert schema.schema_hash(names[:-1]) != schema.SCHEMA_HASH
