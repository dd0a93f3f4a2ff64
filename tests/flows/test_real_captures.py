"""Assembly on real files: captures the writer produced and the reader read, and public
third-party captures compared with tshark (conversations, packet counts, SNI)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
import pytest

from minerscope.capture.writer import PcapngWriter, PcapWriter
from minerscope.errors import CaptureError
from minerscope.flows.assemble import assemble, assemble_capture
from tests.flows.frames import Frame, tcp_session, to_batch, udp
from tests.flows.tls_pair import records, tls_session
from tests.flows.tshark_oracle import our_conversations, tshark, tshark_report, tshark_socks_targets

MAX_FILE_BYTES = 1_500_000  # keeps the tshark comparisons to a few seconds
MIN_AGREEING_FILES = 20
FILES_COMPARED = 32


def sample_frames() -> list[Frame]:
    flights = tls_session(alpn=["stratum"], messages=[(0, b'{"method":"login"}\n'), (1, b"job" * 200)])
    frames = tcp_session(100.0, ("10.9.0.2", 50123), ("203.0.113.9", 443), flights, mss=600)
    frames += tcp_session(
        100.2, ("10.9.0.3", 50124), ("203.0.113.10", 3333), [(0, b'{"id":1,"method":"mining.subscribe"}\n')]
    )
    frames += [udp(100.5 + i, "10.9.0.2", 5353, "10.9.0.9", 9999, b"u" * i) for i in range(1, 4)]
    return sorted(frames, key=lambda f: f[0])


def test_writer_pcapng_read_back_equals_in_memory_rows(tmp_path: Path) -> None:
    frames = sample_frames()
    path = tmp_path / "sample.pcapng"
    with PcapngWriter(path) as w:
        iface = w.add_interface(1)
        for t, frame in frames:
            w.write_packet(iface, round(t * 1e9), bytes(frame))
    table, report = assemble_capture(path)
    assert report.complete and report.packets == len(frames)
    expected = assemble([to_batch(frames)], capture="sample.pcapng")
    assert table.summary.equals(expected.summary)
    assert np.array_equal(table.msg_len, expected.msg_len)
    tls = table.summary.filter(table.summary["is_tls"]).row(0, named=True)
    assert tls["sni"] == "pool.example.test" and tls["alpn"] == "stratum"
    i = int(tls["flow_id"])
    sel = slice(table.msg_offsets[i], table.msg_offsets[i + 1])
    s2c = b"".join(d for dd, d in tls_session(alpn=["stratum"]) if dd == 1)
    got = list(zip(table.msg_type[sel].tolist(), table.msg_len[sel].tolist(), strict=True))
    # handshake records of the server side have the same shape in every run
    assert [m for m, d in zip(got, table.msg_dir[sel].tolist(), strict=True) if d == 1][:2] == records(s2c)[
        :2
    ]


def test_damaged_capture_keeps_flows_before_the_damage(tmp_path: Path) -> None:
    frames = sample_frames()
    path = tmp_path / "cut.pcap"
    with PcapWriter(path) as w:
        for t, frame in frames:
            w.write_packet(round(t * 1e9), bytes(frame))
    data = path.read_bytes()
    path.write_bytes(data[: len(data) - 30])
    table, report = assemble_capture(path)
    assert not report.complete and report.warning
    assert int(table.summary["packets"].sum()) == len(frames) - 1


def _real_pcaps(root: Path) -> list[Path]:
    files = sorted(p for sub in ("zeek-traces", "ja4", "ndpi") for p in (root / "real" / sub).glob("*.pcap*"))
    return [p for p in files if p.stat().st_size <= MAX_FILE_BYTES][:FILES_COMPARED]


@pytest.mark.tshark
@pytest.mark.realdata
def test_conversations_packet_counts_and_sni_agree_with_tshark(real_datasets: Path) -> None:
    """Flows summed per address/port pair equal tshark's conversations; SNIs equal tshark's."""
    tshark()
    agree, differ, unreadable, sni_files = [], [], [], 0
    for path in _real_pcaps(real_datasets):
        try:
            table, _ = assemble_capture(path, idle_timeout=1e9)
        except CaptureError:
            unreadable.append(path.name)
            continue
        theirs, their_snis = tshark_report(path)
        (agree if our_conversations(table) == theirs and theirs else differ).append(path.name)
        assert {s for s in table.summary["sni"].to_list() if s} == their_snis, path.name
        sni_files += bool(their_snis)
    assert len(agree) >= MIN_AGREEING_FILES, f"agree={agree} differ={differ} unreadable={unreadable}"
    assert len(differ) <= len(agree) // 10, differ
    assert sni_files >= 8


@pytest.mark.tshark
@pytest.mark.realdata
def test_socks_targets_in_public_captures_agree_with_wireshark(real_datasets: Path) -> None:
    """Public captures of clients behind SOCKS proxies (Zeek's, JA4's and nDPI's test
    traces: curl, shadowsocks, trojan and vmess front ends): every tunnel's target as
    Wireshark's dissector reads it, with TLS metadata from inside the tunnel."""
    tshark()
    paths = sorted(
        p for pattern in ("socks*", "tls_heur__*") for p in (real_datasets / "real").rglob(pattern)
    )
    compared = 0
    for path in paths:
        theirs = tshark_socks_targets(path)
        table, _ = assemble_capture(path, idle_timeout=1e9)
        proxied = table.summary.filter(pl.col("proxy_host") != "")
        ours = {row["sport"]: (row["proxy_host"], row["proxy_port"]) for row in proxied.iter_rows(named=True)}
        assert ours == theirs, path.name
        assert all(proxied["is_tls"]) and all(proxied["sni"] != ""), path.name
        compared += len(theirs)
    assert compared >= 8, compared
