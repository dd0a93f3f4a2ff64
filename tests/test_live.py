"""The headless live pipeline (:func:`minerscope.live.iter_live`) and its stop conditions, on ``lo``.

A plain TCP exchange on a distinctive loopback address is captured through a BPF
filter; ``max_packets`` must stop the capture at exactly that many packets and still
score the flow left open, and ``duration_s`` must end a capture that sees nothing; on a
quiet link, a flow that ended and a window that ran out must come out while the capture
runs (the assembler's clock is moved on without packets).
Without capture privileges those skip; the window-to-window carry of cleartext
(:class:`~minerscope.live._Conversations`) is checked on hand-built pieces everywhere.
"""

from __future__ import annotations

import socket
import threading
import time
from typing import Any

import polars as pl

from minerscope.flows.records import FLOW_SUMMARY_SCHEMA, FlowTable
from minerscope.live import LiveOptions, _Conversations, iter_live
from minerscope.triage import TriageOptions
from tests.cli.test_live import needs_capture
from tests.conftest import runs_ok_in_a_fresh_interpreter

HOST = "127.79.0.1"


@needs_capture
def test_max_packets_stops_the_capture_and_scores_the_open_flow() -> None:
    with socket.create_server((HOST, 0)) as server:
        port = server.getsockname()[1]
        live = LiveOptions("lo", bpf=f"host {HOST} and tcp port {port}", max_packets=6, duration_s=60)
        updates = iter_live("lo", TriageOptions(), live=live)
        first = next(updates)  # the capture is open
        assert first.packets == 0 and not first.done

        def talk() -> None:
            with socket.create_connection((HOST, port)) as client, server.accept()[0] as conn:
                client.sendall(b"ping\n")
                conn.recv(16)
                conn.sendall(b"pong\n")
                client.recv(16)
                time.sleep(1.0)  # keep it open: the flow must come out of the final flush

        thread = threading.Thread(target=talk)
        thread.start()
        started = time.monotonic()
        rest = list(updates)
        thread.join()
    assert time.monotonic() - started < 30
    last = rest[-1]
    assert last.done and last.report is not None and last.report.complete
    assert last.report.packets == 6  # SYN, SYN/ACK, ACK, ping, its ACK, pong
    rows = [r for u in rest if u.rows is not None for r in u.rows.iter_rows(named=True)]
    assert len(rows) == 1
    row = rows[0]
    assert (row["dst"], row["dport"], row["packets"]) == (HOST, port, 6)
    assert row["end_reason"] == "eof" and row["syn_seen"] and row["c2s_payload_bytes"] == 5
    assert row["stage1"] in ("mining", "benign", "unscored") and 0.0 <= row["p_mining"] <= 1.0


@needs_capture
def test_duration_ends_a_quiet_capture() -> None:
    started = time.monotonic()
    updates = list(
        iter_live(
            "lo", TriageOptions(), live=LiveOptions("lo", bpf=f"host {HOST} and port 9", duration_s=0.5)
        )
    )
    assert updates[-1].done and updates[-1].report is not None and updates[-1].report.packets == 0
    assert all(u.rows is None for u in updates)
    assert time.monotonic() - started < 20


@needs_capture
def test_a_flow_that_ended_on_a_quiet_link_is_reported_before_the_capture_ends() -> None:
    with socket.create_server((HOST, 0)) as server:
        port = server.getsockname()[1]
        live = LiveOptions("lo", bpf=f"host {HOST} and tcp port {port}", duration_s=30)
        cancel = threading.Event()
        updates = iter_live("lo", TriageOptions(idle_timeout=1.0), cancel=cancel, live=live)
        next(updates)
        with socket.create_connection((HOST, port)) as client, server.accept()[0] as conn:
            client.sendall(b"hello\n")
            conn.recv(16)
        # nothing else crosses the filter now: only moving the assembler's clock on can end the flow
        rows = []
        for update in updates:
            if update.rows is not None:
                assert not update.done, "the flow came out only when the capture stopped"
                rows = update.rows.to_dicts()
                cancel.set()
    assert [(r["dport"], r["end_reason"], r["c2s_payload_bytes"]) for r in rows] == [(port, "fin", 6)]


@needs_capture
def test_a_window_that_ran_out_on_a_quiet_link_is_reported_while_its_flow_stays_open() -> None:
    with socket.create_server((HOST, 0)) as server:
        port = server.getsockname()[1]
        live = LiveOptions("lo", bpf=f"host {HOST} and tcp port {port}", duration_s=30)
        cancel = threading.Event()
        options = TriageOptions(idle_timeout=60.0, window_s=1.0)
        updates = iter_live("lo", options, cancel=cancel, live=live)
        next(updates)
        rows = []
        with socket.create_connection((HOST, port)) as client, server.accept()[0] as conn:
            client.sendall(b"hello\n")
            conn.recv(16)
            # the connection stays open and silent (far from idle): only the window can end it
            for update in updates:
                if update.rows is not None:
                    assert not update.done, "the window came out only when the capture stopped"
                    rows = update.rows.to_dicts()
                    cancel.set()
    assert [(r["dport"], r["end_reason"], r["c2s_payload_bytes"]) for r in rows] == [(port, "active", 6)]


@needs_capture
def test_progress_updates_show_the_flows_held_open_and_the_kernel_drops() -> None:
    """The flow cache a long live run grows (nfstream #24, #60) is in every update."""
    with socket.create_server((HOST, 0)) as server:
        port = server.getsockname()[1]
        live = LiveOptions("lo", bpf=f"host {HOST} and tcp port {port}", duration_s=3.5)
        updates = iter_live("lo", TriageOptions(idle_timeout=60.0, window_s=60.0), live=live)
        assert next(updates).open_flows == 0
        with socket.create_connection((HOST, port)) as client, server.accept()[0] as conn:
            client.sendall(b"hello\n")
            conn.recv(16)
            held = [(u.packets, u.open_flows, u.dropped, u.done) for u in updates]
    assert held[-1][1:] == (0, 0, True)  # the capture stopped: everything was handed out
    # while it ran, a progress update a second showed the one connection held
    assert any(packets >= 3 and open_flows == 1 for packets, open_flows, _, done in held if not done), held
    assert all(dropped == 0 for _, _, dropped, _ in held)


def _pieces(*pieces: tuple[str, str, bytes]) -> FlowTable:
    """Window pieces of one conversation: (end_reason, sni, first client bytes) each."""
    n = len(pieces)
    values: dict[str, list[Any]] = {name: [None] * n for name in FLOW_SUMMARY_SCHEMA}
    values.update(
        flow_id=list(range(n)), capture=["lo"] * n, proto=[6] * n, ip_version=[4] * n,
        src=["127.0.0.1"] * n, sport=[40000] * n, dst=["127.79.0.9"] * n, dport=[3333] * n, vlan=[0] * n,
        end_reason=[p[0] for p in pieces], sni=[p[1] for p in pieces], is_tls=[bool(p[1]) for p in pieces],
    )  # fmt: skip
    for name in ("tls_version", "alpn", "ja4", "ja3", "http_host", "ws_path", "dns_names", "stage0"):
        values[name] = [""] * n
    table = FlowTable.empty()
    table.summary = pl.DataFrame(values, schema=FLOW_SUMMARY_SCHEMA)
    table.payload_prefixes = [(p[2], b"") for p in pieces]
    return table


def test_later_windows_inherit_the_first_windows_cleartext() -> None:
    conversations = _Conversations()
    # the first window closed after the TCP handshake alone: nothing to lend yet
    first = conversations.carry(_pieces(("active", "", b"")))
    assert first.summary["sni"].to_list() == [""]
    hello = b"\x16\x03\x01 ClientHello for pool.example"
    second = conversations.carry(_pieces(("active", "pool.example", hello)))
    assert second.payload_prefixes == [(hello, b"")]  # its own bytes, not the empty first ones
    third = conversations.carry(_pieces(("fin", "", b"\x17\x03\x03 mid-stream")))
    assert third.summary["sni"].to_list() == ["pool.example"] and third.summary["is_tls"].to_list() == [True]
    assert third.payload_prefixes == [(hello, b"")]
    # the conversation ended (fin): a new one on the same 5-tuple inherits nothing
    fourth = conversations.carry(_pieces(("active", "", b"GET / HTTP/1.1\r\n")))
    assert fourth.summary["sni"].to_list() == [""]
    assert fourth.payload_prefixes == [(b"GET / HTTP/1.1\r\n", b"")]


def test_live_loads_its_model_without_xgboost_or_scikit_learn() -> None:
    """As scan does: scoring walks the trees itself, and importing xgboost (with its
    scikit-learn wrappers) would only delay the first verdict."""
    code = (
        "import sys\n"
        "from minerscope.live import load_scoring\n"
        "from minerscope.triage import TriageOptions\n"
        "model, blacklist = load_scoring(TriageOptions())\n"
        "assert model.binary_file.trees is not None and model.coin_file is not None\n"
        "assert 'xgboost' not in sys.modules and 'sklearn' not in sys.modules, 'imported'\n"
        "print('ok')\n"
    )
    runs_ok_in_a_fresh_interpreter(code)


def test_live_carries_every_metadata_column_the_assembler_fills() -> None:
    """(live keeps its own copy of the names so that it imports nothing heavy early)"""
    from minerscope import live
    from minerscope.flows.assemble import METADATA_COLUMNS

    assert live._META == METADATA_COLUMNS


@needs_capture
def test_any_sees_loopback_traffic_exactly_as_lo_does() -> None:
    """``live -i any`` (every interface, raw-IP frames, filter compiled for raw IP): a TCP
    exchange on loopback decodes to lo's rows, each packet once (loopback's outgoing
    copies dropped, as libpcap does)."""
    import numpy as np

    from minerscope.capture.live import LiveCapture

    host = "127.79.0.7"
    with socket.create_server((host, 0)) as server:
        port = server.getsockname()[1]
        bpf = f"host {host} and tcp port {port}"
        with LiveCapture("lo", bpf=bpf) as lo, LiveCapture("any", bpf=bpf) as every:
            with socket.create_connection((host, port)) as client, server.accept()[0] as conn:
                for k in range(5):
                    client.sendall(b"ping %d\n" % k)
                    conn.recv(64)
                    conn.sendall(b"pong %d\n" % k * (k + 1))
                    client.recv(256)
            time.sleep(0.3)  # the ring hands a block over after at most 50 ms
            seen = {}
            for name, cap in (("lo", lo), ("any", every)):
                batches = [cap.read(0.2) for _ in range(5)]
                seen[name] = np.concatenate([b.packets for b in batches])
    lo_rows, any_rows = seen["lo"], seen["any"]
    assert len(lo_rows) >= 16  # handshake, 10 segments and their ACKs, the close
    # every field the flow assembler reads (the link-layer type itself differs: raw IP)
    # (and each socket stamps its own copy: microseconds apart)
    skip = ("ts_ns", "linktype", "payload_off", "cap_len", "wire_len")
    fields = [f for f in lo_rows.dtype.names if f not in skip]
    assert any_rows[fields].tolist() == lo_rows[fields].tolist()
    assert np.abs(any_rows["ts_ns"] - lo_rows["ts_ns"]).max() < 50_000_000
    assert (lo_rows["wire_len"] - any_rows["wire_len"]).tolist() == [14] * len(lo_rows)  # no Ethernet header
