"""wrap-tls on a real CJ-Sniffer capture: same messages, same timing, real TLS, consistent TCP."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner
from scapy.layers.inet import TCP
from scapy.layers.tls.handshake import TLSClientHello
from scapy.layers.tls.record import TLS
from scapy.utils import rdpcap

from minerscope.cli import main
from minerscope.errors import CaptureError
from minerscope.lab.tls import record_lengths
from minerscope.lab.wrap import wrap_tls

CJ = "real/cj-sniffer/1574720899_9M3tc.pcap"


def _data_packets(path: Path) -> list[tuple[int, int, bytes, int, int]]:
    out = []
    for p in rdpcap(str(path)):
        if TCP in p and len(p[TCP].payload):
            out.append((int(p.time * 10**9), p[TCP].sport, bytes(p[TCP].payload), p[TCP].seq, p[TCP].ack))
    return out


@pytest.mark.realdata
def test_wrap_preserves_messages_and_timing(real_datasets: Path, tmp_path: Path) -> None:
    src = real_datasets / CJ
    dst = tmp_path / "wrapped.pcapng"
    report = wrap_tls(src, dst, seed=3, sni="pool.lab.example")
    before = _data_packets(src)
    unique = {(sport, seq): payload for _, sport, payload, seq, _ in before}  # drop retransmissions
    lines = sum(payload.count(b"\n") for payload in unique.values())
    after = _data_packets(dst)
    assert report.messages == lines
    # TLS handshake first (ClientHello with our SNI), then one application record per message
    hello = TLS(after[0][2])
    assert isinstance(hello.msg[0], TLSClientHello) and b"pool.lab.example" in after[0][2]
    stream: dict[int, bytes] = {}
    taken: set[tuple[int, int]] = set()
    for _, sport, payload, seq, _ in after:
        if (sport, seq) not in taken:  # a retransmission repeats bytes already in the stream
            taken.add((sport, seq))
            stream[sport] = stream.get(sport, b"") + payload
    app_records = 0
    for data in stream.values():
        recs = record_lengths(data)
        assert sum(5 + n for _, n in recs) == len(data)  # the byte stream is whole TLS records
        app_records += sum(1 for t, _ in recs if t == 23)
    tls13_handshake_records = 4 + 1 + 2  # EE/Cert/CV/Fin, client Fin, two tickets
    assert app_records == lines + tls13_handshake_records
    # timing: the application packets keep their original spacing (one constant shift)
    app_after = after[-len(before) :]
    shifts = {a[0] - b[0] for a, b in zip(app_after, before, strict=True)}
    assert len(shifts) == 1 and 0 <= shifts.pop() < 2 * 10**9
    # TCP numbering is consistent: each segment starts where the previous one of its side ended
    nxt: dict[int, int] = {}
    for _, sport, payload, seq, _ in after:
        if (sport, seq) in taken and sport in nxt and seq != nxt[sport]:
            assert (seq - nxt[sport]) & 0xFFFFFFFF > 0x80000000  # only a retransmission goes back
            continue
        if sport in nxt:
            assert seq == nxt[sport]
        nxt[sport] = (seq + len(payload)) & 0xFFFFFFFF


def test_wrap_rejects_non_capture(tmp_path: Path) -> None:
    bad = tmp_path / "x.pcap"
    bad.write_bytes(b"hello world, not a pcap")
    with pytest.raises(CaptureError, match="not a pcap"):
        wrap_tls(bad, tmp_path / "y.pcapng")
    res = CliRunner().invoke(main, ["lab", "wrap-tls", str(bad), str(tmp_path / "y.pcapng")])
    assert res.exit_code != 0 and "not a pcap" in res.output


def test_wrap_reads_pcapng_input(real_datasets: Path, tmp_path: Path) -> None:
    """Regression: pcapng inputs (13 cj-sniffer '.pcap' files are pcapng) used to crash."""
    from minerscope.flows.assemble import assemble_capture

    src = real_datasets / "real" / "ndpi" / "mining.pcapng"
    out = tmp_path / "wrapped.pcap"
    wrap_tls(src, out)
    table, report = assemble_capture(out)
    assert report.complete
    plain, _ = assemble_capture(src)
    mining_ports = {3333, 9999, 9050}
    wrapped_tls = table.summary.filter(table.summary["dport"].is_in(list(mining_ports)))
    # each of the four pool sessions starts with a real TLS handshake (later idle-split pieces need not)
    assert wrapped_tls["is_tls"].sum() >= 4
    assert plain.summary.filter(plain.summary["dport"].is_in(list(mining_ports)))["is_tls"].sum() == 0
