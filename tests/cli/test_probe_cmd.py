"""``minerscope probe`` and ``minerscope pool`` against real loopback emulators."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from minerscope.cli import main
from minerscope.cli.common import ExitCode
from minerscope.emulate.hostile import start_hostile
from minerscope.emulate.pool import start_pool
from minerscope.emulate.server import ThreadedServers
from tests.conftest import REPO

FAST = ["--timeout", "0.7", "--connect-timeout", "0.5"]


@pytest.fixture(scope="module")
def lab() -> Iterator[ThreadedServers]:
    with ThreadedServers() as servers:
        yield servers


def _run(*args: str) -> Any:
    return CliRunner().invoke(main, ["probe", *args], catch_exceptions=False)


def test_jsonl_has_the_documented_fields_and_inert_replies(lab: ThreadedServers) -> None:
    pool = lab.start(start_pool("xmrig", job_interval=0))
    evil = lab.start(start_hostile("invalid_utf8"))
    result = _run(f"{pool.host}:{pool.port}", f"{evil.host}:{evil.port}", "--format", "jsonl", *FAST)
    assert result.exit_code == ExitCode.OK, result.output
    records = {r["target"]: r for r in map(json.loads, result.stdout.splitlines())}
    found = records[f"{pool.host}:{pool.port}"]
    for key in ("target", "is_pool", "confidence", "dialect", "transport", "outcome", "evidence", "attempts"):
        assert key in found
    assert found["is_pool"] is True and found["dialect"] == "xmrig" and found["outcome"] == "success"
    attempt = next(a for a in found["attempts"] if a["dialect"] == "xmrig")
    assert '"method":"login"' in attempt["request"] and attempt["elapsed_s"] > 0 and attempt["reply"]
    hostile = records[f"{evil.host}:{evil.port}"]
    assert hostile["is_pool"] is False and hostile["outcome"] in ("none", "error")
    assert "\x1b" not in result.stdout and "\u202e" not in result.stdout
    assert "\\x1b" in result.stdout  # the escape sequence is shown, inert


def test_table_output_renders_peer_text_literally(lab: ThreadedServers) -> None:
    pool = lab.start(start_pool("stratum1", job_interval=0))
    evil = lab.start(start_hostile("invalid_utf8"))
    result = _run(f"{pool.host}:{pool.port}", f"{evil.host}:{evil.port}", "-v", *FAST)
    assert result.exit_code == ExitCode.OK, result.output
    assert "POOL" in result.stdout and "stratum1" in result.stdout
    assert "\x1b" not in result.stdout


def test_an_endpoint_nobody_answers_is_unreachable_not_cleared(lab: ThreadedServers) -> None:
    """A pool in an old capture may be gone: "no" would read as checked-and-clean."""
    import socket

    with socket.socket() as s:  # a loopback port that was free a moment ago
        s.bind(("127.0.0.1", 0))
        dead = f"127.0.0.1:{s.getsockname()[1]}"
    silent = lab.start(start_hostile("accept_silent"))
    result = _run(dead, f"{silent.host}:{silent.port}", *FAST)
    assert result.exit_code == ExitCode.OK, result.output
    rows = {line.split("│")[1].strip(): line for line in result.stdout.splitlines() if line.count("│") > 2}
    assert "unreachable" in rows[dead] and "refused" in rows[dead]
    alive = rows[f"{silent.host}:{silent.port}"]
    assert "unreachable" not in alive and "│ no " in alive


def test_out_of_scope_target_exits_4_and_sends_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    async def guard(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError(f"connection attempted: {args[:2]}")

    monkeypatch.setattr(asyncio, "open_connection", guard)
    monkeypatch.setattr(asyncio.BaseEventLoop, "create_connection", guard)
    result = _run("127.0.0.1:1", "192.0.2.1:3333", "--scope", "127.0.0.0/8")
    assert result.exit_code == ExitCode.INPUT
    assert "192.0.2.1" in result.stderr and "nothing was sent" in result.stderr
    assert result.stdout == ""


def test_default_scope_refuses_multicast() -> None:
    result = _run("239.255.255.250:1900")
    assert result.exit_code == ExitCode.INPUT and "never probed" in result.stderr


def test_target_file_errors_name_file_and_line(tmp_path: Path) -> None:
    targets = tmp_path / "targets.txt"
    targets.write_text("# pools\n127.0.0.1:3333\n\nnot-a-target\n")
    result = _run("--from", str(targets))
    assert result.exit_code == ExitCode.INPUT
    assert f"{targets}:4" in result.stderr


@pytest.mark.parametrize(
    "target", ["127.0.0.1:33\u00b2", "127.0.0.1:\u0663\u0663", "127.0.0.1:" + "9" * 5000]
)
def test_a_port_int_would_refuse_is_a_one_line_input_error(target: str) -> None:
    """str.isdigit() takes superscripts, Arabic-Indic digits and 5000 nines; int() does not."""
    result = _run(target)
    assert result.exit_code == ExitCode.INPUT, result.stderr
    assert "expected host:port" in result.stderr and "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_no_targets_is_a_usage_error() -> None:
    result = _run()
    assert result.exit_code == ExitCode.USAGE


def test_unknown_dialect_is_a_usage_error() -> None:
    """A bad option value is bad usage (exit 2, README's table), named with the known ones."""
    result = _run("127.0.0.1:1", "--dialect", "nope")
    assert result.exit_code == ExitCode.USAGE and "nope" in result.stderr and "xmrig" in result.stderr


def test_pool_command_serves_until_its_duration_and_is_found() -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "minerscope", "pool", "--dialect", "ethproxy", "--tls", "--duration", "20"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=REPO,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline().strip()
        assert line.startswith("listening stratum+ssl://127.0.0.1:"), line
        target = line.rsplit("//", 1)[1]
        result = _run(target, "--format", "jsonl", *FAST)
        record = json.loads(result.stdout)
        assert record["is_pool"] and record["dialect"] == "ethproxy" and record["transport"] == "tls"
        assert record["tls"]["certificate"]["self_signed"] is True
    finally:
        proc.terminate()
        _out, err = proc.communicate(timeout=10)
    assert proc.returncode == 0, err
    assert "stopped after" in err
    assert "listening" not in err and _out == ""  # where it listens is said once, on stdout


def test_pool_command_refuses_public_bind_and_bad_ws() -> None:
    runner = CliRunner()
    public = runner.invoke(main, ["pool", "--dialect", "xmrig", "--host", "0.0.0.0", "--duration", "0.1"])
    assert public.exit_code == ExitCode.INPUT and "loopback" in public.stderr
    ws = runner.invoke(main, ["pool", "--dialect", "xmrig", "--ws"])
    assert ws.exit_code == ExitCode.USAGE


def test_jsonl_of_a_target_that_could_not_be_checked_carries_the_error(lab: ThreadedServers) -> None:
    """A script filtering ``is_pool == false`` must not clear dead targets: the record says why
    it was not checked, in the words scan --probe uses."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead = f"127.0.0.1:{s.getsockname()[1]}"
    reset = lab.start(start_hostile("immediate_reset"))
    silent = lab.start(start_hostile("accept_silent"))
    targets = [dead, f"{reset.host}:{reset.port}", f"{silent.host}:{silent.port}"]
    result = _run(*targets, "--format", "jsonl", *FAST)
    assert result.exit_code == ExitCode.OK, result.output
    records = {r["target"]: r for r in map(json.loads, result.stdout.splitlines())}
    assert records[dead]["is_pool"] is False and records[dead]["error"].startswith("unreachable: refused")
    assert records[targets[1]]["error"].startswith("unreachable: reset")
    assert "error" not in records[targets[2]]  # alive and silent: checked, no pool
    table = _run(*targets[:2], *FAST)
    rows = [line for line in table.stdout.splitlines() if line.count("│") > 2]
    assert len(rows) == 2 and all("unreachable" in row for row in rows), table.stdout


def test_a_mining_service_not_confirmed_is_not_labelled_like_a_web_server(lab: ThreadedServers) -> None:
    daemon = lab.start(start_pool("bitcoind"))  # 401 realm="jsonrpc" without credentials
    sv2 = lab.start(start_pool("sv2"))
    targets = [f"{daemon.host}:{daemon.port}", f"{sv2.host}:{sv2.port}"]
    result = _run(*targets, *FAST)
    assert result.exit_code == ExitCode.OK, result.output
    rows = {line.split("│")[1].strip(): line for line in result.stdout.splitlines() if line.count("│") > 2}
    assert "daemon? (auth required)" in rows[targets[0]] and "│ no " not in rows[targets[0]]
    assert "possible pool (sv2)" in rows[targets[1]] and "│ no " not in rows[targets[1]]
    records = {
        r["target"]: r
        for r in map(json.loads, _run(*targets, "--format", "jsonl", *FAST).stdout.splitlines())
    }
    assert (
        records[targets[0]]["is_pool"] is False and records[targets[0]]["label"] == "daemon? (auth required)"
    )
    assert records[targets[1]]["is_pool"] is False and records[targets[1]]["label"] == "possible pool (sv2)"


@pytest.mark.parametrize("denied_host", ["127.0.0.4", "localhost"])
def test_a_denied_target_gets_a_record_and_the_others_are_probed(
    lab: ThreadedServers, monkeypatch: pytest.MonkeyPatch, denied_host: str
) -> None:
    """The same for an address and a name: every target given has a record, the denied one
    saying so, nothing sent to it, the batch probed on."""
    pool = lab.start(start_pool("stratum1", job_interval=0, host="127.0.0.2"))
    victim_host = "127.0.0.4" if denied_host == "127.0.0.4" else "127.0.0.1"
    victim = lab.start(start_pool("xmrig", job_interval=0, host=victim_host))  # behind the denied target
    denied, deny = f"{denied_host}:{victim.port}", f"{victim_host}/32"
    allowed = f"{pool.host}:{pool.port}"
    result = _run("--format", "jsonl", "--deny", deny, allowed, denied, *FAST)
    assert result.exit_code == ExitCode.OK, result.output
    records = {r["target"]: r for r in map(json.loads, result.stdout.splitlines())}
    assert set(records) == {allowed, denied}
    assert records[allowed]["is_pool"] is True
    assert records[denied]["is_pool"] is None and records[denied]["attempts"] == []
    assert records[denied]["error"].startswith(f"denied by --deny {deny}")
    assert victim.stats.connections == 0  # nothing was sent to it
    table = _run("--deny", deny, allowed, denied, *FAST)
    assert table.exit_code == ExitCode.OK
    row = next(line for line in table.stdout.splitlines() if denied in line)
    assert "not probed" in row and "denied by --deny" in row


def test_each_distinct_target_is_probed_once(lab: ThreadedServers, tmp_path: Path) -> None:
    pool = lab.start(start_pool("xmrig", job_interval=0))
    target = f"{pool.host}:{pool.port}"
    listed = tmp_path / "targets.txt"
    listed.write_text(f"{target}\n{target}\nstratum+tcp://{target}\n")
    result = _run(target, "--from", str(listed), "--format", "jsonl", "--dialect", "xmrig", *FAST)
    assert result.exit_code == ExitCode.OK, result.output
    assert [json.loads(line)["target"] for line in result.stdout.splitlines()] == [target]


def test_probe_records_its_verdicts_in_the_case_file_unless_no_store(
    lab: ThreadedServers, tmp_path: Path
) -> None:
    """As scan --probe: every verdict kept, a confirmed pool joins the blacklist."""
    from minerscope.store import open_store

    pool = lab.start(start_pool("xmrig", job_interval=0))
    silent = lab.start(start_hostile("accept_silent"))
    targets = [f"{pool.host}:{pool.port}", f"{silent.host}:{silent.port}"]
    db = tmp_path / "case.db"
    runner = CliRunner()
    result = runner.invoke(main, ["--db", str(db), "probe", *targets, "--dialect", "xmrig", *FAST])
    assert result.exit_code == ExitCode.OK, result.output
    with open_store(db) as store:
        assert {p["target"] for p in store.list_probes()} == set(targets)
        (confirmed,) = store.list_pools()
        assert (confirmed["host"], confirmed["port"]) == pool.target and confirmed["coin"] == "xmr"
    skipped = tmp_path / "untouched.db"
    result = runner.invoke(main, ["--db", str(skipped), "probe", targets[0], "--no-store", *FAST])
    assert result.exit_code == ExitCode.OK and not skipped.exists()


def test_spellings_of_one_address_are_one_target_in_its_standard_form(
    lab: ThreadedServers, tmp_path: Path
) -> None:
    """127.0.0.1 written five ways was probed five times and became five pools, one a
    "domain" indicator named 127.000.000.001."""
    from minerscope.store import open_store

    pool = lab.start(start_pool("xmrig", job_interval=0))
    assert pool.host == "127.0.0.1"
    spellings = [
        f"{h}:{pool.port}"
        for h in ("127.0.0.1", "127.000.000.001", "[::ffff:127.0.0.1]", "2130706433", "127.1")
    ]
    db = tmp_path / "case.db"
    result = CliRunner().invoke(
        main, ["--db", str(db), "probe", *spellings, "--format", "jsonl", "--dialect", "xmrig", *FAST]
    )
    assert result.exit_code == ExitCode.OK, result.output
    assert [json.loads(line)["target"] for line in result.stdout.splitlines()] == [f"127.0.0.1:{pool.port}"]
    with open_store(db) as store:
        assert [(p["host"], p["port"]) for p in store.list_pools()] == [("127.0.0.1", pool.port)]
        assert {i["kind"] for i in store.list_indicators()} <= {"ip", "ip_port"}


def test_a_closed_reader_still_leaves_the_pool_in_the_case_file(lab: ThreadedServers, tmp_path: Path) -> None:
    """``probe ... | true``: Rich answered the broken pipe with exit 1 ("a bug") and the
    case file, written after the table, never got the pool the probe had confirmed."""
    from minerscope.store import open_store

    pool = lab.start(start_pool("xmrig", job_interval=0))
    db = tmp_path / "case.db"
    with subprocess.Popen(
        [sys.executable, "-m", "minerscope", "--db", str(db), "probe", f"{pool.host}:{pool.port}"]
        + ["--dialect", "xmrig", "-q", *FAST],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    ) as proc:
        assert proc.stdout is not None and proc.stderr is not None
        proc.stdout.close()  # the reader is gone before the table is printed
        err = proc.stderr.read()
        code = proc.wait(timeout=120)
    assert code == 141, err
    assert err == b""
    with open_store(db) as store:
        assert [(p["host"], p["port"]) for p in store.list_pools()] == [pool.target]
