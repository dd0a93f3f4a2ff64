"""Benchmark: pcap file -> flow table, packets/s and peak RSS at two file sizes, against other tools.

Run ``.venv/bin/python -m bench.bench_flows`` (default sizes 1,000,000 and 4,000,000 packets).

The captures come from :func:`bench.bench_reader.generate` in *segmented* layout: the file
is consecutive 1M-packet segments, each with its own flows of the same heavy-tailed mix
(three elephants of 150k/100k/50k packets, Pareto mice), so the 4M file has four times
the flows of the 1M file, not longer ones (from two segments on, live state includes the
overlap of one segment's flows waiting out their idle timeout with the next one's, so the
memory plateau starts at two segments). Every tool runs in its own subprocess on the
same file in the same run; its peak RSS is its own (VmHWM). CPU time is the figure to
compare (the machine is shared). Rows:

* minerscope reader: the file to PacketBatch rows only;
* minerscope reader+flows: the file to the complete flow table (records, TLS records,
  prefixes, metadata), flows handed out as they end and dropped, as a streaming caller would;
* nfstream: ``NFStreamer(statistical_analysis=False, n_dissections=0, n_meters=1)`` over the
  whole file (CPU time includes its meter process);
* dpkt (parse only, no flows) and scapy ``PcapReader`` on a prefix, extrapolated.

``--synthetic`` keeps the older in-memory mode: batches synthesised in memory, reading excluded.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import resource
import subprocess
import time
import tracemalloc

import numpy as np

from minerscope.capture.packets import IPV4_MAPPED_LO_PREFIX, PACKET_DTYPE, PacketBatch
from minerscope.flows.assemble import FlowAssembler
from minerscope.flows.records import FlowTable


def synth_batches(
    n_packets: int, n_flows: int, batch: int, seed: int = 1, long_lived: bool = False
) -> list[PacketBatch]:
    """Interleaved TCP flows over ~n_packets/1000 seconds, cut into batches of ``batch`` rows."""
    rng = np.random.default_rng(seed)
    span = n_packets / 1000.0
    ts = np.sort(rng.uniform(0, span, n_packets))
    if long_lived:
        flow = rng.integers(0, n_flows, n_packets)
    else:
        # each flow lives for a random window (mean 5 % of the capture), like real traffic
        start = rng.uniform(0, span, n_flows)
        end = start + rng.exponential(span * 0.05, n_flows)
        centre = rng.integers(0, n_flows, n_packets)
        flow = np.searchsorted(np.sort(start), ts, side="right") - 1 - rng.integers(0, 40, n_packets)
        flow = np.clip(flow, 0, n_flows - 1)
        flow = np.where(end[np.argsort(start)][flow] >= ts, flow, centre % max(1, n_flows))
        flow = np.argsort(start)[flow]
    rows = np.zeros(n_packets, PACKET_DTYPE)
    rows["ts_ns"] = (1.7e9 + ts) * 1e9
    c2s = rng.random(n_packets) < 0.5
    client = IPV4_MAPPED_LO_PREFIX | (0x0A000000 + flow)
    server = IPV4_MAPPED_LO_PREFIX | (0xC0000200 + flow % 50)
    cport = 1024 + flow % 60000
    sport = np.where(flow % 8 == 0, 443, 3333)
    rows["ip_version"] = 4
    rows["proto"] = 6
    rows["src_lo"] = np.where(c2s, client, server)
    rows["dst_lo"] = np.where(c2s, server, client)
    rows["sport"] = np.where(c2s, cport, sport)
    rows["dport"] = np.where(c2s, sport, cport)
    plen = rng.integers(0, 400, n_packets).astype(np.uint32)
    plen[rng.random(n_packets) < 0.4] = 0
    rows["payload_len"] = rows["payload_cap"] = plen
    rows["wire_len"] = rows["cap_len"] = plen + 54
    rows["tcp_flags"] = np.where(plen > 0, 0x18, 0x10)
    # first packet of each flow is the client's SYN, last ones FIN
    _, first = np.unique(flow, return_index=True)
    _, last_rev = np.unique(flow[::-1], return_index=True)
    last = n_packets - 1 - last_rev
    rows["tcp_flags"][first] = 0x02
    rows["payload_len"][first] = rows["payload_cap"][first] = 0
    rows["tcp_flags"][last] = 0x11
    for idx in (first,):
        rows["src_lo"][idx], rows["dst_lo"][idx] = client[idx], server[idx]
        rows["sport"][idx], rows["dport"][idx] = cport[idx], sport[idx]
    # per-direction sequence numbers that follow the payload
    key = flow * 2 + (rows["src_lo"] == client)
    order = np.argsort(key, kind="stable")
    seq = np.zeros(n_packets, np.int64)
    pl = rows["payload_len"].astype(np.int64)[order]
    csum = np.cumsum(pl) - pl
    k_sorted = key[order]
    starts = np.r_[0, np.flatnonzero(np.diff(k_sorted)) + 1]
    base = np.repeat(csum[starts], np.diff(np.r_[starts, n_packets]))
    seq[order] = csum - base
    rows["seq"] = seq.astype(np.uint32)
    # payload bytes: TLS application-data records for port 443 flows, JSON-ish otherwise
    data = np.full(int(plen.sum()) + 8, ord("{"), np.uint8)
    offs = np.cumsum(plen.astype(np.int64)) - plen
    rows["payload_off"] = offs
    tls = (sport == 443) & (plen >= 5)
    for j, b in enumerate((0x17, 0x03, 0x03)):
        data[offs[tls] + j] = b
    data[offs[tls] + 3] = ((plen[tls] - 5) >> 8).astype(np.uint8)
    data[offs[tls] + 4] = ((plen[tls] - 5) & 0xFF).astype(np.uint8)
    return [PacketBatch(rows[i : i + batch], data, "synthetic") for i in range(0, n_packets, batch)]


def run(batches: list[PacketBatch], trace: bool = False) -> tuple[float, float, int, int, int]:
    asm = FlowAssembler()
    if trace:
        tracemalloc.start()
    t0 = time.perf_counter()
    c0 = time.process_time()
    chunks = [asm.feed(b) for b in batches]
    chunks.append(asm.finish())
    table = FlowTable.concat(chunks)
    elapsed = time.perf_counter() - t0
    cpu = time.process_time() - c0
    peak = 0
    if trace:
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    return elapsed, cpu, len(table), int(table.pkt_offsets[-1]), peak


def synthetic_main(args: argparse.Namespace) -> None:
    batches = synth_batches(args.packets, args.flows, args.batch, long_lived=args.long_lived)
    label = f"synthetic {args.packets} packets, {args.flows} flows, batches of {args.batch}"
    label += ", all flows live throughout" if args.long_lived else ", flows with finite lifetimes"
    run(synth_batches(20_000, 200, 5_000))  # warm the numba caches (compile is not throughput)
    n = sum(b.packets.shape[0] for b in batches)
    best = min((run(batches) for _ in range(args.repeat)), key=lambda r: r[1])
    elapsed, cpu, flows, pkts, _ = best
    peak = run(batches, trace=True)[4]  # a separate, traced run for the memory figure
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"{label}")
    print(f"  {n} packets -> {flows} flows ({pkts} packets in flows): {elapsed:.2f} s wall, {cpu:.2f} s CPU")
    print(
        f"  {n / cpu / 1e6:.2f} M packets/s of CPU time ({n / elapsed / 1e6:.2f} M/s wall; reading excluded)"
    )
    print(f"  peak traced memory during assembly {peak / 2**20:.0f} MiB; process max RSS {rss:.0f} MiB")


def file_main(args: argparse.Namespace) -> None:
    from bench.bench_reader import capture_for, run_isolated

    results: dict[int, dict[str, dict[str, float]]] = {}
    for size in args.sizes:
        path = capture_for(size, segment=args.segment)
        print(
            f"capture {path.name}: {size:,} packets, {path.stat().st_size / 1e6:.0f} MB; load avg {os.getloadavg()[0]:.1f}"
        )
        tools: list[tuple[str, str, int]] = [
            ("minerscope reader", "minerscope:read", size),
            ("minerscope reader+flows", "minerscope:flows", size),
        ]
        if importlib.util.find_spec("nfstream") is None:
            print("  nfstream: not installed")
        elif size <= args.nfstream_max:
            tools.append(("nfstream (statistics off)", "nfstream", size))
        for name, tool, prefix in (
            ("dpkt (parse only)", "dpkt", args.dpkt_prefix),
            ("scapy PcapReader", "scapy", args.scapy_prefix),
        ):
            if importlib.util.find_spec(tool) is None:
                print(f"  {tool}: not installed")
            else:
                tools.append((name, tool, prefix))
        results[size] = {}
        print(
            f"  {'tool':27} {'packets':>10} {'cpu s':>7} {'Mpps':>6} {'ours x':>7} {'peak RSS MB':>12}  note"
        )
        for name, tool, limit in tools:
            try:
                r = run_isolated(tool, path, limit)
            except subprocess.CalledProcessError as exc:  # a tool that breaks does not stop the others
                print(f"  {name:27} failed: {exc.stderr.strip().splitlines()[-1:] or exc}")
                continue
            results[size][tool] = r
            mpps = r["packets"] / r["cpu"] / 1e6
            ours = results[size].get("minerscope:flows")
            ratio = (
                (ours["packets"] / ours["cpu"] / 1e6) / mpps
                if ours and tool != "minerscope:read"
                else float("nan")
            )
            note = "full file" if limit >= size else f"prefix {limit:,}, extrapolated"
            if "warmup" in r:  # imports and compiled kernels, loaded once per process before the clock
                note += f"; warm-up {r['warmup']:.2f} s wall, not timed"
            rss = r["rss_mb"] if "child_rss_mb" not in r else max(r["rss_mb"], r["child_rss_mb"])
            print(
                f"  {name:27} {int(r['packets']):>10,} {r['cpu']:>7.2f} {mpps:>6.2f} {ratio:>7.1f} {rss:>12.0f}  {note}"
            )
    if len(results) >= 2:
        small, big = min(results), max(results)
        a, b = results[small].get("minerscope:flows"), results[big].get("minerscope:flows")
        if a and b:
            # one segment has no overlap of two segments' live flows: the plateau starts at two
            series = ", ".join(
                f"{results[n]['minerscope:flows']['rss_mb']:.0f} MB at {n:,}"
                for n in sorted(results)
                if "minerscope:flows" in results[n]
            )
            print(
                f"minerscope reader+flows peak RSS: {series} packets "
                f"(x{b['rss_mb'] / a['rss_mb']:.2f} for x{big / small:.0f} the file)"
            )
    print(
        "'ours x' = minerscope reader+flows packets/s of CPU time over that tool's; RSS = peak of the tool's own process"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--sizes", type=int, nargs="+", default=[1_000_000, 4_000_000], help="capture sizes (packets)"
    )
    ap.add_argument("--segment", type=int, default=1_000_000, help="packets per segment of the flow mix")
    ap.add_argument("--nfstream-max", type=int, default=10_000_000, help="skip nfstream above this size")
    ap.add_argument("--dpkt-prefix", type=int, default=200_000)
    ap.add_argument("--scapy-prefix", type=int, default=20_000)
    ap.add_argument(
        "--synthetic", action="store_true", help="in-memory synthetic batches instead (reading excluded)"
    )
    ap.add_argument("--packets", type=int, default=1_000_000, help="--synthetic: packets")
    ap.add_argument("--flows", type=int, default=20_000, help="--synthetic: flows")
    ap.add_argument("--batch", type=int, default=250_000, help="--synthetic: rows per batch")
    ap.add_argument(
        "--repeat", type=int, default=3, help="--synthetic: runs; the one with least CPU time is shown"
    )
    ap.add_argument(
        "--long-lived", action="store_true", help="--synthetic: every flow spans the whole capture"
    )
    args = ap.parse_args()
    if args.synthetic:
        synthetic_main(args)
    else:
        file_main(args)


if __name__ == "__main__":
    main()
