"""The parsed-trees cache: a hit gives the very arrays the parse gives, and anything
wrong with the cache (damaged, foreign, unwritable) costs the parse, never the model."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest

from minerscope.model import artifact, treecache, trees
from minerscope.model.artifact import load_model


def _same(a: trees.TreeArrays, b: trees.TreeArrays) -> None:
    for f in dataclasses.fields(trees.TreeArrays):
        x, y = getattr(a, f.name), getattr(b, f.name)
        if isinstance(x, np.ndarray):
            assert x.dtype == y.dtype and np.array_equal(x, y), f.name
        else:
            assert x == y, f.name


def _parsed() -> list[trees.TreeArrays]:
    model = load_model(None)
    assert model.coin_file is not None
    return [part.trees for part in (model.binary_file, model.coin_file)]  # type: ignore[misc]


def _entries(folder: Path) -> list[Path]:
    return sorted(folder.glob(f"*.v{treecache.FORMAT}.npz"))


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("MINERSCOPE_CACHE_DIR", str(tmp_path / "trees"))
    return tmp_path / "trees"


def _no_parse(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(raw: bytes) -> None:
        raise AssertionError("the booster was parsed although its trees are cached")

    monkeypatch.setattr(artifact, "read_trees", refuse)


def test_a_second_load_reads_the_cache_and_gets_the_parsed_arrays(
    cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = _parsed()
    assert len(_entries(cache)) == 2
    _no_parse(monkeypatch)
    for a, b in zip(first, _parsed(), strict=True):
        _same(a, b)


@pytest.mark.parametrize("damage", ["truncated", "garbage", "empty", "bad-link", "other-booster"])
def test_a_bad_entry_is_a_miss_and_is_rewritten(cache: Path, damage: str) -> None:
    expected = _parsed()
    entry = min(_entries(cache), key=lambda p: p.stat().st_size)  # the binary model's
    raw = entry.read_bytes()
    if damage == "truncated":
        entry.write_bytes(raw[: len(raw) // 2])
    elif damage == "garbage":
        entry.write_bytes(b"PK\x03\x04" + bytes(range(256)) * 8)
    elif damage == "empty":
        entry.write_bytes(b"")
    elif damage == "bad-link":
        with np.load(entry, allow_pickle=False) as npz:
            fields = {k: npz[k] for k in npz.files}
        fields["left"] = fields["left"].copy()
        fields["left"][0] = len(fields["left"]) + 5  # a child outside every tree
        np.savez(entry.with_suffix(".tmp.npz"), **fields)
        entry.with_suffix(".tmp.npz").replace(entry)
    else:  # the coin model's entry copied over the binary model's
        entry.write_bytes(max(_entries(cache), key=lambda p: p.stat().st_size).read_bytes())
    for a, b in zip(expected, _parsed(), strict=True):
        _same(a, b)
    assert entry.read_bytes() == raw  # parsed again and written back whole


def test_an_unwritable_cache_only_costs_the_parse(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("a file where the cache directory would go")
    monkeypatch.setenv("MINERSCOPE_CACHE_DIR", str(blocker / "trees"))
    first, second = _parsed(), _parsed()
    for a, b in zip(first, second, strict=True):
        _same(a, b)
    assert blocker.read_text() == "a file where the cache directory would go"
    assert not list(tmp_path.glob("**/*.tmp"))
