"""Rebuild the shipped model from nothing: lab corpus, TLS-wrapped real holdout, training.

Run ``.venv/bin/python -m bench.make_default_model --work /tmp/corpus --out models/minerscope-default``
(about 10 minutes on this 2-core machine, half of it generating the lab corpus, one
capture per core; ~23 GB of captures under ``--work``, reused on a second run). Every
step is a ``minerscope`` command, printed before it runs, so the recipe is the log:

1. ``lab generate`` with the seeds below: one 1-hour capture (120 slots) and eight
   2-hour captures (150 slots, half benign), every coin of the registry over TCP, TLS and
   WebSocket, plus three benign-heavy 2-hour captures with ``--web-mix`` (web and API
   sessions over TLS 1.3, TLS 1.2 and plain HTTP, as real networks carry them), and
   sixteen mining-heavy 2-hour captures (80 % mining) for the coin model alone
   (``train --coin-data``). The coin model needs sessions: with the first twelve alone
   it saw one to five sessions per coin of rarer scenarios (a refused login, a solo
   miner) and named the wrong coin for all of their test windows. Given to the binary
   model too, the same captures made it call short benign exchanges mining (8 of 859
   real benign flows instead of 1), so they stay out of it.
2. ``lab wrap-tls`` re-encrypts the real plaintext mining captures of
   ``../shared/datasets/real`` (CJ-Sniffer and nDPI's pool files) under TLS 1.3, so the
   real holdout also measures mining that stage 0 cannot read.
3. ``train --data LAB... ../shared/datasets/lab-real --holdout REAL --holdout WRAPPED``:
   the real captures are measured per source and never trained on, nor used for the
   threshold or early stopping.

Without ``../shared`` the holdout is skipped (the model still trains on the lab corpus).
"""

from __future__ import annotations

import argparse
import csv
import os
import shlex
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

SHARED = Path(__file__).resolve().parents[2] / "shared" / "datasets"
# (name, seed, hours, sessions, benign ratio, web mix, coin model only)
CORPUS = (
    [("lab-s11", 11, 1.0, 120, 0.5, False, False)]
    + [(f"lab-s{seed}", seed, 2.0, 150, 0.5, False, False) for seed in range(21, 29)]
    + [(f"lab-w{seed}", seed, 2.0, 150, 0.85, True, False) for seed in range(51, 54)]
    + [(f"lab-m{seed}", seed, 2.0, 150, 0.2, False, True) for seed in range(31, 47)]
)
# real plaintext pool captures worth re-encrypting (every CJ-Sniffer file, nDPI's pools)
NDPI_POOLS = {"mining.pcapng", "bitcoin.pcap", "monero.pcap", "ethereum.pcap", "jsonrpc.pcap"}
WRAP_SEED = 7


def run(args: list[str]) -> None:
    """Run one minerscope command, echoed first: the recipe is what this prints."""
    cmd = [sys.executable, "-m", "minerscope", *args]
    print("$ minerscope " + shlex.join(args), flush=True)
    subprocess.run(cmd, check=True)


def make_corpus(work: Path) -> list[tuple[Path, bool]]:
    """The lab captures (skipped when already there: same seed, same bytes).

    One ``lab generate`` per core at a time: each capture is its own seed and file, so the
    corpus is the same whatever the order they finish in.
    """
    out = work / "lab"
    labels = []
    todo = []
    for name, seed, hours, sessions, ratio, web, coin_only in CORPUS:
        label = out / f"{name}.labels.csv"
        if not label.exists():
            args = ["lab", "generate", "--out", str(out), "--seed", str(seed), "--hours", str(hours)]
            args += ["--sessions", str(sessions), "--benign-ratio", str(ratio), "--name", name]
            todo.append(args + (["--web-mix"] if web else []))
        labels.append((label, coin_only))
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        for done in [pool.submit(run, args) for args in todo]:
            done.result()
    return labels


def wrap_real(real: Path, work: Path) -> Path:
    """TLS 1.3 re-encryption of the real plaintext pool captures, as a manifest folder."""
    out = work / "real-tls"
    rows = list(csv.DictReader((real / "MANIFEST.csv").open()))
    ndpi_pools = {f"ndpi/{n}" for n in NDPI_POOLS}
    keep = [r for r in rows if r["path"].startswith("cj-sniffer/") or r["path"] in ndpi_pools]
    wrapped = []
    for row in keep:
        top, name = row["path"].split("/", 1)
        rel = f"{top}-tls/{Path(name).stem}.pcapng"
        if not (out / rel).exists():
            (out / rel).parent.mkdir(parents=True, exist_ok=True)
            run(["lab", "wrap-tls", "--seed", str(WRAP_SEED), str(real / row["path"]), str(out / rel)])
        wrapped.append({**row, "path": rel, "transport": "tls"})
    with (out / "MANIFEST.csv").open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(wrapped)
    flow_rows = list(csv.DictReader((real / "FLOW_LABELS.csv").open()))
    with (out / "FLOW_LABELS.csv").open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(flow_rows[0]))
        writer.writeheader()
        for row in flow_rows:
            top, _, rest = row["path"].partition("/")
            if top in ("cj-sniffer", "ndpi") and (rest == "*.pcap" or rest in NDPI_POOLS):
                rest = "*.pcapng" if rest == "*.pcap" else Path(rest).stem + ".pcapng"
                writer.writerow({**row, "path": f"{top}-tls/{rest}"})
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--work",
        type=Path,
        required=True,
        help="scratch folder for the corpus (~23 GB; reused when run again)",
    )
    ap.add_argument("--out", type=Path, default=Path("models/minerscope-default"))
    ap.add_argument("--seed", type=int, default=0, help="seed of the split and the boosters")
    ap.add_argument("--shared", type=Path, default=SHARED, help="../shared/datasets")
    args = ap.parse_args()
    labels = make_corpus(args.work)
    data = [str(p) for p, coin_only in labels if not coin_only]
    coin_data = [str(p) for p, coin_only in labels if coin_only]
    holdout: list[str] = []
    if (args.shared / "lab-real").is_dir():
        data.append(str(args.shared / "lab-real"))
    if (args.shared / "real" / "MANIFEST.csv").exists():
        holdout = [str(args.shared / "real"), str(wrap_real(args.shared / "real", args.work))]
    note = (
        "bench/make_default_model.py: lab s11 (1 h, 120 slots), s21-s28 (2 h, 150 slots), "
        "w51-w53 (2 h, 150 slots, 85% benign, --web-mix); lab-real; coin model only: m31-m46 "
        "(2 h, 150 slots, 20% benign); held out: datasets/real "
        f"and its TLS 1.3 re-encryption (wrap-tls --seed {WRAP_SEED})"
    )
    train = ["train", "--out", str(args.out), "--seed", str(args.seed), "--note", note, "--data", *data]
    for c in coin_data:  # one path per option: extra words would be --data
        train += ["--coin-data", c]
    for h in holdout:
        train += ["--holdout", h]
    run(train)


if __name__ == "__main__":
    main()
