"""Traffic-lab generation speed: simulated session-hours per wall-clock second, on one core.

Target (issue "Traffic lab"): 1 hour of simulated traffic for 100 concurrent sessions in
under a minute. Run ``.venv/bin/python -m bench.bench_lab`` (full scale) or pass
``--hours``/``--sessions`` to scale down on a busy machine; the figure printed is
extrapolated linearly to 100 sessions x 1 h, and the scale actually run is printed too.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from minerscope.lab.generate import LabConfig, generate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--hours", type=float, default=1.0)
    parser.add_argument("--sessions", type=int, default=100)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--compare", type=Path, default=None, help="datasets folder: print lab-vs-real distributions"
    )
    args = parser.parse_args()
    if args.compare is not None:
        compare(args.compare, args.seed)
        return
    with tempfile.TemporaryDirectory() as tmp:
        started = time.perf_counter()
        cpu0 = time.process_time()
        result = generate(
            LabConfig(seed=args.seed, hours=args.hours, sessions=args.sessions), Path(tmp), "bench"
        )
        wall = time.perf_counter() - started
        cpu = time.process_time() - cpu0
        size = result.pcap.stat().st_size
    session_hours = args.sessions * args.hours
    print(f"scale: {args.sessions} sessions x {args.hours} h (seed {args.seed})")
    print(f"output: {result.flows} flows, {result.packets} packets, {size / 1e6:.1f} MB pcapng")
    print(f"wall {wall:.1f} s, cpu {cpu:.1f} s; {result.packets / cpu:,.0f} packets/cpu-s")
    print(f"speed: {session_hours / cpu:.1f} session-hours per cpu-second")
    print(f"100 sessions x 1 h would take ~{100.0 / (session_hours / cpu):.1f} cpu-s (target < 60 s)")


# -- distribution comparison with real captures (``--compare``) -------------------------------


def _flows(path: Path) -> dict[tuple[str, int, str, int], list[tuple[int, int, int]]]:
    """(client, cport, server, sport) -> [(ts_ns, direction, payload_len)] for TCP data packets."""
    import numpy as np

    from minerscope.capture.packets import format_ip
    from minerscope.capture.pcap import read_all

    batch, _ = read_all(path)
    p = batch.packets
    flows: dict[tuple[str, int, str, int], list[tuple[int, int, int]]] = {}
    syn_from: dict[tuple[str, int, str, int], tuple[str, int]] = {}
    idx = np.nonzero(p["proto"] == 6)[0]
    for i in idx:
        row = p[i]
        a = (format_ip(int(row["src_hi"]), int(row["src_lo"])), int(row["sport"]))
        b = (format_ip(int(row["dst_hi"]), int(row["dst_lo"])), int(row["dport"]))
        key = (*min(a, b), *max(a, b))
        if int(row["tcp_flags"]) & 0x12 == 0x02:
            syn_from[key] = a
        n = int(row["payload_len"])
        if n:
            client = syn_from.get(key, a if a[1] > b[1] else b)
            flows.setdefault(key, []).append((int(row["ts_ns"]), 0 if a == client else 1, n))
    return flows


def _quart(values: list[float]) -> str:
    import numpy as np

    if not values:
        return "-"
    q1, med, q3 = np.percentile(values, [25, 50, 75])
    return f"{med:8.1f} [{q1:.1f}-{q3:.1f}]"


def _describe(name: str, flows: list[list[tuple[int, int, int]]]) -> None:
    import numpy as np

    c2s, s2c, iat, per_c, per_s = [], [], [], [], []
    for pk in flows:
        if len(pk) < 10:
            continue
        pk.sort()
        ts = np.array([t for t, _, _ in pk], dtype=np.float64) / 1e9
        iat.extend(np.diff(ts).tolist())
        c2s.extend(n for _, d, n in pk if d == 0)
        s2c.extend(n for _, d, n in pk if d == 1)
        for d, out in ((0, per_c), (1, per_s)):
            t = np.array([x for x, dd, _ in pk if dd == d], dtype=np.float64) / 1e9
            if len(t) > 3:
                gaps = np.diff(t)
                gaps = gaps[gaps > 0.5]  # drop same-burst segments: "period" between messages
                if len(gaps):
                    out.append(float(np.median(gaps)))
    n = sum(1 for f in flows if len(f) >= 10)
    print(
        f"{name:34s} {n:4d} {_quart(c2s):>22s} {_quart(s2c):>22s} {_quart(iat):>20s} {_quart(per_c):>20s} {_quart(per_s):>20s}"
    )


def compare(datasets: Path, seed: int) -> None:
    """Median [IQR] of payload sizes, packet IATs and per-flow periods: lab vs real captures."""
    import csv

    print(
        f"{'class':34s} {'flows':>4s} {'c2s payload B':>22s} {'s2c payload B':>22s} {'data IAT s':>20s} {'c2s period s':>20s} {'s2c period s':>20s}"
    )
    real = datasets / "real"
    cj = sorted((real / "cj-sniffer").glob("*.pcap"))
    with (real / "MANIFEST.csv").open() as fh:
        cj_eth = {
            Path(r["path"]).name
            for r in csv.DictReader(fh)
            if r["path"].startswith("cj-sniffer/") and r["coin"] == "eth"
        }
    xmr_flows: list[list[tuple[int, int, int]]] = []
    eth_flows: list[list[tuple[int, int, int]]] = []
    for f in cj:
        target = eth_flows if f.name in cj_eth else xmr_flows
        target.extend(_flows(f).values())
    _describe("real cj-sniffer xmr (tcp)", xmr_flows)
    _describe("real cj-sniffer eth (tcp)", eth_flows)
    nd = _flows(real / "ndpi" / "mining.pcapng")
    _describe("real ndpi zec (tcp)", [v for k, v in nd.items() if 3333 in (k[1], k[3])])
    _describe("real ndpi eth (tcp)", [v for k, v in nd.items() if 9999 in (k[1], k[3])])
    _describe("real ndpi xmr (tcp)", [v for k, v in nd.items() if 9050 in (k[1], k[3])])
    lr = datasets / "lab-real"
    for name in sorted(p.name for p in lr.glob("*.pcap")):
        _describe("lab-real " + name.rsplit(".", 1)[0][:25], list(_flows(lr / name).values()))
    # the lab
    from minerscope.lab.labels import read_labels

    with tempfile.TemporaryDirectory() as tmp:
        cfg = LabConfig(
            seed=seed, hours=1.0, sessions=40, coins=("xmr", "ltc", "etc", "zec"), benign_ratio=0.35
        )
        res = generate(cfg, Path(tmp), "cmp")
        flows = _flows(res.pcap)
        rows = read_labels(res.labels)
    groups: dict[str, list[list[tuple[int, int, int]]]] = {}
    for r in rows:
        a, b = (r.client_ip, r.client_port), (r.server_ip, r.server_port)
        key = (*min(a, b), *max(a, b))
        if key not in flows or r.scenario in ("dns", "web", "api", "bulk-download", "video-stream"):
            continue
        if r.label == "miner":
            tr = "tls" if r.transport.startswith(("tls", "wss")) else r.transport
            name = f"lab {r.coin} {r.scenario} ({tr})"
        else:
            name = f"lab benign {r.scenario.split('-')[0]} ({'tls' if r.transport.startswith(('tls', 'wss')) else r.transport})"
        groups.setdefault(name, []).append(flows[key])
    for name in sorted(groups):
        _describe(name, groups[name])


if __name__ == "__main__":
    main()
