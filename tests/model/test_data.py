"""Labelled data from real captures: manifests, per-flow rules, and 5-tuple label files."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from minerscope.errors import InputError
from minerscope.model.data import load_data, load_labelled_capture, load_manifest, normalise_coin

pytestmark = pytest.mark.realdata

XMR_TLS = "xmr-xmrig-xmrigproxy-tls-5555.pcap"


def test_lab_real_manifest(real_datasets: Path) -> None:
    sets = load_manifest(real_datasets / "lab-real")
    assert len(sets) == 8
    by_group = {ds.labels["group"][0]: ds for ds in sets}
    xmr = by_group[f"lab-real/{XMR_TLS}"]
    pool = xmr.table.summary.with_columns(xmr.labels).filter(pl.col("dport") == 5555)
    assert pool.height >= 1 and (pool["label"] == 1).all() and (pool["coin"] == "xmr").all()
    ltc = by_group["lab-real/ltc-cpuminer-nsp-tcp-3333.pcap"].labels
    assert (ltc.filter(pl.col("label") == 1)["coin"] == "ltc").all()
    benign = by_group["lab-real/benign-ssh-keepalive-22.pcap"].labels
    assert (benign["label"] == 0).all() and benign["coin"].null_count() == benign.height
    assert {ds.labels["source"][0] for ds in sets} == {"lab-real"}


def test_mixed_capture_labels_only_the_named_pool_endpoints(real_datasets: Path, tmp_path: Path) -> None:
    mining = real_datasets / "real" / "ndpi" / "mining.pcapng"
    (tmp_path / "MANIFEST.csv").write_text(f"path,label,coin\n{mining},miner,zec;eth;xmr\n")
    (tmp_path / "FLOW_LABELS.csv").write_text(
        "path,server_endpoint,label,coin\n"
        f"{mining},94.23.199.191:3333,miner,zec\n"
        f"{mining},185.71.66.39:9999,miner,eth\n"
    )
    (ds,) = load_manifest(tmp_path)
    frame = ds.table.summary.with_columns(ds.labels)
    zec = frame.filter(pl.col("dst") == "94.23.199.191")
    eth = frame.filter(pl.col("dst") == "185.71.66.39")
    assert zec.height and (zec["label"] == 1).all() and (zec["coin"] == "zec").all()
    assert eth.height and (eth["coin"] == "eth").all()
    others = frame.filter(~pl.col("dst").is_in(["94.23.199.191", "185.71.66.39"]))
    assert others.height and (others["label"] == 0).all()  # the XMR endpoint was not named here


def test_labels_csv_by_five_tuple_either_orientation(real_datasets: Path, tmp_path: Path) -> None:
    capture = real_datasets / "lab-real" / XMR_TLS
    labels = tmp_path / "labels.csv"
    # written server-first on purpose: orientation must not matter
    labels.write_text(
        "client_ip,client_port,server_ip,server_port,proto,label,coin,session_id\n"
        "127.0.5.5,5555,127.0.0.1,48856,tcp,miner,XMR,session-7\n"
    )
    ds = load_labelled_capture(capture, labels)
    frame = ds.table.summary.with_columns(ds.labels)
    hit = frame.filter(pl.col("sport") == 48856)
    assert hit.height == 1 and hit["label"][0] == 1 and hit["coin"][0] == "xmr"
    assert hit["group"][0] == f"lab:{XMR_TLS}:session-7"
    assert (frame.filter(pl.col("sport") != 48856)["label"] == -1).all()


def test_capture_with_sibling_labels_via_load_data(real_datasets: Path, tmp_path: Path) -> None:
    capture = tmp_path / "one.pcap"
    capture.write_bytes((real_datasets / "lab-real" / XMR_TLS).read_bytes())
    (tmp_path / "one.labels.csv").write_text(
        "src,sport,dst,dport,label,coin,session\n127.0.0.1,48856,127.0.5.5,5555,mining,xmr,s\n"
    )
    sets, recipe = load_data([capture])
    assert len(sets) == 1 and recipe["flows_per_source"]["lab"]["mining"] == 1


def test_bad_labels_are_clear_errors(real_datasets: Path, tmp_path: Path) -> None:
    capture = real_datasets / "lab-real" / XMR_TLS
    bad = tmp_path / "bad.csv"
    bad.write_text("client_ip,client_port,label\n127.0.0.1,1,miner\n")
    with pytest.raises(InputError, match="5-tuple column"):
        load_labelled_capture(capture, bad)
    bad.write_text("src,sport,dst,dport,label\n127.0.0.1,1,127.0.0.2,2,maybe\n")
    with pytest.raises(InputError, match=r"line 2: unknown label 'maybe'"):
        load_labelled_capture(capture, bad)
    with pytest.raises(InputError, match="no MANIFEST.csv and no labelled captures"):
        load_data([tmp_path])
    stray = tmp_path / "notes.txt"
    stray.write_text("x")
    with pytest.raises(InputError, match="not a manifest"):
        load_data([stray])


def test_coin_names_are_normalised() -> None:
    assert normalise_coin("XMR (regtest)") == "xmr"
    assert normalise_coin(" LTC ") == "ltc"
    assert normalise_coin("") is None and normalise_coin(None) is None


def test_labels_csv_with_capture_column_and_numeric_labels(real_datasets: Path, tmp_path: Path) -> None:
    # one labels CSV naming its capture per row; "1"/"0" labels are the numeric spelling
    (tmp_path / "x.pcap").write_bytes((real_datasets / "lab-real" / XMR_TLS).read_bytes())
    labels = tmp_path / "all.csv"
    labels.write_text(
        "capture,src,sport,dst,dport,proto,label,coin\n"
        "x.pcap,127.0.0.1,48856,127.0.5.5,5555,tcp,1,XMR (regtest)\n"
    )
    (ds,), recipe = load_data([labels])
    frame = ds.table.summary.with_columns(ds.labels)
    hit = frame.filter(pl.col("sport") == 48856)
    assert hit["label"].to_list() == [1] and hit["coin"].to_list() == ["xmr"]
    assert recipe["flows_per_source"]["lab"]["mining"] == 1
    labels.write_text("capture,src,sport,dst,dport,label\nmissing.pcap,127.0.0.1,1,127.0.0.2,2,0\n")
    with pytest.raises(InputError, match="capture 'missing.pcap' does not exist"):
        load_data([labels])
