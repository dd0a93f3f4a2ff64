"""Fuzzing in the suite: replay the committed seed corpus and run a short hypothesis search.

The long, coverage-guided campaigns are ``python -m fuzz.run`` (atheris); this is their
cheap, always-on part. Every target checks its own invariants (see :mod:`fuzz.targets`):
only documented errors escape, outputs stay within their named limits, and a capture cut
at any byte keeps exactly the complete packets before the cut. atheris is not needed.
"""

from __future__ import annotations

import json
import random
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import fuzz
from fuzz import refwalk
from fuzz.targets import (
    PCAP_CONFIG_BYTES,
    TARGETS,
    check_gzip_truncation,
    check_truncation,
    read_capture_bytes,
)
from tests.conftest import needs_libpcap

CORPUS = Path(fuzz.__file__).parent / "corpus"
ROOT = CORPUS.parent.parent

EXAMPLES = {"pcap": 150, "flows": 60}
"""Hypothesis examples per target (default 250): a few seconds each, ~20 s in all."""


def seeds(name: str) -> list[bytes]:
    return [p.read_bytes() for p in sorted((CORPUS / name).iterdir())]


_INTERESTING = (0, 1, 0x7F, 0x80, 0xFF, 0xFFFF, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFF)


@st.composite
def mutants(draw: st.DrawFn, corpus: list[bytes]) -> bytes:
    """A seed with a few libFuzzer-style mutations: byte sets, inserts, deletes, cuts, magic ints."""
    if draw(st.integers(0, 9)) == 0:
        return draw(st.binary(max_size=512))
    data = bytearray(draw(st.sampled_from(corpus)))
    for _ in range(draw(st.integers(1, 4))):
        op = draw(st.integers(0, 4))
        pos = draw(st.integers(0, len(data)))
        if op == 0 and pos < len(data):
            data[pos] = draw(st.integers(0, 255))
        elif op == 1:
            data[pos:pos] = draw(st.binary(min_size=1, max_size=8))
        elif op == 2:
            del data[pos : pos + draw(st.integers(1, 32))]
        elif op == 3:
            del data[pos:]
        else:
            value = draw(st.sampled_from(_INTERESTING))
            data[pos : pos + 4] = value.to_bytes(4, draw(st.sampled_from(["big", "little"])))
    return bytes(data)


def test_corpus_is_committed_and_small() -> None:
    sizes = {name: sum(len(s) for s in seeds(name)) for name in TARGETS}
    assert all(len(seeds(name)) >= 10 for name in TARGETS), sizes
    assert sum(sizes.values()) < 1024 * 1024


@pytest.mark.parametrize("name", sorted(TARGETS))
def test_seed_corpus_replays_cleanly(name: str) -> None:
    for data in seeds(name):
        TARGETS[name].run(data)


@pytest.mark.parametrize("name", sorted(TARGETS))
def test_mutated_seeds(name: str) -> None:
    @settings(
        max_examples=EXAMPLES.get(name, 250),
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(mutants(seeds(name)))
    def run(data: bytes) -> None:
        TARGETS[name].run(data)

    run()


def test_truncation_keeps_every_complete_packet_before_the_cut() -> None:
    """Each complete seed capture, cut at every record boundary, next to it and at random bytes;
    gzip-compressed, cut anywhere, it keeps every packet that can still be decompressed."""
    rng = random.Random(9)
    checked = 0
    for data in seeds("pcap"):
        body = data[PCAP_CONFIG_BYTES:]
        full = read_capture_bytes(body)
        if full.error or not full.complete or body[:2] == b"\x1f\x8b":
            continue
        ends, bounds = refwalk.packet_ends(body)
        assert len(ends) == len(full.packets) > 0
        cuts = {c + d for c in bounds for d in (-1, 0, 1)} | {rng.randrange(len(body)) for _ in range(20)}
        for cut in sorted(c for c in cuts if 0 <= c <= len(body)):
            check_truncation(body, full, cut)
        for _ in range(20):  # the same capture gzip-compressed, cut at random compressed bytes
            check_gzip_truncation(body, full, rng.randrange(1 << 16))
        checked += 1
    assert checked >= 10


def test_replay_driver_reports_clean_corpus() -> None:
    """``python -m fuzz.run --replay`` (what the campaign uses for coverage) runs without atheris."""
    proc = subprocess.run(
        [sys.executable, "-m", "fuzz.run", "--target", "dns", "--replay", str(CORPUS / "dns")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    result = json.loads(proc.stdout.splitlines()[-1])
    assert result["inputs"] == len(seeds("dns")) and result["failures"] == []


@needs_libpcap
def test_capture_filters_on_every_pcap_seed() -> None:
    """Flag bit 7: each seed read through a keep-all filter (every decodable packet, nothing
    else changed) and a selective one (an ordered subset, the same damage, counts that add up)."""
    for data in seeds("pcap"):
        TARGETS["pcap"].run(bytes([data[0] | 0x80]) + data[1:])
