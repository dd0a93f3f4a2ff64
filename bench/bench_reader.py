"""Benchmark: capture file -> PacketBatch rows, against dpkt and scapy on the same file.

Run ``.venv/bin/python -m bench.bench_reader --packets N`` (default 2,000,000).

The reader is also timed with capture filters (``--bpf``, libpcap syntax, run by the
reader's BPF interpreter on every record): one that keeps almost everything (the
interpreter's cost on top of decoding) and one that keeps little (decoding skipped).

The capture is generated once with :mod:`minerscope.capture.writer` and cached under
``bench/out/`` (git-ignored): IPv4/IPv6 TCP and UDP flows whose sizes are heavy-tailed
(three elephants hold ~30 % of the packets, hundreds of thousands each at 2M; the rest
are Pareto-sized mice), interleaved in time, with a mining-like packet size mix (many
empty ACKs and small JSON lines, some full-size segments), 1 in 10 flows VLAN-tagged.

Each measurement runs in a fresh subprocess so its peak RSS (``ru_maxrss``) is its own.
Stages are functions ``Iterable[PacketBatch] -> int`` in :data:`STAGES`: "read" only counts
rows; "flows" also feeds minerscope's flow assembler, so reader + flow table can be timed
end to end on the same file. dpkt (parse-only: Ethernet/IP/TCP objects, no flow state)
and scapy (``PcapReader``) are timed on a prefix and extrapolated; the table says so.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import resource
import struct
import subprocess
import sys
import time
from collections.abc import Callable, Iterable
from pathlib import Path

import numpy as np

from minerscope.capture.packets import PacketBatch

OUT = Path(__file__).resolve().parent / "out"
GEN_VERSION = 1


# --- the capture ---------------------------------------------------------------------------------


def flow_sizes(n_packets: int, rng: np.random.Generator) -> np.ndarray:
    """Heavy-tailed flow sizes summing to ``n_packets``: three elephants plus Pareto mice."""
    elephants = [int(n_packets * f) for f in (0.15, 0.10, 0.05)]
    rest = n_packets - sum(elephants)
    mice: list[int] = []
    total = 0
    while total < rest:
        draw = (rng.pareto(1.2, 4096) * 8 + 1).astype(np.int64)
        for size in draw.tolist():
            size = min(size, rest - total)
            mice.append(size)
            total += size
            if total >= rest:
                break
    return np.array(elephants + mice, dtype=np.int64)


def generate(path: Path, n_packets: int, seed: int = 7, segment: int = 0) -> None:
    """Write the benchmark capture (classic pcap, nanosecond) with the project's writer.

    ``segment`` > 0: the capture is consecutive segments of that many packets, each with
    its own flows of the same heavy-tailed mix (so a longer file has more flows, not
    longer ones: the flow mix is the same whatever the file size). 0: one segment.
    """
    from minerscope.capture.writer import LINKTYPE_ETHERNET, PcapWriter

    rng = np.random.default_rng(seed)
    seg = segment if segment > 0 else n_packets
    parts = []
    n_flows = 0
    for start in range(0, n_packets, seg):
        sizes_k = flow_sizes(min(seg, n_packets - start), rng)
        parts.append(n_flows + rng.permutation(np.repeat(np.arange(sizes_k.shape[0]), sizes_k)))
        n_flows += sizes_k.shape[0]
    order = np.concatenate(parts)
    choice = rng.choice(4, n_packets, p=[0.4, 0.35, 0.15, 0.10])
    lo = np.array([0, 40, 300, 1448])[choice]
    hi = np.array([1, 300, 1400, 1449])[choice]
    payload_len = rng.integers(lo, hi)
    gaps = rng.exponential(200_000, n_packets).astype(np.int64)  # ~5k packets/s of capture time
    ts = 1_700_000_000_000_000_000 + np.cumsum(gaps)
    v6 = rng.random(n_flows) < 0.2
    udp = rng.random(n_flows) < 0.15
    vlan = rng.random(n_flows) < 0.1
    seqs = rng.integers(0, 2**32, n_flows).astype(np.int64)
    heads: list[bytearray] = []
    for f in range(n_flows):
        eth = bytes.fromhex("02000000000102000000000" + "2")
        if vlan[f]:
            eth += struct.pack("!HH", 0x8100, 1 + f % 4000)
        l4 = (
            struct.pack("!HHHH", 40000 + f % 20000, 3333, 0, 0)
            if udp[f]
            else struct.pack("!HHIIBBHHH", 40000 + f % 20000, 3333, 0, 1, 0x50, 0x18, 65535, 0, 0)
        )
        proto = 17 if udp[f] else 6
        if v6[f]:
            src = b"\x20\x01\x0d\xb8" + f.to_bytes(12, "big")
            ip = (
                struct.pack("!IHBB", 0x60000000, 0, proto, 64)
                + src
                + b"\x20\x01\x0d\xb8"
                + bytes(11)
                + b"\x01"
            )
            head = bytearray(eth + b"\x86\xdd" + ip + l4)
        else:
            ip = struct.pack(
                "!BBHHHBBH4s4s",
                0x45,
                0,
                0,
                0,
                0,
                64,
                proto,
                0,
                (0x0A000000 + f).to_bytes(4, "big"),
                bytes([192, 0, 2, 1]),
            )
            head = bytearray(eth + b"\x08\x00" + ip + l4)
        heads.append(head)
    filler = bytes(range(256)) * 6
    with PcapWriter(path, LINKTYPE_ETHERNET, nanosecond=True) as w:
        for i in range(n_packets):
            f = int(order[i])
            head = heads[f]
            plen = int(payload_len[i])
            ip_off = 18 if vlan[f] else 14
            if v6[f]:
                struct.pack_into("!H", head, ip_off + 4, len(head) - ip_off - 40 + plen)
            else:
                struct.pack_into("!H", head, ip_off + 2, len(head) - ip_off + plen)
            if not udp[f]:
                l4_off = ip_off + (40 if v6[f] else 20)
                struct.pack_into("!I", head, l4_off + 4, int(seqs[f]) & 0xFFFFFFFF)
                seqs[f] += plen
            w.write_packet(int(ts[i]), bytes(head) + filler[:plen])


def capture_for(n_packets: int, segment: int = 0) -> Path:
    """The cached benchmark capture for ``n_packets`` (generated on first use; see :func:`generate`)."""
    OUT.mkdir(parents=True, exist_ok=True)
    layout = f"_seg{segment}" if segment else ""
    path = OUT / f"reader_{n_packets}{layout}_v{GEN_VERSION}.pcap"
    if not path.exists():
        t0 = time.perf_counter()
        tmp = path.with_suffix(".tmp")
        generate(tmp, n_packets, segment=segment)
        tmp.rename(path)
        print(
            f"generated {path} ({path.stat().st_size / 1e6:.0f} MB) in {time.perf_counter() - t0:.0f} s",
            file=sys.stderr,
        )
    return path


# --- stages (what consumes the batches) ----------------------------------------------------------


def stage_read(batches: Iterable[PacketBatch]) -> int:
    """Reader only: count the rows."""
    return sum(len(b.packets) for b in batches)


def stage_flows(batches: Iterable[PacketBatch]) -> int:
    """Reader + minerscope's flow assembler (the next pipeline stage)."""
    from minerscope.flows.assemble import FlowAssembler

    asm = FlowAssembler()
    n = 0
    flows = 0
    for batch in batches:
        n += len(batch.packets)
        flows += len(asm.feed(batch))
    flows += len(asm.finish())
    return n


STAGES: dict[str, Callable[[Iterable[PacketBatch]], int]] = {"read": stage_read, "flows": stage_flows}


# --- measurements (each in its own process) -------------------------------------------------------


def _rss_mb() -> float:
    """Peak RSS of this process so far, in MB.

    ``/proc/self/status`` VmHWM belongs to this process's own address space; ``ru_maxrss``
    (the fallback) also counts the parent's RSS at fork time, which would blur the figures.
    """
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def measure(tool: str, path: Path, limit: int, bpf: str | None = None) -> dict[str, float]:
    """Time one tool over ``path`` (at most ``limit`` packets for the slow ones; minerscope's
    reader with the capture filter ``bpf``, if given)."""
    if tool.startswith("minerscope"):
        from minerscope.capture import pcap
        from minerscope.capture.writer import PcapWriter

        stage = STAGES[tool.split(":")[1]]
        warm = OUT / "warmup.pcap"
        with PcapWriter(warm) as w:  # load the compiled kernels before the clock starts
            w.write_packet(0, bytes(60))
        t0 = time.perf_counter()
        stage_read(pcap.iter_batches(warm, bpf=bpf))
        if stage is not stage_read:  # the later stage's imports and kernels too: one batch of the file
            stage(itertools.islice(pcap.iter_batches(path), 1))
        warmup = time.perf_counter() - t0
        base = _rss_mb()
        c0, t0 = time.process_time(), time.perf_counter()
        kept = stage(pcap.iter_batches(path, bpf=bpf))
        return {
            "packets": limit if bpf else kept,  # read from the file, kept or not
            "kept": kept,
            "wall": time.perf_counter() - t0,
            "cpu": time.process_time() - c0,
            "warmup": warmup,
            "base_mb": base,
        }
    if tool == "dpkt":
        import dpkt

        base = _rss_mb()
        c0, t0 = time.process_time(), time.perf_counter()
        n = 0
        with open(path, "rb") as f:
            for _ts, buf in dpkt.pcap.Reader(f):
                eth = dpkt.ethernet.Ethernet(buf)
                ip = eth.data
                _ = ip.data  # Ethernet() already unpacked IP and TCP/UDP
                n += 1
                if n >= limit:
                    break
        return {
            "packets": n,
            "wall": time.perf_counter() - t0,
            "cpu": time.process_time() - c0,
            "base_mb": base,
        }
    if tool == "nfstream":
        from nfstream import NFStreamer

        base = _rss_mb()
        kids0 = resource.getrusage(resource.RUSAGE_CHILDREN)
        c0, t0 = time.process_time(), time.perf_counter()
        n = 0
        # statistics off, one meter process (one core), no application dissection
        for flow in NFStreamer(source=str(path), statistical_analysis=False, n_dissections=0, n_meters=1):
            n += flow.bidirectional_packets
        kids = resource.getrusage(resource.RUSAGE_CHILDREN)
        child_cpu = (kids.ru_utime - kids0.ru_utime) + (kids.ru_stime - kids0.ru_stime)
        return {
            "packets": n,
            "wall": time.perf_counter() - t0,
            "cpu": time.process_time() - c0 + child_cpu,
            "base_mb": base,
            "child_rss_mb": kids.ru_maxrss / 1024,
        }
    if tool == "scapy":
        from scapy.utils import PcapReader

        base = _rss_mb()
        c0, t0 = time.process_time(), time.perf_counter()
        n = 0
        with PcapReader(str(path)) as reader:
            for pkt in reader:
                _ = pkt.payload.payload  # dissected on read
                n += 1
                if n >= limit:
                    break
        return {
            "packets": n,
            "wall": time.perf_counter() - t0,
            "cpu": time.process_time() - c0,
            "base_mb": base,
        }
    raise SystemExit(f"unknown tool {tool}")


def run_isolated(tool: str, path: Path, limit: int, bpf: str | None = None) -> dict[str, float]:
    """Run :func:`measure` in a fresh interpreter; add its peak RSS."""
    code = (
        "import json; from pathlib import Path; from bench.bench_reader import measure; "
        f"r = measure({tool!r}, Path({str(path)!r}), {limit}, {bpf!r}); "
        "from bench.bench_reader import _rss_mb; r['rss_mb'] = _rss_mb(); print(json.dumps(r))"
    )
    repo = Path(__file__).resolve().parent.parent
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True, cwd=repo)
    result: dict[str, float] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--packets", type=int, default=2_000_000, help="packets in the generated capture")
    parser.add_argument("--dpkt-prefix", type=int, default=200_000, help="packets dpkt parses (extrapolated)")
    parser.add_argument(
        "--scapy-prefix", type=int, default=20_000, help="packets scapy parses (extrapolated)"
    )
    parser.add_argument("--flows", action="store_true", help="also time reader + flow assembler")
    parser.add_argument(
        "--bpf",
        action="append",
        default=["not port 53", "tcp port 443"],
        help="also time the reader with this capture filter (repeatable; default: two)",
    )
    args = parser.parse_args(argv)

    path = capture_for(args.packets)
    size_mb = path.stat().st_size / 1e6
    print(
        f"capture: {path.name}: {args.packets:,} packets, {size_mb:.0f} MB; 1 core; load avg {os.getloadavg()[0]:.1f}"
    )
    rows: list[tuple[str, dict[str, float], str]] = []
    rows.append(("minerscope reader", run_isolated("minerscope:read", path, args.packets), "full file"))
    for expression in args.bpf:
        r = run_isolated("minerscope:read", path, args.packets, expression)
        rows.append((f"  --bpf {expression!r}", r, f"full file, {int(r['kept']):,} kept"))
    if args.flows:
        rows.append(
            ("minerscope reader+flows", run_isolated("minerscope:flows", path, args.packets), "full file")
        )
    rows.append(
        (
            "dpkt (parse only)",
            run_isolated("dpkt", path, args.dpkt_prefix),
            f"prefix {args.dpkt_prefix:,}, extrapolated",
        )
    )
    rows.append(
        (
            "scapy PcapReader",
            run_isolated("scapy", path, args.scapy_prefix),
            f"prefix {args.scapy_prefix:,}, extrapolated",
        )
    )
    try:
        import nfstream  # noqa: F401
    except ImportError:
        nf_note = "nfstream: not installed (skipped)"
    else:
        nf_note = "nfstream: installed but not timed by this script"

    ours = rows[0][1]["packets"] / rows[0][1]["cpu"]
    print(
        f"{'tool':26} {'packets':>10} {'wall s':>8} {'cpu s':>8} {'Mpps(cpu)':>10} {'Mpps(wall)':>11} {'x slower':>9} {'RSS MB base->peak':>17}  note"
    )
    for name, r, note in rows:
        pps_cpu = r["packets"] / r["cpu"]
        pps_wall = r["packets"] / r["wall"]
        full_s = args.packets / pps_cpu
        extra = f"; full file ~{full_s:.0f} s cpu" if "extrapolated" in note else ""
        warm = f"; kernel load {r['warmup']:.2f} s (not timed)" if "warmup" in r else ""
        print(
            f"{name:26} {int(r['packets']):>10,} {r['wall']:>8.2f} {r['cpu']:>8.2f} {pps_cpu / 1e6:>10.2f} "
            f"{pps_wall / 1e6:>11.2f} {ours / pps_cpu:>9.1f} {r['base_mb']:>8.0f}->{r['rss_mb']:<8.0f}  {note}{extra}{warm}"
        )
    print(nf_note)
    print(
        "RSS base = after imports (and kernel load), before the timed read; dpkt/scapy peaks cover only their prefix."
    )
    print(
        "'x slower' compares CPU-time packets/s with the minerscope reader (the machine is shared; CPU time is the fair figure)."
    )


if __name__ == "__main__":
    main()
