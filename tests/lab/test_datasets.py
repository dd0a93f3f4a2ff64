"""Loaders for labelled captures: the real manifests and the lab's own output."""

from __future__ import annotations

from pathlib import Path

import pytest

from minerscope import resources
from minerscope.errors import InputError
from minerscope.lab.datasets import existing, load_any, load_lab_dir, load_manifest


@pytest.mark.realdata
def test_real_manifest_with_flow_labels(real_datasets: Path) -> None:
    entries = load_manifest(real_datasets / "real")
    assert len(existing(entries)) == len(entries) > 100
    by_name = {e.path.name: e for e in entries}
    cj = next(e for e in entries if e.path.parent.name == "cj-sniffer")
    assert cj.label == "miner" and cj.coin == "xmr" and cj.label_for("10.0.0.1", 1234) == "miner"
    mixed = by_name["mining.pcapng"]
    assert mixed.label_for("94.23.199.191", 3333) == "miner"
    assert mixed.label_for("10.1.1.1", 443) == "benign"
    assert {e.label for e in entries} == {"miner", "benign"}


@pytest.mark.realdata
def test_lab_real_manifest_endpoints(real_datasets: Path) -> None:
    entries = load_any(real_datasets / "lab-real")
    xmr = next(e for e in entries if e.path.name.startswith("xmr-xmrig-xmrigproxy-tls"))
    assert xmr.label == "miner" and xmr.coin == "xmr"  # "mining" and "XMR (regtest)" normalised
    assert xmr.label_for("127.0.5.5", 5555) == "miner"
    mqtt = next(e for e in entries if e.path.name.startswith("benign-mqtt"))
    assert mqtt.label == "benign" and mqtt.coin == ""


def test_lab_dir_loader_on_the_sample(tmp_path: Path) -> None:
    (entry,) = load_lab_dir(resources.data_dir("sample_pcaps"))
    assert entry.label == "mixed" and "xmr" in entry.coin.split(";")
    miner = next(r for r in entry.flows if r.label == "miner")
    assert entry.label_for(miner.server_ip, miner.server_port) == "miner"
    with pytest.raises(InputError, match="no <name>.labels.csv"):
        load_lab_dir(tmp_path)
    (tmp_path / "MANIFEST.csv").write_text("path,label\nx.pcap,maybe\n")
    with pytest.raises(InputError, match="line 2: unknown label 'maybe'"):
        load_any(tmp_path)
