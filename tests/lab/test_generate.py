"""`minerscope lab generate`: deterministic bytes, labels that match the flows in the capture."""

from __future__ import annotations

import collections
import ipaddress
from pathlib import Path

import pytest
from click.testing import CliRunner
from scapy.layers.inet import IP, TCP, UDP
from scapy.layers.inet6 import IPv6
from scapy.utils import rdpcap

from minerscope.cli import main
from minerscope.errors import InputError
from minerscope.lab.generate import LabConfig, generate
from minerscope.lab.labels import read_labels


@pytest.fixture(scope="module")
def small(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("lab")
    generate(LabConfig(seed=5, hours=0.05, sessions=10), out, "a")
    generate(LabConfig(seed=5, hours=0.05, sessions=10), out, "b")
    generate(LabConfig(seed=6, hours=0.05, sessions=10), out, "c")
    return out


def test_same_seed_same_bytes(small: Path) -> None:
    assert (small / "a.pcapng").read_bytes() == (small / "b.pcapng").read_bytes()
    assert (small / "a.labels.csv").read_bytes() == (small / "b.labels.csv").read_bytes()
    assert (small / "a.pcapng").read_bytes() != (small / "c.pcapng").read_bytes()


def _key(ip_a: str, pa: int, ip_b: str, pb: int, proto: str) -> tuple[object, ...]:
    a, b = (ipaddress.ip_address(ip_a), pa), (ipaddress.ip_address(ip_b), pb)
    return (proto, *min(a, b), *max(a, b))


def test_labels_match_flows_in_capture(small: Path) -> None:
    rows = read_labels(small / "a.labels.csv")
    assert {r.label for r in rows} == {"miner", "benign"}
    seen: collections.Counter[tuple[object, ...]] = collections.Counter()
    times: dict[tuple[object, ...], list[int]] = collections.defaultdict(list)
    for pkt in rdpcap(str(small / "a.pcapng")):
        l3 = pkt[IP] if IP in pkt else pkt[IPv6]
        l4, proto = (pkt[TCP], "tcp") if TCP in pkt else (pkt[UDP], "udp")
        key = _key(l3.src, l4.sport, l3.dst, l4.dport, proto)
        seen[key] += 1
        times[key].append(int(pkt.time * 10**9))
    by_key: dict[tuple[object, ...], list[int]] = collections.defaultdict(list)
    for r in rows:
        by_key[_key(r.client_ip, r.client_port, r.server_ip, r.server_port, r.proto)].append(r.packets)
    # every flow in the capture has a label row, with the same packet count
    assert set(seen) == set(by_key)
    for key, counts in by_key.items():
        assert sum(counts) == seen[key]
    for r in rows:
        ts = times[_key(r.client_ip, r.client_port, r.server_ip, r.server_port, r.proto)]
        assert min(ts) <= r.start_ns + 1000 and r.end_ns - 1000 <= max(ts)


def test_cli_generate_and_bad_input(tmp_path: Path) -> None:
    runner = CliRunner()
    res = runner.invoke(
        main,
        [
            "lab",
            "generate",
            "--out",
            str(tmp_path),
            "--seed",
            "3",
            "--hours",
            "0.02",
            "--sessions",
            "4",
            "--coins",
            "xmr,rvn",
        ],
    )
    assert res.exit_code == 0, res.output
    rows = read_labels(tmp_path / "lab.labels.csv")
    assert {r.coin for r in rows if r.label == "miner"} <= {"xmr", "rvn"}
    res = runner.invoke(main, ["lab", "generate", "--out", str(tmp_path), "--coins", "doge"])
    assert res.exit_code != 0
    assert "unknown coin 'doge'" in res.output
    with pytest.raises(InputError):
        generate(LabConfig(benign_ratio=2.0), tmp_path)


def test_plaintext_lab_miners_are_recognised_by_stage0(tmp_path: Path) -> None:
    """The lab speaks the project's dialects: stage 0 recognises every plaintext mining flow."""
    from minerscope.capture.packets import format_ip
    from minerscope.capture.pcap import read_all
    from minerscope.prefilter.stratum import detect_stratum

    cfg = LabConfig(
        seed=4, hours=0.03, sessions=14, tls_ratio=0.0, benign_ratio=0.0, ipv6_ratio=0.0, vlan_ratio=0.0
    )
    generate(cfg, tmp_path, "p")
    batch, _ = read_all(tmp_path / "p.pcapng")
    streams: dict[tuple[tuple[str, int], tuple[str, int]], list[bytes]] = {}
    for i, row in enumerate(batch.packets):
        if row["proto"] == 6 and row["payload_len"]:
            src = (format_ip(int(row["src_hi"]), int(row["src_lo"])), int(row["sport"]))
            dst = (format_ip(int(row["dst_hi"]), int(row["dst_lo"])), int(row["dport"]))
            streams.setdefault((src, dst), []).append(batch.payload(i))
    checked = set()
    for r in read_labels(tmp_path / "p.labels.csv"):
        if r.label != "miner" or r.transport != "tcp":
            continue
        c, s = (r.client_ip, r.client_port), (r.server_ip, r.server_port)
        c2s, s2c = b"".join(streams.get((c, s), [])), b"".join(streams.get((s, c), []))
        assert detect_stratum(c2s[:8192], s2c[:8192]) is not None, r
        checked.add(r.dialect)
    assert len(checked) >= 3


@pytest.mark.parametrize("name", ["a/b", "../escape", "..", ".", ""])
def test_name_must_be_a_plain_file_name(tmp_path: Path, name: str) -> None:
    res = CliRunner().invoke(
        main,
        [
            "lab",
            "generate",
            "--out",
            str(tmp_path / "g"),
            "--hours",
            "0.01",
            "--sessions",
            "2",
            "--name",
            name,
        ],
    )
    assert res.exit_code == 2, res.output
    assert "--name" in res.output and "plain file name" in res.output
    assert list(tmp_path.iterdir()) == []  # nothing written, inside --out or beside it
    with pytest.raises(InputError, match="plain file name"):
        generate(LabConfig(seed=1, hours=0.01, sessions=2), tmp_path / "g", name)


def test_unwritable_output_paths_are_one_line_and_exit_4(small: Path, tmp_path: Path) -> None:
    a_file = tmp_path / "FILE"
    a_file.write_text("x")
    runner = CliRunner()
    cases = [
        (["lab", "wrap-tls", str(small / "a.pcapng"), str(tmp_path / "nodir" / "x.pcapng")], "nodir"),
        (["lab", "generate", "--out", str(a_file / "sub"), "--hours", "0.01", "--sessions", "2"], "FILE/sub"),
        (["lab", "sample", "--out", str(a_file / "sub")], "FILE/sub"),
        (["lab", "generate", "--out", "/proc/minerscope-x", "--hours", "0.01", "--sessions", "2"], "/proc/"),
    ]
    for args, named in cases:
        res = runner.invoke(main, args)
        assert res.exit_code == 4, (args, res.output)
        errors = [line for line in res.output.splitlines() if line.startswith("minerscope: error:")]
        assert len(errors) == 1 and named in errors[0], (args, res.output)
        assert "Traceback" not in res.output
