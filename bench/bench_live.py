"""Benchmark: live capture on ``lo`` -> packet rows -> flow table, packets/s and kernel drops.

Run ``sudo .venv/bin/python -m bench.bench_live --seconds 5`` (needs root or CAP_NET_RAW).

A sender *process* blasts UDP datagrams (``--size`` payload bytes, ``--flows`` source
ports) at 127.80.0.1 as fast as Python can for ``--seconds``; this process captures them
through :class:`~minerscope.capture.live.LiveCapture` with a BPF filter and feeds the
:class:`~minerscope.flows.assemble.FlowAssembler` exactly as ``minerscope live`` does
(scoring excluded: its cost is the file pipeline's, see ``bench_pipeline``). Printed:
packets sent, captured, dropped by the kernel (ring overflow), the capture's CPU time
per packet and packets/s. A Python sender is the limit on one machine: the figure shows
that capture keeps up with it, with headroom measured as CPU per packet.
"""

from __future__ import annotations

import argparse
import multiprocessing
import resource
import socket
import time

TARGET = "127.80.0.1"


def _send(seconds: float, size: int, flows: int, port: int, out: multiprocessing.Queue) -> None:  # type: ignore[type-arg]
    socks = []
    for _ in range(flows):
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.bind(("127.0.0.1", 0))
        socks.append(s)
    payload = b"x" * size
    sent = 0
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        for s in socks:
            for _ in range(64):
                try:
                    s.sendto(payload, (TARGET, port))
                    sent += 1
                except OSError:
                    pass
    out.put(sent)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--size", type=int, default=200, help="UDP payload bytes")
    parser.add_argument("--flows", type=int, default=16)
    args = parser.parse_args()

    from minerscope.capture.live import LiveCapture
    from minerscope.flows.assemble import FlowAssembler

    sink = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)  # a bound port: no ICMP unreachable storm
    sink.bind((TARGET, 0))
    port = sink.getsockname()[1]
    asm = FlowAssembler(idle_timeout=120.0, active_timeout=300.0, capture="lo")
    ctx = multiprocessing.get_context("spawn")
    out: multiprocessing.Queue = ctx.Queue()  # type: ignore[type-arg]
    with LiveCapture("lo", bpf=f"udp and dst host {TARGET} and dst port {port}") as cap:
        sender = ctx.Process(target=_send, args=(args.seconds, args.size, args.flows, port, out))
        cpu0 = resource.getrusage(resource.RUSAGE_SELF)
        wall0 = time.monotonic()
        sender.start()
        flows = 0
        while sender.is_alive() or time.monotonic() - wall0 < 0.5:
            batch = cap.read(0.2)
            if len(batch.packets):
                flows += len(asm.feed(batch))
            sink.setblocking(False)
            try:
                while sink.recv(65536):
                    pass
            except BlockingIOError:
                pass
        for _ in range(5):  # the last ring blocks
            batch = cap.read(0.1)
            if len(batch.packets):
                flows += len(asm.feed(batch))
        flows += len(asm.finish())
        wall = time.monotonic() - wall0
        cpu1 = resource.getrusage(resource.RUSAGE_SELF)
        stats = cap.kernel_stats()
    sent = out.get(timeout=10)
    sender.join()
    cpu = (cpu1.ru_utime - cpu0.ru_utime) + (cpu1.ru_stime - cpu0.ru_stime)
    captured = stats.packets
    print(f"sent                {sent:>12,} packets in {args.seconds:.1f} s ({sent / args.seconds:,.0f} pps)")
    print(f"captured            {captured:>12,} packets ({captured / max(sent, 1):.1%}), {flows} flows")
    print(f"dropped by kernel   {stats.dropped:>12,}")
    print(f"capture+flows CPU   {cpu:>12.2f} s = {1e6 * cpu / max(captured, 1):.2f} us/packet")
    print(f"capture rate        {captured / wall:>12,.0f} pps over {wall:.1f} s wall")


if __name__ == "__main__":
    main()
