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
    # base: enough benign sessions that validation can set a threshold that catches mining
    # (with 0.3 its one benign validation window outscored every miner: a refused model)
    for name, seed, benign in (("base", 5, "0.5"), ("coins", 6, "0.3")):
        res = runner.invoke(
            main,
            ["lab", "generate", "--out", str(tmp_path), "--seed", str(seed), "--hours", "0.25"]
            + ["--sessions", "24", "--benign-ratio", benign, "--name", name],
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


@pytest.fixture(scope="module")
def lab_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One small lab capture (54 flows, 0.3 s to make) and a second, tiny one of other flows."""
    from minerscope.lab.generate import LabConfig, generate

    out = tmp_path_factory.mktemp("labdata")
    generate(LabConfig(seed=5, hours=0.25, sessions=24), out, "base")
    generate(LabConfig(seed=6, hours=0.05, sessions=4), out, "other")
    return out


@pytest.fixture(scope="module")
def lab_model(lab_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    model = tmp_path_factory.mktemp("models") / "lab-small"
    res = CliRunner().invoke(
        main, ["train", "--data", str(lab_data / "base.labels.csv"), "--out", str(model), "--rounds", "5"]
    )
    assert res.exit_code == 0, res.output
    return model


def _error_lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.startswith("minerscope: error:")]


def test_train_never_replaces_a_folder_that_is_not_a_model(
    lab_data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = str(lab_data / "base.labels.csv")
    proj = tmp_path / "proj"
    (proj / "sub").mkdir(parents=True)
    (proj / "notes.txt").write_text("notes")
    (proj / "sub" / "y.txt").write_text("y")
    runner = CliRunner()
    res = runner.invoke(main, ["train", "--data", data, "--out", str(proj), "--rounds", "5"])
    assert res.exit_code == 4, res.output
    (line,) = _error_lines(res.output)
    assert str(proj) in line and "not empty" in line
    assert "training" not in res.output  # refused before the data was even read
    assert (proj / "notes.txt").read_text() == "notes" and (proj / "sub" / "y.txt").read_text() == "y"

    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    for out, what in ((".", "current directory"), (str(work), "current directory"), ("..", "above")):
        res = runner.invoke(main, ["train", "--data", data, "--out", out, "--rounds", "5"])
        assert res.exit_code == 4, res.output
        (line,) = _error_lines(res.output)
        assert what in line, line


def test_train_replaces_a_model_folder(lab_data: Path, lab_model: Path, tmp_path: Path) -> None:
    import shutil

    model = tmp_path / "m"
    shutil.copytree(lab_model, model)
    before = json.loads((model / "metadata.json").read_text())["created"]
    res = CliRunner().invoke(
        main,
        ["train", "--data", str(lab_data / "base.labels.csv"), "--out", str(model), "--rounds", "5"]
        + ["--seed", "1", "--note", "second"],
    )
    assert res.exit_code == 0, res.output
    meta = json.loads((model / "metadata.json").read_text())
    assert meta["data"]["note"] == "second" and meta["data"]["seed"] == 1 and before
    assert sorted(p.name for p in model.iterdir()) == ["binary.ubj", "coin.ubj", "metadata.json"]


def test_train_says_what_the_coin_model_falls_back_on_and_warns_of_few_benign_windows(
    lab_model: Path, lab_data: Path, tmp_path: Path
) -> None:
    res = CliRunner().invoke(
        main,
        ["train", "--data", str(lab_data / "base.labels.csv"), "--out", str(tmp_path / "m"), "--rounds", "5"],
    )
    assert res.exit_code == 0, res.output
    meta = json.loads((tmp_path / "m" / "metadata.json").read_text())
    n_bin = len(meta["binary"]["features"])
    assert meta["coin"]["selection"]["selected"] == 0  # this small capture: no coin feature survives
    coin_line = next(line for line in res.output.splitlines() if line.startswith("coin: 0/"))
    assert f"the coin model is trained on the binary model's {n_bin} features instead" in coin_line
    assert meta["coin"]["features"] == meta["binary"]["features"]
    assert "minerscope: warning: threshold" in res.output and "false-positive rate is unknown" in res.output


def test_damaged_captures_are_warned_about_and_exit_3(
    lab_data: Path, lab_model: Path, tmp_path: Path
) -> None:
    pytest.importorskip("sklearn")
    blob = (lab_data / "base.pcapng").read_bytes()
    (tmp_path / "cut.pcapng").write_bytes(blob[: len(blob) * 9 // 10])
    (tmp_path / "cut.labels.csv").write_bytes((lab_data / "base.labels.csv").read_bytes())
    data = str(tmp_path / "cut.labels.csv")
    runner = CliRunner()
    res = runner.invoke(main, ["train", "--data", data, "--out", str(tmp_path / "m"), "--rounds", "5"])
    assert res.exit_code == 3, res.output
    damaged = [line for line in res.output.splitlines() if "damaged at byte" in line]
    assert len(damaged) == 1 and damaged[0].startswith("minerscope: warning: ")
    assert "cut.pcapng" in damaged[0] and "kept the" in damaged[0]
    assert (tmp_path / "m" / "metadata.json").is_file() and "model written to" in res.output
    meta = json.loads((tmp_path / "m" / "metadata.json").read_text())
    assert len(meta["data"]["damaged"]) == 1

    res = runner.invoke(main, ["evaluate", "--data", data, "--model", str(lab_model)])
    assert res.exit_code == 3, res.output
    assert sum("damaged at byte" in line for line in res.output.splitlines()) == 1
    assert "Classifier comparison" in res.output  # the report is still produced


def test_labels_matching_no_flow_of_their_capture_are_named(lab_data: Path, tmp_path: Path) -> None:
    wrong = tmp_path / "wrong"
    wrong.mkdir()
    (wrong / "x.pcapng").write_bytes((lab_data / "other.pcapng").read_bytes())
    (wrong / "x.labels.csv").write_bytes((lab_data / "base.labels.csv").read_bytes())
    runner = CliRunner()
    good = str(lab_data / "base.labels.csv")
    res = runner.invoke(
        main,
        ["train", "--data", str(wrong / "x.pcapng"), good, "--out", str(tmp_path / "m"), "--rounds", "5"],
    )
    assert res.exit_code == 3, res.output
    expected = f"no flow of {wrong / 'x.pcapng'} matches a row of {wrong / 'x.labels.csv'}"
    assert sum(expected in line and "warning" in line for line in res.output.splitlines()) == 1
    assert (tmp_path / "m" / "metadata.json").is_file()
    # nothing else: nothing remains to train on
    res = runner.invoke(
        main, ["train", "--data", str(wrong / "x.pcapng"), "--out", str(tmp_path / "n"), "--rounds", "5"]
    )
    assert res.exit_code == 4, res.output
    (line,) = _error_lines(res.output)
    assert expected in line and "no labelled flow remains" in line
    assert not (tmp_path / "n").exists()


def test_evaluate_names_a_custom_model_and_what_each_classifier_trained_on(
    lab_data: Path, lab_model: Path
) -> None:
    pytest.importorskip("sklearn")
    res = CliRunner().invoke(
        main, ["evaluate", "--data", str(lab_data / "base.labels.csv"), "--model", str(lab_model)]
    )
    assert res.exit_code == 0, res.output
    assert "shipped" not in res.output
    assert "xgboost@lab-small " in res.output and "XGBoost at model lab-small's threshold" in res.output
    trained = [line for line in res.output.splitlines() if line.startswith("trained on:")]
    assert len(trained) == 1
    meta = json.loads((lab_model / "metadata.json").read_text())
    assert "six baselines on the train split above" in trained[0]
    assert f"model lab-small as trained ({meta['data']['windows']['train']} training windows)" in trained[0]
