"""Scenario assembly: sessions -> flows -> one pcapng plus a labels CSV, deterministic per seed.

Why this shape: a *world* (address plan, pools with their shared job timelines, the
throwaway CA) is drawn once from the seed; then a list of :class:`SessionSpec` is
rendered, each session with its own generator seeded from ``(seed, index)``, so adding a
session never perturbs the others and the same seed always yields the same bytes. The
clock is simulated: a session's packets are computed, never waited for.

``generate`` is the CLI's entry (``minerscope lab generate``); the bundled sample
(:mod:`minerscope.lab.sample`) builds its own spec list and calls :func:`render`.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import math
import random
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from minerscope.errors import InputError
from minerscope.lab import dns
from minerscope.lab.benign import BENIGN_KINDS, BenignPlan, retransport
from minerscope.lab.coins import Coin, load_coins
from minerscope.lab.labels import LABEL_BENIGN, LABEL_MINER, LabelRow, write_labels
from minerscope.lab.mining import MinerConfig, MiningScript, Pool, draw_miner, make_pool
from minerscope.lab.mining_alt import browser_script, solo_script
from minerscope.lab.netsim import NetProfile, Packet, TcpFlow, random_profile
from minerscope.lab.session import Conn, FlowLabel, Realized, realize_tcp, realize_udp
from minerscope.lab.tls import CertStore

EPOCH = 1_700_000_000.0
"""Simulated time 0 (2023-11-14 22:13:20 UTC); a seed-derived offset of up to a year is added."""

ALL_COINS = ("btc", "ltc", "xmr", "etc", "ethw", "rvn", "zec")
RESOLVER_V6 = "fd00:20::53"


@dataclass
class SessionSpec:
    """One session to render. ``kind`` is ``mining`` or ``benign``."""

    kind: str
    start: float
    end: float
    coin: str = ""
    scenario: str = "pool"  # mining: pool / solo / browser / proxy
    transport: str = ""  # mining: tcp / tls1.2 / tls1.3 ("" = draw)
    benign_kind: str = ""
    pool_host: str = ""  # "" = draw one of the coin's pools
    miner_class: str | None = None
    dns: bool | None = None  # None = draw
    sni: bool | None = None  # None = draw
    port: int | None = None
    client_ip: str = ""


@dataclass
class LabConfig:
    seed: int = 1
    hours: float = 1.0
    sessions: int = 100
    coins: tuple[str, ...] = ALL_COINS
    benign_ratio: float = 0.5
    tls_ratio: float = 0.6
    ipv6_ratio: float = 0.1
    vlan_ratio: float = 0.1
    client_prefix: str = "127.10"
    server_prefix: str = "127.20"
    resolver: str = "127.20.0.53"
    loopback_only: bool = False  # True: every address in 127.0.0.0/8 (no IPv6)
    web_mix: tuple[float, float, float] | None = None
    """TLS 1.3 / TLS 1.2 / plain HTTP shares of web and API sessions; None keeps each
    generator's own draw (so existing seeds give the same bytes). See
    :data:`minerscope.lab.benign.WIDE_WEB_MIX`."""


@dataclass
class GenerateResult:
    pcap: Path
    labels: Path
    flows: int
    packets: int
    bytes: int
    simulated_s: float
    wall_s: float


class World:
    """Everything shared by the sessions of one capture, drawn from the seed."""

    def __init__(self, cfg: LabConfig, coins: dict[str, Coin] | None = None) -> None:
        self.cfg = cfg
        self.rng = random.Random(f"world:{cfg.seed}")
        self.coins = coins or load_coins()
        for c in cfg.coins:
            if c not in self.coins:
                raise InputError(f"unknown coin {c!r}; the registry has: {', '.join(sorted(self.coins))}")
        self.certs = CertStore(cfg.seed)
        self.duration = cfg.hours * 3600.0
        self.epoch = EPOCH + self.rng.randrange(0, 365 * 86400)
        self.pools: dict[str, list[Pool]] = {}
        self._server_ips: dict[str, str] = {}
        self._next_server = 1
        self._next_client = 1
        self._ports: dict[str, int] = {}
        self._clients: list[str] = []
        self._client_v6: list[str] = []
        self.sessions_rendered = 0

    def close(self) -> None:
        """Remove the throwaway certificate files."""
        self.certs.close()

    def __enter__(self) -> World:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- addresses ------------------------------------------------------------------------

    def _v4(self, prefix: str, n: int) -> str:
        return f"{prefix}.{n // 250 % 250}.{n % 250 + 1}"

    def server_ip(self, name: str, v6: bool = False) -> str:
        key = f"{name}|{v6}"
        ip = self._server_ips.get(key)
        while ip is None or ip in (self.cfg.resolver, RESOLVER_V6):  # never hand out the resolver's address
            n = self._next_server
            self._next_server += 1
            ip = f"fd00:20::{n:x}" if v6 else self._v4(self.cfg.server_prefix, n)
        self._server_ips[key] = ip
        return ip

    def client_ip(self, rng: random.Random, v6: bool = False) -> str:
        # NAT-like reuse: about one address per three sessions; some addresses are busy NATs
        pool = self._client_v6 if v6 else self._clients
        if pool and rng.random() < 0.65:
            return (
                pool[min(int(rng.expovariate(0.3)), len(pool) - 1)]
                if rng.random() < 0.3
                else rng.choice(pool)
            )
        n = self._next_client
        self._next_client += 1
        ip = f"fd00:10::{n:x}" if v6 else self._v4(self.cfg.client_prefix, n)
        pool.append(ip)
        return ip

    def ephemeral_port(self, ip: str, rng: random.Random) -> int:
        port = self._ports.get(ip)
        if port is None:
            port = rng.choice((rng.randint(32768, 60000), rng.randint(49152, 64000)))
        port += rng.choice((1, 1, 1, 2, 3, 7))
        if port > 65000:
            port = 32768 + port % 1000
        self._ports[ip] = port
        return port

    # -- pools ----------------------------------------------------------------------------

    def pool(self, coin: str, rng: random.Random, host: str = "") -> Pool:
        pools = self.pools.setdefault(coin, [])
        if host:
            for p in pools:
                if p.host == host:
                    return p
        elif pools and (len(pools) >= 3 or rng.random() < 0.6):
            return rng.choice(pools)
        c = self.coins[coin]
        name = (
            host
            or f"{coin}-{rng.choice(('eu', 'us', 'asia', 'de', 'fi'))}{len(pools) + 1}.{rng.choice(('pool', 'mine', 'hash', 'stratum'))}-lab.example"
        )
        prng = random.Random(f"pool:{self.cfg.seed}:{name}")
        p = make_pool(
            c,
            prng,
            host=name,
            ip=self.server_ip(name),
            port=int(prng.choice(c.spec["ports"])),
            duration=self.duration,
        )
        pools.append(p)
        return p


# -- session rendering ------------------------------------------------------------------------


def _dialect_name(pool: Pool) -> str:
    coin = pool.coin
    if coin.dialect == "ethereum":
        return pool.eth_variant or "ethstratum1"
    if coin.dialect == "stratum1" and coin.variant:
        return f"stratum1-{coin.variant}"
    return coin.dialect


def _dns_lookup(
    world: World, rng: random.Random, client: str, name: str, server: str, t: float, sid: str, net: NetProfile
) -> tuple[Realized, float]:
    v6 = ":" in client
    resolver = world.cfg.resolver if not v6 else RESOLVER_V6
    txid = rng.getrandbits(16)
    qtype = 28 if ":" in server else 1
    resolve_net = dataclasses.replace(net, server_delay=rng.uniform(0.0003, 0.003), loss=0.0)
    answer_at = t + resolve_net.owd + rng.uniform(0.0005, 0.08)
    msgs = [
        (t, 0, dns.query(txid, name, qtype)),
        (answer_at, 1, dns.response(txid, name, [server], rng.choice((30, 60, 300, 600)), qtype)),
    ]
    meta = FlowLabel(LABEL_BENIGN, "", "dns", "udp", "dns", sid, name)
    r = realize_udp(
        msgs,
        rng=rng,
        net=resolve_net,
        client=(client, world.ephemeral_port(client, rng)),
        server=(resolver, 53),
        meta=meta,
    )
    return r, answer_at + resolve_net.owd + rng.uniform(0.0005, 0.01)


def render_session(world: World, spec: SessionSpec, index: int) -> list[Realized]:
    """Render one session into realised flows (its DNS lookup, its connections)."""
    cfg = world.cfg
    rng = random.Random(f"session:{cfg.seed}:{index}")
    sid = f"s{index:05d}"
    v6 = (not cfg.loopback_only) and rng.random() < cfg.ipv6_ratio
    client = spec.client_ip or world.client_ip(rng, v6)
    v6 = ":" in client
    net = random_profile(rng, ipv6=v6)
    if not cfg.loopback_only and rng.random() < cfg.vlan_ratio:
        net.vlan = rng.choice((10, 20, 100, 212, 3001))
    flows: list[Realized] = []
    start = spec.start
    if spec.kind == "benign":
        gen_weight = BENIGN_KINDS[spec.benign_kind]
        plan: BenignPlan = gen_weight[1](rng, net.rtt, start + 0.05, spec.end)
        if cfg.web_mix is not None:
            plan = retransport(plan, random.Random(f"web:{cfg.seed}:{index}"), cfg.web_mix)
        port = spec.port or plan.port
        server = world.server_ip(plan.server_name or f"{plan.scenario}-{index}", v6)
        if plan.server_name and (spec.dns if spec.dns is not None else rng.random() < 0.7):
            r, _ = _dns_lookup(world, rng, client, plan.server_name, server, start, sid, net)
            flows.append(r)
        meta = FlowLabel(
            LABEL_BENIGN,
            "",
            plan.scenario.split("-")[0],
            plan.transport,
            plan.scenario,
            sid,
            plan.server_name,
        )
        cport = world.ephemeral_port(client, rng)
        if plan.transport == "udp":
            flows.append(
                realize_udp(
                    plan.udp, rng=rng, net=net, client=(client, cport), server=(server, port), meta=meta
                )
            )
        else:
            assert plan.conn is not None
            sni_on = spec.sni if spec.sni is not None else rng.random() < 0.95
            flows.append(
                realize_tcp(
                    plan.conn,
                    plan.transport,
                    rng=rng,
                    net=net,
                    client=(client, cport),
                    server=(server, port),
                    meta=meta,
                    certs=world.certs,
                    sni=plan.server_name if sni_on else "",
                    alpn=plan.alpn,
                )
            )
        return flows

    coin = world.coins[spec.coin]
    pool = world.pool(spec.coin, rng, spec.pool_host)
    scenario = spec.scenario
    transport = spec.transport
    if scenario == "browser":
        transport = transport or rng.choice(("wss1.3", "wss1.3", "wss1.2", "ws"))
    elif scenario == "solo":
        transport = "tcp"
    elif not transport:
        transport = rng.choice(("tls1.3", "tls1.3", "tls1.2")) if rng.random() < cfg.tls_ratio else "tcp"
    tls = transport != "tcp" and transport != "ws"
    if scenario == "solo":
        # the miner talks to its own node: a LAN or datacentre host on the daemon port
        port = spec.port or int(coin.spec["solo"]["port"])
        node = world.server_ip(f"node-{spec.coin}-{index}", v6)
        net = random_profile(rng, ipv6=v6, lan_only=True)
        pool_for = dataclasses.replace(pool, host=node, ip=node, port=port)
    else:
        if spec.port:
            port = spec.port
        elif tls:
            port = int(rng.choice(coin.spec["tls_ports"]))
        elif scenario == "browser":
            port = rng.choice((443, 80, 8080, 8443, 8181))
        else:
            port = pool.port
        pool_for = dataclasses.replace(pool, port=port, ip=world.server_ip(pool.host, v6))
    miner = draw_miner(coin, rng, spec.miner_class)
    dialect = _dialect_name(pool_for)
    if scenario == "browser":
        dialect = "browser-ws"
    elif scenario == "solo":
        dialect = "http-jsonrpc"
    t = start
    name = pool_for.host if scenario != "solo" else ""
    if name and (spec.dns if spec.dns is not None else rng.random() < 0.85):
        r, t = _dns_lookup(world, rng, client, name, pool_for.ip, t, sid, net)
        flows.append(r)
    sni_on = bool(name) and (spec.sni if spec.sni is not None else rng.random() < 0.85)

    def play(
        conns: Iterable[Conn],
        label_scenario: str,
        cli: str,
        srv: tuple[str, int],
        pnet: NetProfile,
        klass: str,
    ) -> None:
        for conn in conns:
            down = label_scenario == "proxy-downstream"
            meta = FlowLabel(
                LABEL_MINER,
                spec.coin,
                dialect,
                "tcp" if down else transport,
                label_scenario,
                sid,
                "" if down or not sni_on else name,
                klass,
            )
            flows.append(
                realize_tcp(
                    conn,
                    "tcp" if down else transport,
                    rng=rng,
                    net=pnet,
                    client=(cli, world.ephemeral_port(cli, rng)),
                    server=srv,
                    meta=meta,
                    certs=world.certs,
                    sni="" if down or not sni_on else name,
                    alpn=("http/1.1",) if scenario == "browser" and rng.random() < 0.8 else (),
                )
            )
        world.sessions_rendered += 1

    if scenario == "solo":
        play(
            [solo_script(pool_for, rng, net.rtt, t, spec.end)],
            "solo",
            client,
            (pool_for.ip, pool_for.port),
            net,
            miner.miner_class,
        )
    elif scenario == "browser":
        play(
            [browser_script(pool_for, rng, net.rtt, t, spec.end)],
            "browser",
            client,
            (pool_for.ip, pool_for.port),
            net,
            "cpu",
        )
    elif scenario == "proxy":
        k = rng.randint(2, 8)
        up_miner = dataclasses.replace(
            miner, rate_multiplier=float(k), agent=_proxy_agent(coin, rng), bad_login=False
        )
        script = MiningScript(pool_for, up_miner, rng, net.rtt)
        play(
            script.connections(t, spec.end),
            "proxy-upstream",
            client,
            (pool_for.ip, pool_for.port),
            net,
            "proxy",
        )
        proxy_ip = client
        lan = random_profile(rng, ipv6=v6, lan_only=True)
        lan.vlan = net.vlan
        down_pool = dataclasses.replace(
            pool_for, host="", ip=proxy_ip, port=rng.choice((3333, 3334, 4444, 13333)), fanout=0.002
        )
        for _ in range(min(k, 3)):
            m = draw_miner(coin, rng, spec.miner_class)
            m.bad_login = False
            dscript = MiningScript(down_pool, m, rng, lan.rtt)
            cli = world.client_ip(rng, v6)
            if cli == proxy_ip:
                continue
            play(
                dscript.connections(t + rng.uniform(0.5, 30), spec.end),
                "proxy-downstream",
                cli,
                (proxy_ip, down_pool.port),
                lan,
                m.miner_class,
            )
    else:
        script = MiningScript(pool_for, miner, rng, net.rtt)
        label_scenario = "login-refused" if miner.bad_login else "pool"
        play(
            script.connections(t, spec.end),
            label_scenario,
            client,
            (pool_for.ip, pool_for.port),
            net,
            miner.miner_class,
        )
        if miner.agent.startswith("XMRig/") and not miner.bad_login:
            flows.extend(_donations(world, rng, spec, sid, client, net, miner, transport, t))
    return flows


DONATE_HOST = "donate.v2.xmrig-lab.example"
DONATE_LEVEL = 1
"""XMRig's default ``donate-level``: 1 minute in every 100 minutes of mining goes to the
developers' pool over a *separate* connection (xmrig/xmrig README, ``--donate-level``).
Each is a short, complete pool session (login, a job or two, a few shares, close), the
kind of brief mining flow that otherwise only reconnects produce."""


def _donations(
    world: World,
    rng: random.Random,
    spec: SessionSpec,
    sid: str,
    client: str,
    net: NetProfile,
    miner: MinerConfig,
    transport: str,
    t: float,
) -> list[Realized]:
    """XMRig's donation connections during ``[t, spec.end]`` (first after 0.5-1.5 idle periods)."""
    idle = (100 - DONATE_LEVEL) * 60.0
    donate = DONATE_LEVEL * 60.0
    tls = transport not in ("tcp", "ws")
    dpool = world.pool("xmr", rng, DONATE_HOST)
    port = 443 if tls else 3333
    dpool = dataclasses.replace(dpool, port=port, ip=world.server_ip(DONATE_HOST, ":" in client))
    dminer = dataclasses.replace(miner, reconnect_rate=0.0, keepalive=None, bad_login=False)
    out: list[Realized] = []
    at = t + idle * rng.uniform(0.5, 1.5)
    while at + donate < spec.end:
        for conn in MiningScript(dpool, dminer, rng, net.rtt).connections(
            at, at + donate * rng.uniform(0.98, 1.05)
        ):
            meta = FlowLabel(
                LABEL_MINER, "xmr", "monero", transport, "donate", sid, DONATE_HOST, miner.miner_class
            )
            out.append(
                realize_tcp(
                    conn,
                    transport,
                    rng=rng,
                    net=net,
                    client=(client, world.ephemeral_port(client, rng)),
                    server=(dpool.ip, port),
                    meta=meta,
                    certs=world.certs,
                    sni=DONATE_HOST if tls else "",
                )
            )
        at += donate + idle
    return out


def _proxy_agent(coin: Coin, rng: random.Random) -> str:
    if coin.dialect == "monero":
        return rng.choice(("xmrig-proxy/6.21.1 (Linux x86_64) libuv/1.44.2 gcc/12.2.0", "xmrig-proxy/6.26.0"))
    return rng.choice(("stratum-mining-proxy/1.5.2", "braiins-farm-proxy/23.04", "ccminer-proxy/0.3"))


def plan_sessions(cfg: LabConfig) -> list[SessionSpec]:
    """Draw ``cfg.sessions`` concurrent slots over ``cfg.hours``; each slot runs sessions back to back."""
    rng = random.Random(f"plan:{cfg.seed}")
    duration = cfg.hours * 3600.0
    kinds = list(BENIGN_KINDS)
    weights = [BENIGN_KINDS[k][0] for k in kinds]
    specs: list[SessionSpec] = []
    for _slot in range(cfg.sessions):
        t = rng.uniform(0.0, min(60.0, duration * 0.05))
        mining_slot = rng.random() >= cfg.benign_ratio
        while t < duration - 1.0:
            if mining_slot and cfg.coins:
                coin = rng.choice(cfg.coins)
                r = rng.random()
                scenario = "pool" if r < 0.76 else "proxy" if r < 0.84 else "solo" if r < 0.92 else "browser"
                if scenario == "browser" and coin != "xmr":
                    scenario = "pool"
                length = duration - t if rng.random() < 0.8 else rng.uniform(0.2, 1.0) * (duration - t)
                specs.append(SessionSpec("mining", t, t + length, coin=coin, scenario=scenario))
            else:
                kind = rng.choices(kinds, weights)[0]
                lo, hi = BENIGN_KINDS[kind][2]
                length = min(rng.uniform(lo, hi), duration - t)
                specs.append(SessionSpec("benign", t, t + length, benign_kind=kind))
            t = specs[-1].end + rng.uniform(1.0, 120.0)
    return specs


def render(world: World, specs: list[SessionSpec]) -> tuple[list[Packet], list[LabelRow]]:
    """Render every session, merge their packets in time order, and label every flow."""
    realized: list[Realized] = []
    for index, spec in enumerate(specs):
        realized.extend(render_session(world, spec, index))
    base = int(world.epoch * 1e9)
    stamped: list[tuple[int, int, bytes]] = []
    rows: list[LabelRow] = []
    realized.sort(key=lambda r: r.flow.packets[0][0] if r.flow.packets else 0)
    for fid, r in enumerate(realized):
        pk = r.flow.packets
        if not pk:
            continue
        stamped.extend((ts + base, fid, frame) for ts, frame in pk)
        client, server = r.flow.client, r.flow.server
        m = r.meta
        rows.append(
            LabelRow(
                flow_id=len(rows),
                proto="tcp" if isinstance(r.flow, TcpFlow) else "udp",
                client_ip=str(ipaddress.ip_address(client[0])),
                client_port=client[1],
                server_ip=str(ipaddress.ip_address(server[0])),
                server_port=server[1],
                ip_version=r.flow.ip_version,
                vlan=r.flow.net.vlan,
                label=m.label,
                coin=m.coin,
                dialect=m.dialect,
                transport=m.transport,
                scenario=m.scenario,
                session_id=m.session_id,
                miner_class=m.miner_class,
                server_name=m.server_name,
                start_ns=min(ts for ts, _ in pk) + base,
                end_ns=max(ts for ts, _ in pk) + base,
                packets=len(pk),
                bytes=sum(len(f) for _, f in pk),
            )
        )
    stamped.sort(key=lambda p: (p[0], p[1]))
    return [(ts, frame) for ts, _fid, frame in stamped], rows


def write_capture(path: Path, packets: list[Packet]) -> None:
    """Write Ethernet frames to a pcapng file with the project writer."""
    from minerscope.capture.writer import PcapngWriter

    with PcapngWriter(path) as writer:
        iface = writer.add_interface(1, name="campus-gw0", snaplen=262144)
        for ts, frame in packets:
            writer.write_packet(iface, ts, frame)


def generate(cfg: LabConfig, out_dir: Path, name: str = "lab") -> GenerateResult:
    """Generate ``cfg`` into ``out_dir/<name>.pcapng`` and ``out_dir/<name>.labels.csv``.

    Raises:
        InputError: a bad setting, a ``name`` that is not a plain file name, or an output
            path that cannot be written (named).
    """
    if not (math.isfinite(cfg.hours) and cfg.hours > 0) or cfg.sessions <= 0:
        raise InputError("--hours and --sessions must be positive")
    if not 0.0 <= cfg.benign_ratio <= 1.0:
        raise InputError(f"--benign-ratio must be within [0, 1], got {cfg.benign_ratio}")
    from minerscope.lab.output import check_name, output_dir, writing

    check_name(name)
    output_dir(out_dir)  # before the rendering, which takes long
    started = time.perf_counter()
    world = World(cfg)
    try:
        packets, rows = render(world, plan_sessions(cfg))
    finally:
        world.certs.close()
    pcap = out_dir / f"{name}.pcapng"
    labels = out_dir / f"{name}.labels.csv"
    with writing(pcap):
        write_capture(pcap, packets)
    with writing(labels):
        write_labels(labels, rows)
    return GenerateResult(
        pcap=pcap,
        labels=labels,
        flows=len(rows),
        packets=len(packets),
        bytes=sum(len(f) for _, f in packets),
        simulated_s=world.duration,
        wall_s=time.perf_counter() - started,
    )


__all__ = [
    "ALL_COINS",
    "GenerateResult",
    "LabConfig",
    "SessionSpec",
    "World",
    "generate",
    "plan_sessions",
    "render",
    "render_session",
    "write_capture",
]
