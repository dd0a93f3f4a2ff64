"""``minerscope train`` / ``evaluate`` on real lab captures, and their error exits."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from minerscope.cli import main
from tests.conftest import REPO


@pytest.mark.realdata
def test_train_then_evaluate_on_lab_real(real_datasets: Path, tmp_path: Path) -> None:
    pytest.importorskip("sklearn")
    out = tmp_path / "lab-model"
    runner = CliRunner()
    result = runner.invoke(
        main, ["train", "--data", str(real_datasets / "lab-real"), "--out", str(out), "--rounds", "20"]
    )
    assert result.exit_code == 0, result.output
    assert "survive mann-whitney-u" in result.output
    assert "threshold " in result.output
    meta = json.loads((out / "metadata.json").read_text())
    assert meta["data"]["data"] == [str(real_datasets / "lab-real")]
    assert meta["binary"]["rounds"] <= 20

    result = runner.invoke(main, ["evaluate", "--data", str(real_datasets / "lab-real"), "--model", str(out)])
    assert result.exit_code == 0, result.output
    text = result.output
    for name in ("logistic-regression", "knn", "svm", "gaussian-nb", "gbm", "random-forest", "xgboost"):
        assert name in text
    assert "per source" in text and "lab-real" in text
    assert "per boosting round" in text


def test_train_without_data_is_a_usage_error(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["train", "--out", str(tmp_path / "m")])
    assert result.exit_code == 2


def test_bad_data_exits_4_with_one_line_on_stderr(tmp_path: Path) -> None:
    stray = tmp_path / "notes.txt"
    stray.write_text("not data")
    proc = subprocess.run(
        [sys.executable, "-m", "minerscope", "train", "--data", str(stray), "--out", str(tmp_path / "m")],
        capture_output=True,
        text=True,
        cwd=REPO,
    )
    assert proc.returncode == 4
    assert proc.stdout == ""
    errors = [line for line in proc.stderr.splitlines() if "error" in line]
    assert len(errors) == 1 and "not a manifest" in errors[0]


def test_evaluate_with_missing_model_exits_4(tmp_path: Path) -> None:
    data = tmp_path / "MANIFEST.csv"
    data.write_text("path,label\n")
    result = CliRunner().invoke(main, ["evaluate", "--data", str(data), "--model", str(tmp_path / "nope")])
    assert result.exit_code == 4


@pytest.mark.realdata
def test_holdout_is_measured_never_trained_on(real_datasets: Path, tmp_path: Path) -> None:
    pytest.importorskip("sklearn")
    runner = CliRunner()
    lab = tmp_path / "lab"
    res = runner.invoke(
        main,
        ["lab", "generate", "--out", str(lab), "--seed", "5", "--hours", "0.25", "--sessions", "24"],
    )
    assert res.exit_code == 0, res.output
    held = str(real_datasets / "lab-real")
    model = tmp_path / "m"
    res = runner.invoke(
        main,
        [
            "train",
            "--data",
            str(lab / "lab.labels.csv"),
            "--holdout",
            held,
            "--out",
            str(model),
            "--rounds",
            "20",
        ],
    )
    assert res.exit_code == 0, res.output
    meta = json.loads((model / "metadata.json").read_text())
    trained_on = {g for s in ("train", "val") for g in meta["data"]["groups"][s]}
    assert not any(g.startswith("lab-real/") for g in trained_on)
    assert meta["metrics"]["test_per_source_flows"]["lab-real"]["n"] > 0
    assert meta["data"]["holdout"] == [held]

    # the model never saw the held-out captures: it is measured as shipped
    res = runner.invoke(
        main, ["evaluate", "--data", str(lab / "lab.labels.csv"), "--holdout", held, "--model", str(model)]
    )
    assert res.exit_code == 0, res.output
    assert "retrained" not in res.output and "lab-real *" in res.output
    assert "held-out windows" in res.output  # the seven classifiers on the held-out data too

    # a model that trained on them is replaced by one retrained without them
    seen = tmp_path / "seen"
    res = runner.invoke(
        main, ["train", "--data", str(lab / "lab.labels.csv"), held, "--out", str(seen), "--rounds", "20"]
    )
    assert res.exit_code == 0, res.output
    res = runner.invoke(
        main, ["evaluate", "--data", str(lab / "lab.labels.csv"), "--holdout", held, "--model", str(seen)]
    )
    assert res.exit_code == 0, res.output
    assert "retrained without the held-out data" in res.output and "lab-real *" in res.output


def test_coin_data_serves_the_coin_model_only(tmp_path: Path) -> None:
    pytest.importorskip("sklearn")
    runner = CliRunner()
    for name, seed in (("base", 5), ("coins", 6)):
        res = runner.invoke(
            main,
            ["lab", "generate", "--out", str(tmp_path), "--seed", str(seed), "--hours", "0.25"]
            + ["--sessions", "24", "--benign-ratio", "0.3", "--name", name],
        )
        assert res.exit_code == 0, res.output
    base, coins = str(tmp_path / "base.labels.csv"), str(tmp_path / "coins.labels.csv")
    model = tmp_path / "m"
    res = runner.invoke(
        main, ["train", "--data", base, "--coin-data", coins, "--out", str(model), "--rounds", "10"]
    )
    assert res.exit_code == 0, res.output
    meta = json.loads((model / "metadata.json").read_text())
    coin_only = set(meta["data"]["coin_only_groups"])
    assert coin_only and all(g.startswith("lab:coins.pcapng:") for g in coin_only)
    assert meta["data"]["coin_data"] == [coins]
    groups = meta["data"]["groups"]
    assert coin_only <= {g for s in ("train", "val", "test") for g in groups[s]}
    # evaluate on both captures: the binary comparison leaves the coin-only groups out
    res = runner.invoke(main, ["evaluate", "--data", base, coins, "--model", str(model)])
    assert res.exit_code == 0, res.output
    binary_test = len([g for g in groups["test"] if g not in coin_only])
    found = re.search(r"split: train \d+ windows / \d+ groups, test \d+ windows / (\d+) groups", res.output)
    assert found and int(found.group(1)) == binary_test


def test_model_folder_name_reaches_the_terminal_inert(tmp_path: Path) -> None:
    """A model folder from someone else: evaluate's progress line quotes its name, and an
    escape sequence in that name must not reach the terminal."""
    import shutil

    model = tmp_path / "evil\x1b]0;owned\x07\x1b[2J"
    shutil.copytree(REPO / "models" / "minerscope-default", model)
    data = tmp_path / "MANIFEST.csv"
    data.write_text("path,label\n")
    proc = subprocess.run(
        [sys.executable, "-m", "minerscope", "evaluate", "--data", str(data), "--model", str(model)],
        capture_output=True,
        text=True,
        cwd=REPO,
    )
    assert "model evil\\x1b]0;owned\\x07\\x1b[2J: reading" in proc.stderr, proc.stderr
    assert "\x1b" not in proc.stderr + proc.stdout and "\x07" not in proc.stderr + proc.stdout


def test_reports_are_printed_line_by_line_inert(capsys: pytest.CaptureFixture[str]) -> None:
    from minerscope.cli.common import echo_report

    echo_report("coin classes: btc, x\x1b[31mmr\nper source\n  lab\u202eevil 0.9")
    out = capsys.readouterr().out
    assert out.splitlines() == ["coin classes: btc, x\\x1b[31mmr", "per source", "  lab\\u202eevil 0.9"]
