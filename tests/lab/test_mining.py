"""Cadence of generated mining sessions follows the coin registry and the pool's vardiff policy."""

from __future__ import annotations

import json
import random
import statistics

import pytest

from minerscope.lab.coins import load_coins
from minerscope.lab.mining import MiningScript, draw_miner, make_pool
from minerscope.prefilter.stratum import detect_stratum
from minerscope.probe.dialects import bitcoin, monero

HOURS = 6.0


def _xmr_session(
    seed: int, rate_cap: float | None = None
) -> tuple[list[tuple[float, int, dict[str, object]]], float, float, float]:
    coins = load_coins()
    rng = random.Random(seed)
    pool = make_pool(
        coins["xmr"], rng, host="xmr.lab.example", ip="127.20.0.1", port=3333, duration=HOURS * 3600
    )
    miner = draw_miner(coins["xmr"], rng, "cpu")
    miner.reconnect_rate = 0.0
    miner.bad_login = False
    miner.keepalive = None
    miner.rate_cap = rate_cap
    pool.kick_rate = 0.0
    script = MiningScript(pool, miner, rng, rtt=0.05)
    (conn,) = script.connections(0.0, HOURS * 3600)
    msgs = [(t, d, json.loads(data)) for t, d, data in conn.msgs]
    blocks = sum(1 for j in pool.jobs if j.clean and 0 < j.t < HOURS * 3600)
    return msgs, pool.share_target, pool.refresh, blocks


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_xmr_cadence_matches_block_time_refresh_and_share_target(seed: int) -> None:
    msgs, share_target, refresh, blocks = _xmr_session(seed)
    # block arrivals: exponential with XMR's 120 s mean -> ~180 in 6 h
    assert 180 * 0.7 < blocks < 180 * 1.3
    pushes = [t for t, d, m in msgs if d == 1 and m.get("method") == "job"]
    gaps = [b - a for a, b in zip(pushes, pushes[1:], strict=False)]
    # a job at least every refresh interval (plus vardiff retargets and new blocks in between)
    assert max(gaps) <= refresh * 1.05 + 1
    submits = [t for t, d, m in msgs if d == 0 and m.get("method") == "submit"]
    # after vardiff settles (first hour), the mean share interval is near the pool's target
    late = [t for t in submits if t > 3600]
    mean_gap = (late[-1] - late[0]) / (len(late) - 1)
    assert share_target * 0.55 < mean_gap < share_target * 1.8
    # every submit is answered, and the parsers of the project's dialect accept the messages
    replies = {m["id"] for t, d, m in msgs if d == 1 and "id" in m}
    assert all(m["id"] in replies for t, d, m in msgs if d == 0)
    login_reply = next(
        m for t, d, m in msgs if d == 1 and isinstance(m.get("result"), dict) and "job" in m["result"]
    )
    session_id, job = monero.parse_login_result(login_reply["result"])
    assert job is not None and len(job.blob) in (152, 154)


def test_btc_notify_merkle_branches_follow_tx_count() -> None:
    coins = load_coins()
    rng = random.Random(9)
    pool = make_pool(coins["btc"], rng, host="btc.lab.example", ip="127.20.0.2", port=3333, duration=7200)
    miner = draw_miner(coins["btc"], rng, "asic")
    miner.bad_login = False
    miner.reconnect_rate = 0.0
    pool.kick_rate = 0.0
    (conn,) = MiningScript(pool, miner, rng, rtt=0.02).connections(0.0, 7200)
    server = [json.loads(d) for _, direction, d in conn.msgs if direction == 1]
    notifies = [m for m in server if m.get("method") == "mining.notify"]
    assert len(notifies) >= 7200 / 60
    branch_counts = {len(bitcoin.parse_notify(n["params"]).merkle_branch) for n in notifies}
    lo, hi = (bitcoin.merkle_branch_count(int(x)) for x in coins["btc"].spec["tx_count"])
    assert branch_counts <= set(
        range(bitcoin.merkle_branch_count(int(coins["btc"].spec["tx_count"][0] * 0.15 * 0.6)), hi + 1)
    )
    assert len(branch_counts) > 1 and lo <= hi
    sizes = [len(d) for _, _, d in conn.msgs]
    assert len(set(sizes)) > 10  # sizes are drawn, never constant
    assert (
        statistics.median(
            len(d)
            for _, di, d in conn.msgs
            if di == 1 and b'"mining.notify","params"' in d.replace(b" ", b"")
        )
        > 500
    )


def _job_target(msg: dict[str, object]) -> object:
    params = msg["params"]
    assert isinstance(params, dict)
    return params["target"]


@pytest.mark.parametrize("seed", [4, 5])
def test_vardiff_rides_on_the_next_job_not_an_extra_push(seed: int) -> None:
    # node-stratum-pool queues a new difficulty (enqueueNextDifficulty) and sends it right
    # before the next mining.notify; XMR pools put the new target inside the next job
    coins = load_coins()
    rng = random.Random(seed)
    pool = make_pool(coins["ltc"], rng, host="ltc.lab.example", ip="127.20.0.3", port=3333, duration=7200)
    miner = draw_miner(coins["ltc"], rng, "asic")  # starts far off the target: vardiff must step
    miner.bad_login, miner.reconnect_rate, pool.kick_rate = False, 0.0, 0.0
    (conn,) = MiningScript(pool, miner, rng, rtt=0.02).connections(0.0, 7200)
    server = [json.loads(d) for _, direction, d in sorted(conn.msgs, key=lambda m: m[0]) if direction == 1]
    methods = [m.get("method") for m in server]
    diffs = [i for i, m in enumerate(methods) if m == "mining.set_difficulty"]
    assert len(diffs) > 1  # the login's, and at least one retarget
    assert all(methods[i + 1] == "mining.notify" for i in diffs)
    notifies = sum(1 for m in methods if m == "mining.notify")
    jobs = sum(1 for j in pool.jobs if 0 < j.t < 7200)
    assert notifies == jobs + 1  # the login's job plus one per pool job: no extra pushes

    xmsgs, _, _, _ = _xmr_session(seed)
    pushes = [m for _, d, m in xmsgs if d == 1 and m.get("method") == "job"]
    targets = {_job_target(m) for m in pushes}
    assert len(targets) > 1  # retargets happened, carried by the jobs


def test_a_miner_below_the_pools_minimum_difficulty_shares_slower_than_the_target() -> None:
    msgs, share_target, _, _ = _xmr_session(7, rate_cap=0.2)
    submits = [t for t, d, m in msgs if d == 0 and m.get("method") == "submit"]
    mean_gap = (submits[-1] - submits[0]) / (len(submits) - 1)
    assert share_target / 0.2 * 0.7 < mean_gap < share_target / 0.2 * 1.4
    # at the floor the pool stops lowering the difficulty: the job target rarely changes
    late = [_job_target(m) for t, d, m in msgs if d == 1 and m.get("method") == "job" and t > 3600]
    changes = sum(a != b for a, b in zip(late, late[1:], strict=False))
    assert len(late) > 50 and changes <= len(late) / 10


def _first_conn(
    coin: str, seed: int, *, bad_login: bool, eth_variant: str | None = None
) -> tuple[bytes, bytes]:
    """Client and server bytes of a session's first connection (same pool and miner draws)."""
    coins = load_coins()
    rng = random.Random(seed)
    pool = make_pool(coins[coin], rng, host=f"{coin}.lab.example", ip="127.20.0.9", port=3333, duration=900)
    if eth_variant:
        pool.eth_variant = eth_variant
    miner = draw_miner(coins[coin], rng)
    miner.bad_login, miner.reconnect_rate, pool.kick_rate = bad_login, 0.0, 0.0
    conn = MiningScript(pool, miner, rng, rtt=0.03).connections(0.0, 900)[0]
    msgs = sorted(conn.msgs, key=lambda m: m[0])
    return b"".join(data for _, d, data in msgs if d == 0), b"".join(data for _, d, data in msgs if d == 1)


@pytest.mark.parametrize(
    ("coin", "eth_variant", "family"),
    [("btc", None, "bitcoin"), ("ltc", None, "bitcoin"), ("rvn", None, "bitcoin"), ("zec", None, "zcash")]
    + [("xmr", None, "monero"), ("etc", "ethstratum1", "ethereum"), ("etc", "ethproxy", "ethereum")]
    + [("ethw", "ethstratum1", "ethereum")],
)
def test_a_refused_login_speaks_the_coins_dialect_up_to_the_refusal(
    coin: str, eth_variant: str | None, family: str
) -> None:
    # A miner with a bad wallet still sends its coin's subscribe/login: stage 0 reads the
    # refused connection as the coin's dialect family, as it reads the accepted one, and
    # only the refused one gets an error reply and no job.
    for seed in range(4):
        refused_c2s, refused_s2c = _first_conn(coin, seed, bad_login=True, eth_variant=eth_variant)
        ok_c2s, ok_s2c = _first_conn(coin, seed, bad_login=False, eth_variant=eth_variant)
        refused = detect_stratum(refused_c2s, refused_s2c)
        accepted = detect_stratum(ok_c2s, ok_s2c)
        assert refused is not None and refused.family == family
        assert accepted is not None and accepted.family == family  # RVN's set_target is no Zcash
        replies = [json.loads(line) for line in refused_s2c.splitlines()]
        assert sum(1 for m in replies if m.get("error") or m.get("result") is False) == 1
        assert not any(m.get("method") in ("mining.notify", "job") for m in replies)
        assert not any(isinstance(m.get("result"), dict) and "job" in m["result"] for m in replies)
        assert len(ok_s2c.splitlines()) > len(replies)
        # the refused handshake is the accepted one's, byte for byte up to the authorize/login
        # (the same rng draws), so the coin's message shapes are what a classifier sees
        first = refused_c2s.splitlines()[0]
        assert first == ok_c2s.splitlines()[0]
