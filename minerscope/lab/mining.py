"""Mining sessions: a pool and a miner speaking the coin's dialect on a simulated clock.

The cadence model follows PROTOCOLS.md 5.4, because cadence is what a flow-feature
detector keys on once TLS hides the payload:

* **Jobs** are a property of the *pool*, shared by all its miners: a new block arrives
  after an exponential wait with the coin's mean block time (clean job), and between
  blocks the pool re-broadcasts on its own timer (drawn per pool from the coin's
  ``refresh`` range, e.g. 20-55 s) with a growing transaction count. Miners of one pool
  therefore see aligned bursts, offset by a per-miner fan-out delay.
* **Shares** follow vardiff, i.e. pool policy: each session draws a target share
  interval (5-60 s); the miner class (CPU/GPU/ASIC) sets how far the starting difficulty
  is from the right one, and the pool retargets every 30-120 s when the observed rate is
  outside +-30 %. The new difficulty is *queued* and goes out with the next job (a
  ``mining.set_difficulty`` right before it, or the new target inside it), never as an
  extra push: node-stratum-pool's vardiff calls ``client.enqueueNextDifficulty`` ("set the
  newDiff at the next ... new job"), and XMR pools put the target in the job. An extra
  push per retarget made the lab's XMR sessions far busier than real XMRig traffic.
  Shares are a Poisson stream at the current rate; a few are stale or low-difficulty.
* **Keepalives** (XMR ``keepalived``), hashrate reports (eth-proxy), pool-side
  ``client.reconnect``, connection drops with back-off reconnects, and misconfigured
  miners whose login is refused over and over.

Message sizes come from real structure (merkle branches = ceil(log2(tx count + 1)),
blob/hash/target lengths from the coin registry), all drawn from ranges.
"""

from __future__ import annotations

import base64
import math
import random
from dataclasses import dataclass, field
from typing import Any

from minerscope.lab import wire
from minerscope.lab.coins import Coin
from minerscope.lab.session import Conn
from minerscope.lab.wire import JsonStyle
from minerscope.probe.dialects import bitcoin as btc
from minerscope.probe.dialects import monero as xmr_dialect

_EPOCH_TS = 1_700_000_000.0

MINER_CLASSES = ("cpu", "gpu", "asic")
# how far the pool's starting difficulty is from the right one (share-rate factor), per class
_CLASS_FACTOR = {"cpu": (0.15, 0.8), "gpu": (0.8, 3.0), "asic": (3.0, 25.0)}


@dataclass
class Job:
    t: float
    clean: bool
    tx_count: int
    seq: int
    height: int


@dataclass
class Pool:
    """One pool endpoint and its policy (shared by every miner connected to it)."""

    coin: Coin
    host: str
    ip: str
    port: int
    style: JsonStyle
    share_target: float
    retarget: float
    refresh: float
    jobs: list[Job]
    job_id_kind: str
    fanout: float
    extras: bool  # XMR: jobs carry algo/height/seed_hash
    eth_variant: str = ""
    reject_rate: float = 0.01
    kick_rate: float = 0.0  # client.reconnect per hour
    seed: int = 0

    def job_id(self, job: Job, rng: random.Random) -> str:
        if self.job_id_kind == "hex":
            return format((self.seed + job.seq) & 0xFFFFFFFF, "x")
        if self.job_id_kind == "counter":
            return str(job.seq + 1)
        if self.job_id_kind == "b64":
            return base64.b64encode(rng.randbytes(rng.choice((6, 9, 12, 21)))).decode().rstrip("=")
        return rng.randbytes(8).hex()

    def latest_job(self, t: float) -> Job:
        lo, hi = 0, len(self.jobs) - 1
        while lo < hi:
            mid = (lo + hi + 1) // 2
            if self.jobs[mid].t <= t:
                lo = mid
            else:
                hi = mid - 1
        return self.jobs[lo]


def make_pool(
    coin: Coin, rng: random.Random, *, host: str, ip: str, port: int, duration: float, start: float = 0.0
) -> Pool:
    """Draw a pool's policy and its job timeline over ``[start - 1 block, start + duration]``."""
    r_lo, r_hi = coin.range("refresh", (20.0, 55.0))
    refresh = rng.uniform(r_lo, r_hi)
    tx_lo, tx_hi = coin.range("tx_count", (0.0, 0.0))
    jobs: list[Job] = []
    t = start - rng.uniform(0, coin.block_time)
    height = rng.randint(1_000_000, 3_000_000)
    next_block = t
    seq = 0
    last_block = t
    end = start + duration + 60.0
    while t <= end:
        if next_block <= t + refresh:
            t = next_block
            height += 1
            last_block = t
            clean = True
            next_block = t + rng.expovariate(1.0 / coin.block_time)
        else:
            t = t + refresh * rng.uniform(0.97, 1.03)
            clean = False
        frac = min(1.0, (t - last_block) / coin.block_time)
        tx = int(tx_lo + (tx_hi - tx_lo) * (0.15 + 0.85 * frac) * rng.uniform(0.6, 1.0))
        jobs.append(Job(t, clean, tx, seq, height))
        seq += 1
    eth_variant = ""
    if coin.dialect == "ethereum":
        eth_variant = rng.choice(list(coin.spec.get("variants", ["ethstratum1"])))
    return Pool(
        coin=coin,
        host=host,
        ip=ip,
        port=port,
        style=JsonStyle(
            compact=rng.random() < 0.6,
            jsonrpc=coin.dialect != "stratum1" or rng.random() < 0.2,
            id_null_push=rng.random() < 0.8,
        ),
        share_target=_share_target(coin, rng),
        retarget=rng.choice((30.0, 60.0, 90.0, 120.0)),
        refresh=refresh,
        jobs=jobs,
        job_id_kind=rng.choice(("hex", "counter", "b64", "rand")),
        fanout=rng.uniform(0.002, 0.4),
        extras=rng.random() < 0.7,
        eth_variant=eth_variant,
        reject_rate=rng.uniform(0.0, 0.03),
        kick_rate=rng.choice((0.0, 0.0, 0.05, 0.2)),
        seed=rng.getrandbits(32),
    )


def _share_target(coin: Coin, rng: random.Random) -> float:
    """The pool's vardiff target share interval: the coin's range if given, else 5-60 s."""
    if "share_target" in coin.spec:
        lo, hi = coin.range("share_target")
        return math.exp(rng.uniform(math.log(lo), math.log(hi)))
    return rng.choice((5.0, 8.0, 10.0, 15.0, 15.0, 20.0, 30.0, 30.0, 45.0, 60.0)) * rng.uniform(0.9, 1.1)


@dataclass
class MinerConfig:
    """Per-session miner settings (drawn by :func:`draw_miner`)."""

    miner_class: str
    agent: str
    wallet: str
    worker: str
    share_factor: float  # starting share rate / target rate
    keepalive: float | None
    reconnect_rate: float  # connection drops per hour
    bad_login: bool
    hashrate_report: float | None
    rate_multiplier: float = 1.0  # >1 for a proxy aggregating several miners
    rate_cap: float | None = None  # share rate / target rate at the pool's minimum difficulty


def _wallet(coin: Coin, rng: random.Random) -> str:
    t = coin.ticker
    if t == "xmr":
        alphabet = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
        return "4" + "".join(rng.choice(alphabet) for _ in range(94))
    if t in ("etc", "ethw"):
        return "0x" + rng.randbytes(20).hex()
    if t == "zec":
        return "t1" + base64.b32encode(rng.randbytes(20)).decode()[:33]
    if t == "rvn":
        return "R" + base64.b32encode(rng.randbytes(21)).decode()[:33]
    if t == "ltc":
        return "ltc1q" + rng.randbytes(20).hex()[:38]
    return "bc1q" + rng.randbytes(20).hex()[:38]


SLOW_CPU_SHARE = 0.35
"""Share of CPU miners too slow for the pool's minimum difficulty. Vardiff cannot go below
the pool's floor, so such a miner submits less often than the target interval while jobs
keep coming at the block/refresh cadence: a window of many job pushes and one or two
shares. CJ-Sniffer's real XMRig captures span 23 H/s to 2.2 kH/s (its labels.csv) and
their lowest-rate windows show this shape."""


def draw_miner(coin: Coin, rng: random.Random, miner_class: str | None = None) -> MinerConfig:
    classes = list(coin.spec.get("classes", ["cpu"]))
    cls = miner_class if miner_class in MINER_CLASSES else rng.choice(classes)
    lo, hi = _CLASS_FACTOR[cls]
    wallet = _wallet(coin, rng)
    worker = rng.choice(
        ("rig1", "worker", "w" + str(rng.randint(1, 99)), "x", "gpu" + str(rng.randint(0, 9)), "")
    )
    ka_range = coin.spec.get("keepalive")
    hr = coin.spec.get("hashrate_report")
    return MinerConfig(
        miner_class=cls,
        agent=rng.choice(list(coin.spec["agents"])),
        wallet=wallet,
        worker=worker,
        share_factor=math.exp(rng.uniform(math.log(lo), math.log(hi))),
        keepalive=rng.uniform(*ka_range) if ka_range and rng.random() < 0.6 else None,
        reconnect_rate=rng.choice((0.0, 0.05, 0.1, 0.3, 1.0)),
        bad_login=rng.random() < 0.03,
        hashrate_report=rng.uniform(*hr) if hr else None,
        rate_cap=math.exp(rng.uniform(math.log(0.08), math.log(0.7)))
        if cls == "cpu" and rng.random() < SLOW_CPU_SHARE
        else None,
    )


def _hex(rng: random.Random, nchars: int) -> str:
    return rng.randbytes((nchars + 1) // 2).hex()[:nchars]


@dataclass
class _State:
    req: int = 1
    job_id: str = ""
    job: Job | None = None
    difficulty: float = 1.0
    miner_id: str = ""
    extranonce1: str = ""
    shares: int = 0
    pending: list[tuple[float, int, bytes]] = field(default_factory=list)
    diff_queued: bool = False  # vardiff changed the difficulty; announce it with the next job

    def next_id(self) -> int:
        self.req += 1
        return self.req


class MiningScript:
    """Builds the connection scripts of one miner session against one pool."""

    def __init__(self, pool: Pool, miner: MinerConfig, rng: random.Random, rtt: float) -> None:
        self.pool, self.miner, self.rng, self.rtt = pool, miner, rng, rtt
        self.coin = pool.coin
        self.st = _State()
        d_lo, d_hi = self.coin.range("difficulty", (1.0, 1.0))
        self.st.difficulty = math.exp(rng.uniform(math.log(d_lo), math.log(d_hi)))
        self.factor = miner.share_factor * miner.rate_multiplier
        self.cap = miner.rate_cap * miner.rate_multiplier if miner.rate_cap else math.inf
        self.factor = min(self.factor, self.cap)
        # the miner's own JSON style: jansson-based miners (cpuminer, cgminer family) write
        # {"id": 1, ...} with spaces; xmrig and most GPU miners write compact JSON
        spaced = miner.agent.lower().startswith(("cpuminer", "cgminer", "bfgminer", "sgminer", "bmminer"))
        self.mstyle = JsonStyle(compact=not spaced, jsonrpc=pool.style.jsonrpc and not spaced)

    # -- helpers ------------------------------------------------------------------------

    def _reply_time(self, t: float) -> float:
        return t + self.rtt / 2 + self.rng.uniform(0.0003, 0.02)

    def _client_after(self, t: float) -> float:
        return t + self.rtt / 2 + self.rng.uniform(0.0005, 0.05)

    def connections(self, start: float, end: float) -> list[Conn]:
        """All connections of the session in ``[start, end]`` (reconnects, login failures)."""
        conns: list[Conn] = []
        t = start
        backoff = self.rng.uniform(5.0, 30.0)
        while t < end - 1.0:
            conn = Conn(start=t)
            if self.miner.bad_login:
                self._login_refused(conn, t)
                conns.append(conn)
                t = (conn.end or t) + backoff
                backoff = min(backoff * 1.5, 300.0)
                continue
            life = end - t
            rate = self.miner.reconnect_rate + self.pool.kick_rate
            drop = False
            if rate > 0:
                life_draw = self.rng.expovariate(rate / 3600.0)
                if life_draw < life:
                    life, drop = max(life_draw, 20.0), True
            conn_end = min(end, t + life)
            self._run(conn, t, conn_end)
            conn.end = conn_end
            if drop:
                how = self.rng.random()
                conn.closer, conn.rst = (1, False) if how < 0.4 else ((0, True) if how < 0.7 else (0, False))
                if conn.closer == 1 and self.coin.dialect != "monero" and self.pool.eth_variant != "ethproxy":
                    # a pool-initiated move: Stratum's client.reconnect to the same host, then close
                    push = wire.v1_reconnect(
                        self.pool.style,
                        self.pool.host or self.pool.ip,
                        self.pool.port,
                        self.rng.choice((0, 0, 5)),
                    )
                    conn.msgs.append((conn_end - self.rng.uniform(0.05, 1.0), 1, push))
            else:
                conn.closer = 0
            conns.append(conn)
            t = conn_end + self.rng.uniform(1.0, 30.0)
        return conns

    # -- connection body ------------------------------------------------------------------

    def _events(self, t0: float, end: float) -> list[tuple[float, str, Any]]:
        """Job pushes, shares, retargets and keepalives between login and ``end``."""
        rng = self.rng
        events: list[tuple[float, str, Any]] = []
        for job in self.pool.jobs:
            if t0 < job.t < end:
                events.append((job.t + self.pool.fanout * rng.uniform(0.7, 1.3), "job", job))
        target = self.pool.share_target
        factor = self.factor
        t = t0
        next_retarget = t0 + self.pool.retarget
        window_start, window_shares = t0, 0
        while True:
            rate = factor / target
            dt = rng.expovariate(rate) if rate > 0 else end
            if t + dt > next_retarget:
                # retarget: compare the observed rate with the target and step the difficulty
                t = next_retarget
                observed = window_shares / max(t - window_start, 1.0)
                ratio = observed * target
                if ratio < 0.7 or ratio > 1.3 or window_shares == 0:
                    step = min(max(ratio if window_shares else 0.5, 0.25), 4.0)
                    new = min(factor / step * rng.uniform(0.9, 1.1), self.cap)
                    if new != factor:  # a miner at the pool's minimum difficulty gets no retarget
                        events.append((t, "retarget", factor / new))  # difficulty step
                        factor = new
                window_start, window_shares = t, 0
                next_retarget = t + self.pool.retarget * rng.uniform(0.98, 1.02)
                if t >= end:
                    break
                continue
            t += dt
            if t >= end:
                break
            events.append((t, "share", None))
            window_shares += 1
        if self.miner.keepalive and self.coin.dialect == "monero":
            events.append((t0 + self.miner.keepalive, "keepalive_check", None))
        if self.miner.hashrate_report and self.pool.eth_variant == "ethproxy":
            k = t0 + self.miner.hashrate_report * rng.uniform(0.2, 1.0)
            while k < end:
                events.append((k, "hashrate", None))
                k += self.miner.hashrate_report * rng.uniform(0.97, 1.03)
        events.sort(key=lambda e: e[0])
        return events

    def _run(self, conn: Conn, t: float, end: float) -> None:
        dialect = self.coin.dialect
        if dialect == "monero":
            t0 = self._xmr_login(conn, t)
        elif dialect == "ethereum" and self.pool.eth_variant == "ethproxy":
            t0 = self._ethproxy_login(conn, t)
        else:
            t0 = self._v1_login(conn, t)
        last_client = t0
        events = self._events(t0, end)
        i = 0
        while i < len(events):
            when, kind, data = events[i]
            i += 1
            if kind == "keepalive_check":
                ka = self.miner.keepalive or 60.0
                if when - last_client >= ka * 0.999:
                    self._keepalive(conn, when)
                    last_client = when
                    events_next = when + ka
                else:
                    events_next = last_client + ka
                if events_next < end:
                    # insert keeping order
                    j = i
                    while j < len(events) and events[j][0] < events_next:
                        j += 1
                    events.insert(j, (events_next, "keepalive_check", None))
                continue
            if kind == "job":
                self._job(conn, when, data)
            elif kind == "share":
                if self.st.job is None:
                    continue
                self._share(conn, when)
                last_client = when
            elif kind == "retarget":
                self._retarget(conn, when, float(data))
            elif kind == "hashrate":
                self._hashrate(conn, when)
                last_client = when

    # -- dialect: Stratum V1 family --------------------------------------------------------

    def _worker(self) -> str:
        w = self.miner.wallet
        return f"{w}.{self.miner.worker}" if self.miner.worker else w

    def _v1_handshake(self, conn: Conn, t: float) -> float:
        """The miner's side of a V1 login in the coin's variant, up to ``mining.authorize``.

        Returns when the authorize request left; the caller adds the pool's answer. A
        refused login runs the same handshake as an accepted one: version rolling,
        the variant's subscribe and the coin's extranonce shapes are what the wire shows.
        """
        rng, style, st, coin = self.rng, self.pool.style, self.st, self.coin
        t = t + self.rtt * rng.uniform(1.0, 1.5)
        variant = coin.variant
        eth = coin.dialect == "ethereum"
        if not eth and rng.random() < float(coin.spec.get("version_rolling", 0.0)):
            params: list[Any] = [
                ["version-rolling"],
                {"version-rolling.mask": "1fffe000", "version-rolling.min-bit-count": 2},
            ]
            conn.msgs.append((t, 0, wire.v1_request(self.mstyle, st.next_id(), "mining.configure", params)))
            rt = self._reply_time(t)
            conn.msgs.append((rt, 1, wire.v1_configure_result(style, st.req)))
            t = self._client_after(rt)
        if eth:
            sub_params: list[Any] = [self.miner.agent, "EthereumStratum/1.0.0"]
        elif variant == "zcash":
            sub_params = [self.miner.agent, None, self.pool.host, str(self.pool.port)]
        else:
            sub_params = [self.miner.agent]
        conn.msgs.append((t, 0, wire.v1_request(self.mstyle, st.next_id(), "mining.subscribe", sub_params)))
        en_lo, en_hi = coin.range("extranonce1_hex" if not eth else "extranonce_hex", (8.0, 8.0))
        st.extranonce1 = _hex(rng, rng.randint(int(en_lo), int(en_hi)))
        sid = _hex(rng, rng.choice((8, 16, 32)))
        rt = self._reply_time(t)
        if eth:
            conn.msgs.append((rt, 1, wire.eth_nh_subscribe_result(style, st.req, sid, st.extranonce1)))
        elif variant == "zcash":
            conn.msgs.append((rt, 1, wire.zec_subscribe_result(style, st.req, st.extranonce1, sid)))
        else:
            e2_lo, e2_hi = coin.range("extranonce2_size", (4.0, 4.0))
            e2 = rng.randint(int(e2_lo), int(e2_hi))
            conn.msgs.append(
                (rt, 1, wire.v1_subscribe_result(style, st.req, st.extranonce1, e2, sid, rng.random() < 0.7))
            )
        t = self._client_after(rt)
        if rng.random() < 0.3:
            conn.msgs.append(
                (t, 0, wire.v1_request(self.mstyle, st.next_id(), "mining.extranonce.subscribe", []))
            )
            conn.msgs.append((self._reply_time(t), 1, wire.v1_result(style, st.req, True)))
            t += rng.uniform(0.0005, 0.01)
        password = rng.choice(("x", "c=LTC", "d=1024", "password"))
        authorize = wire.v1_request(self.mstyle, st.next_id(), "mining.authorize", [self._worker(), password])
        conn.msgs.append((t, 0, authorize))
        return t

    def _v1_login(self, conn: Conn, t: float) -> float:
        t = self._v1_handshake(conn, t)
        rt = self._reply_time(t)
        conn.msgs.append((rt, 1, wire.v1_result(self.pool.style, self.st.req, True)))
        self._send_difficulty(conn, rt + 0.0002)
        job = self.pool.latest_job(t)
        self._job(conn, rt + self.rng.uniform(0.0003, 0.003), job, force_clean=True)
        return rt

    def _target_hex(self) -> str:
        # 256-bit target for difficulty d: 0x00000000ffff... / d (enough precision for the size)
        value = int((0xFFFF << 208) / max(self.st.difficulty, 1e-9))
        return format(min(value, (1 << 256) - 1), "064x")

    def _send_difficulty(self, conn: Conn, t: float) -> None:
        style, coin = self.pool.style, self.coin
        if coin.spec.get("target_encoding") == "target_256":
            conn.msgs.append((t, 1, wire.set_target(style, self._target_hex())))
        else:
            d = self.st.difficulty
            value: float | int = round(d, self.rng.choice((0, 3, 6))) if d < 1e5 else int(d)
            if isinstance(value, float) and value.is_integer() and self.rng.random() < 0.5:
                value = int(value)
            conn.msgs.append((t, 1, wire.v1_set_difficulty(style, value)))

    def _v1_notify(self, job: Job, clean: bool) -> bytes:
        rng, coin, style = self.rng, self.coin, self.pool.style
        jid = self.st.job_id
        if coin.dialect == "ethereum":
            return wire.eth_nh_notify(style, jid, _hex(rng, 64), _hex(rng, 64), clean)
        if coin.variant == "zcash":
            return wire.zec_notify(
                style,
                [
                    jid,
                    "04000000",
                    _hex(rng, 64),
                    _hex(rng, 64),
                    _hex(rng, 64),
                    _hex(rng, 8),
                    _hex(rng, 8),
                    clean,
                ],
            )
        if coin.variant == "kawpow":
            params: list[Any] = [
                jid,
                _hex(rng, 64),
                _hex(rng, 64),
                self._target_hex(),
                clean,
                job.height,
                _hex(rng, 8),
            ]
        else:
            branches = btc.merkle_branch_count(job.tx_count)
            c1_lo, c1_hi = coin.range("coinb1_hex", (100.0, 150.0))
            c2_lo, c2_hi = coin.range("coinb2_hex", (100.0, 200.0))
            return wire.v1_notify(
                style,
                jid,
                _hex(rng, 64),
                _hex(rng, 2 * (rng.randint(int(c1_lo), int(c1_hi)) // 2)),
                _hex(rng, 2 * (rng.randint(int(c2_lo), int(c2_hi)) // 2)),
                [_hex(rng, 64) for _ in range(branches)],
                rng.choice(("20000000", "20000004", "00000002", "20800000")),
                _hex(rng, 8),
                format(int(_EPOCH_TS + job.t), "08x"),
                clean,
            )
        return wire.v1_push(style, "mining.notify", params)

    def _v1_submit(self) -> bytes:
        rng, coin, st = self.rng, self.coin, self.st
        if coin.dialect == "ethereum":
            n_hex = 16 - len(st.extranonce1)
            params: list[Any] = [self._worker(), st.job_id, _hex(rng, n_hex)]
        elif coin.variant == "zcash":
            params = [self._worker(), st.job_id, _hex(rng, 8), _hex(rng, 56), "fd4005" + _hex(rng, 2688)]
        elif coin.variant == "kawpow":
            params = [
                self._worker(),
                st.job_id,
                "0x" + _hex(rng, 16),
                "0x" + _hex(rng, 64),
                "0x" + _hex(rng, 64),
            ]
        else:
            params = [self._worker(), st.job_id, _hex(rng, 8), _hex(rng, 8), _hex(rng, 8)]
            if rng.random() < 0.5 and coin.ticker == "btc":
                params.append(_hex(rng, 8))
        return wire.v1_request(self.mstyle, st.next_id(), "mining.submit", params)

    # -- dialect: Monero ----------------------------------------------------------------------

    def _xmr_job(self, job: Job) -> xmr_dialect.Job:
        rng, coin, pool = self.rng, self.coin, self.pool
        blob = wire.xmr_blob(rng, job.tx_count, int(_EPOCH_TS + job.t))
        target = wire.xmr_target(int(max(self.st.difficulty, 1.0)))
        extra: dict[str, Any] = {}
        if pool.extras:
            extra = {"algo": coin.spec.get("algorithm", "rx/0"), "height": job.height}
            if rng.random() < float(coin.spec.get("seed_hash", 0.0)):
                extra["seed_hash"] = _hex(rng, 64)
        return wire.xmr_job(blob, self.st.job_id, target, self.st.miner_id, extra)

    def _xmr_login_request(self, conn: Conn, t: float) -> float:
        """The miner's ``login`` (accepted or refused alike); returns when it left."""
        rng = self.rng
        t = t + self.rtt * rng.uniform(1.0, 1.5)
        algos = ["rx/0", "cn/r", "cn/2", "rx/wow"][: rng.randint(0, 4)]
        password = rng.choice(("x", self.miner.worker or "x", "rig01:me@example.org", ""))
        conn.msgs.append(
            (t, 0, wire.xmr_login(self.mstyle, 1, self._worker(), password, self.miner.agent, algos))
        )
        return t

    def _xmr_login(self, conn: Conn, t: float) -> float:
        rng, style, st = self.rng, self.pool.style, self.st
        t = self._xmr_login_request(conn, t)
        st.miner_id = rng.choice(
            (
                _hex(rng, 8)
                + "-"
                + _hex(rng, 4)
                + "-"
                + _hex(rng, 4)
                + "-"
                + _hex(rng, 4)
                + "-"
                + _hex(rng, 12),
                str(rng.randint(10**5, 10**15)),
                str(rng.randint(10**3, 10**6)),
            )
        )
        job = self.pool.latest_job(t)
        st.job, st.job_id = job, self.pool.job_id(job, rng)
        rt = self._reply_time(t)
        ext = ["algo", "nicehash", "connect", "tls", "keepalive"][: rng.choice((0, 2, 5))]
        conn.msgs.append((rt, 1, wire.xmr_login_result(style, 1, st.miner_id, self._xmr_job(job), ext)))
        return rt

    # -- dialect: eth-proxy -------------------------------------------------------------------

    def _ethproxy_login_request(self, conn: Conn, t: float) -> float:
        """The miner's ``eth_submitLogin`` (accepted or refused alike); returns when it left."""
        t = t + self.rtt * self.rng.uniform(1.0, 1.5)
        login = wire.eth_proxy_request(
            self.mstyle, 1, "eth_submitLogin", [self.miner.wallet, "x"], self._ethproxy_worker()
        )
        conn.msgs.append((t, 0, login))
        return t

    def _ethproxy_worker(self) -> str:
        return self.miner.worker or "eth1.0"

    def _ethproxy_login(self, conn: Conn, t: float) -> float:
        rng, style, st = self.rng, self.pool.style, self.st
        t = self._ethproxy_login_request(conn, t)
        worker = self._ethproxy_worker()
        rt = self._reply_time(t)
        conn.msgs.append((rt, 1, wire.eth_proxy_result(style, 1, True)))
        t = self._client_after(rt)
        conn.msgs.append((t, 0, wire.eth_proxy_request(self.mstyle, 2, "eth_getWork", [], worker)))
        job = self.pool.latest_job(t)
        st.job = job
        st.job_id = "0x" + _hex(rng, 64)
        rt = self._reply_time(t)
        conn.msgs.append((rt, 1, wire.eth_proxy_result(style, 2, self._eth_work())))
        st.req = 3
        return rt

    def _eth_work(self) -> list[str]:
        rng = self.rng
        return [self.st.job_id, "0x" + _hex(rng, 64), "0x" + self._target_hex()]

    # -- generic event handlers ---------------------------------------------------------------

    def _job(self, conn: Conn, t: float, job: Job, force_clean: bool = False) -> None:
        st, rng, style = self.st, self.rng, self.pool.style
        st.job = job
        if self.coin.dialect == "monero":
            st.job_id = self.pool.job_id(job, rng)
            conn.msgs.append((t, 1, wire.xmr_job_push(style, self._xmr_job(job))))
        elif self.pool.eth_variant == "ethproxy":
            st.job_id = "0x" + _hex(rng, 64)
            conn.msgs.append((t, 1, wire.eth_proxy_result(style, 0, self._eth_work())))
        else:
            st.job_id = (
                self.pool.job_id(job, rng)
                if self.coin.dialect != "ethereum"
                else _hex(rng, rng.choice((8, 16, 64)))
            )
            if st.diff_queued:
                self._send_difficulty(conn, t)
                t += rng.uniform(0.00005, 0.0005)
            conn.msgs.append((t, 1, self._v1_notify(job, job.clean or force_clean)))
        st.diff_queued = False

    def _share(self, conn: Conn, t: float) -> None:
        st, rng, style, coin = self.st, self.rng, self.pool.style, self.coin
        st.shares += 1
        reject = rng.random() < self.pool.reject_rate
        if coin.dialect == "monero":
            rid = st.next_id()
            conn.msgs.append(
                (t, 0, wire.xmr_submit(self.mstyle, rid, st.miner_id, st.job_id, _hex(rng, 8), _hex(rng, 64)))
            )
            rt = self._reply_time(t)
            msg = rng.choice(("Low difficulty share", "Block expired", "Duplicate share", "Invalid job id"))
            conn.msgs.append((rt, 1, wire.xmr_submit_result(style, rid, not reject, msg)))
        elif self.pool.eth_variant == "ethproxy":
            rid = st.next_id()
            worker = self.miner.worker or "eth1.0"
            params = ["0x" + _hex(rng, 16), st.job_id, "0x" + _hex(rng, 64)]
            conn.msgs.append(
                (t, 0, wire.eth_proxy_request(self.mstyle, rid, "eth_submitWork", params, worker))
            )
            conn.msgs.append((self._reply_time(t), 1, wire.eth_proxy_result(style, rid, not reject)))
        else:
            conn.msgs.append((t, 0, self._v1_submit()))
            rid = st.req
            rt = self._reply_time(t)
            if reject:
                err = rng.choice(
                    (
                        [21, "Job not found", None],
                        [23, "Low difficulty share", None],
                        [22, "Duplicate share", None],
                    )
                )
                conn.msgs.append(
                    (rt, 1, wire.v1_result(style, rid, None if rng.random() < 0.5 else False, err))
                )
            else:
                conn.msgs.append((rt, 1, wire.v1_result(style, rid, True)))

    def _retarget(self, conn: Conn, t: float, step: float) -> None:
        """Queue the new difficulty for the next job (see the module docstring)."""
        del conn, t
        self.st.difficulty *= step
        self.st.diff_queued = True

    def _keepalive(self, conn: Conn, t: float) -> None:
        st, style = self.st, self.pool.style
        rid = st.next_id()
        conn.msgs.append((t, 0, wire.xmr_keepalived(self.mstyle, rid, st.miner_id)))
        conn.msgs.append((self._reply_time(t), 1, wire.xmr_keepalived_result(style, rid)))

    def _hashrate(self, conn: Conn, t: float) -> None:
        st, rng, style = self.st, self.rng, self.pool.style
        rid = st.next_id()
        rate = "0x" + format(rng.randint(10**7, 5 * 10**8), "x")
        worker = self.miner.worker or "eth1.0"
        conn.msgs.append(
            (
                t,
                0,
                wire.eth_proxy_request(
                    style, rid, "eth_submitHashrate", [rate, "0x" + _hex(rng, 64)], worker
                ),
            )
        )
        conn.msgs.append((self._reply_time(t), 1, wire.eth_proxy_result(style, rid, True)))

    def _login_refused(self, conn: Conn, t: float) -> None:
        """A login the pool refuses (bad wallet or worker): the coin's own handshake, then
        the dialect's error, then the connection closes (the caller reconnects with back-off)."""
        rng, style = self.rng, self.pool.style
        if self.coin.dialect == "monero":
            t = self._xmr_login_request(conn, t)
            msg = rng.choice(
                ("Invalid payment address provided", "Unauthenticated", "Invalid address used for login")
            )
            rt = self._reply_time(t)
            conn.msgs.append((rt, 1, wire.xmr_login_error(style, 1, msg)))
        elif self.pool.eth_variant == "ethproxy":
            t = self._ethproxy_login_request(conn, t)
            rt = self._reply_time(t)
            conn.msgs.append((rt, 1, wire.eth_proxy_result(style, 1, False)))
        else:
            t = self._v1_handshake(conn, t)
            rt = self._reply_time(t)
            conn.msgs.append(
                (rt, 1, wire.v1_result(style, self.st.req, None, [24, "Unauthorized worker", None]))
            )
        conn.end = rt + rng.uniform(0.001, 0.5)
        conn.closer = rng.choice((0, 1))
