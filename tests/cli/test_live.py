"""``minerscope live`` on the loopback interface, with a real pool emulator and a real miner.

The pool emulators (:mod:`minerscope.emulate.pool`) and the xmrig-like miner
(:mod:`minerscope.emulate.miner`) talk over plaintext TCP and TLS on distinctive
127.x addresses; ``live`` captures them through its packet ring and BPF filter and must
print scan-shaped records with stage-0/stage-1 fields while they run. Capturing needs
root or CAP_NET_RAW: those tests skip without it, and the privilege test then checks the
message instead (as root it drops CAP_NET_RAW from the child's bounding set).
"""

from __future__ import annotations

import asyncio
import ctypes
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from minerscope.cli import main
from minerscope.cli.output import RECORD_FIELDS
from minerscope.emulate.miner import MinerStats, run_xmrig_miner
from minerscope.emulate.pool import start_pool
from minerscope.emulate.server import ThreadedServers
from minerscope.store import open_store
from tests.conftest import REPO

SNI = "pool.live-test.example"
CAP_SETPCAP, CAP_NET_RAW = 8, 13
PR_CAPBSET_DROP = 24


def capture_unavailable() -> str | None:
    """Why live capture cannot run here (None: it can)."""
    if not hasattr(socket, "AF_PACKET"):
        return "live capture needs Linux packet sockets"
    try:
        socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0).close()
    except PermissionError:
        return "live capture needs root or CAP_NET_RAW"
    try:
        from minerscope.capture.bpf import compile_bpf

        compile_bpf("tcp", 1)
    except Exception as exc:  # no libpcap: the tests filter by address
        return f"BPF filters need libpcap: {exc}"
    return None


_UNAVAILABLE = capture_unavailable()
needs_capture = pytest.mark.skipif(_UNAVAILABLE is not None, reason=str(_UNAVAILABLE))


def run_miners(
    targets: list[tuple[str, int, bool]],
    duration_s: float,
    stop: threading.Event | None = None,
    stats: list[MinerStats] | None = None,
    socks5: tuple[str, int] | None = None,
    http_proxy: tuple[str, int] | None = None,
) -> list[MinerStats]:
    """Run one miner per (host, port, tls) target, concurrently, for ``duration_s`` or until
    ``stop``; through the SOCKS 5 proxy ``socks5`` or the HTTP proxy ``http_proxy`` when given."""
    watched = stats if stats is not None else [MinerStats() for _ in targets]

    async def all_miners() -> list[MinerStats]:
        return list(
            await asyncio.gather(
                *(
                    run_xmrig_miner(
                        host,
                        port,
                        tls=tls,
                        server_name=SNI,
                        duration_s=duration_s,
                        share_interval_s=0.2,
                        stop=stop,
                        stats=watched[i],
                        socks5=socks5,
                        http_proxy=http_proxy,
                    )
                    for i, (host, port, tls) in enumerate(targets)
                )
            )
        )

    return asyncio.run(all_miners())


class MinersInBackground:
    """Miners on a thread until :meth:`stop` (so a test can wait for verdicts while they mine)."""

    def __init__(
        self,
        targets: list[tuple[str, int, bool]],
        longest_s: float = 60.0,
        socks5: tuple[str, int] | None = None,
        http_proxy: tuple[str, int] | None = None,
    ) -> None:
        self.stop_event = threading.Event()
        # (the server a capture sees: the proxy, when there is one)
        self.servers = [socks5 or http_proxy or (host, port) for host, port, _tls in targets]
        self.stats = [MinerStats() for _ in targets]
        self.thread = threading.Thread(
            target=run_miners,
            args=(targets, longest_s, self.stop_event, self.stats, socks5, http_proxy),
            daemon=True,
        )
        self.thread.start()

    @property
    def running(self) -> bool:
        return self.thread.is_alive()

    def records_each(self, records: list[dict[str, Any]]) -> int:
        """The fewest records any of the miners' sessions (by 4-tuple) has so far."""
        ports = [s.local_port for s in self.stats]
        if not all(ports):
            return 0
        return min(
            sum((r["sport"], r["dst"], r["dport"]) == (port, *server) for r in records)
            for port, server in zip(ports, self.servers, strict=True)
        )

    def stop(self) -> list[MinerStats]:
        self.stop_event.set()
        self.thread.join(30)
        return self.stats


def _wait_for_line(stream: Any, needle: str, timeout: float) -> str:
    """Read lines of ``stream`` until one contains ``needle`` (the text so far is returned)."""
    seen: list[str] = []
    done = threading.Event()

    def reader() -> None:
        for line in stream:
            seen.append(line)
            if needle in line:
                done.set()
                return

    threading.Thread(target=reader, daemon=True).start()
    assert done.wait(timeout), f"no {needle!r} within {timeout} s: {''.join(seen)!r}"
    return "".join(seen)


def eager_model(tmp_path: Path) -> Path:
    """The shipped model at a low operating threshold: stage 1 then flags the seconds-long test
    sessions (the real threshold is tuned for 300 s windows), so ``--probe`` has work."""
    from minerscope import resources

    model = tmp_path / "eager-model"
    shutil.copytree(resources.models_dir() / "minerscope-default", model)
    meta = json.loads((model / "metadata.json").read_text())
    meta["binary"]["threshold"] = 0.01
    (model / "metadata.json").write_text(json.dumps(meta))
    return model


class LiveRun:
    """A running ``minerscope live``, its JSONL lines collected (with arrival times) as they come."""

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        self.proc = proc
        self.lines: list[tuple[float, str]] = []
        self.reader = threading.Thread(
            target=lambda: self.lines.extend((time.monotonic(), line) for line in proc.stdout or ()),
            daemon=True,
        )
        self.reader.start()

    def records(self) -> list[dict[str, Any]]:
        return [json.loads(line) for _, line in list(self.lines)]

    def until_windows(self, miners: MinersInBackground, windows: int = 2, within: float = 60) -> bool:
        """Wait until every miner's session has ``windows`` records; whether they still mine."""
        deadline = time.monotonic() + within
        while time.monotonic() < deadline and miners.running:
            if miners.records_each(self.records()) >= windows:
                break
            time.sleep(0.1)
        return miners.running

    def interrupt(self) -> float:
        """Ctrl-C (after the last packets settled): the wall time it was sent; the run must end cleanly."""
        time.sleep(0.3)
        sent = time.time()
        self.proc.send_signal(signal.SIGINT)
        assert self.proc.wait(timeout=60) == 0, self.proc.stderr.read() if self.proc.stderr else ""
        self.reader.join(10)
        return sent


@contextmanager
def live_probing(tmp_path: Path, db: Path, bpf: str) -> Iterator[LiveRun]:
    """``minerscope live -i lo --probe`` with 1 s windows and the eager model, once it captures."""
    proc = subprocess.Popen(
        [
            sys.executable, "-m", "minerscope", "--db", str(db), "live",
            "-i", "lo", "--bpf", bpf,
            "--window", "1", "--idle-timeout", "1", "--model", str(eager_model(tmp_path)),
            "--probe", "--probe-timeout", "10",
        ],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO,
    )  # fmt: skip
    try:
        _wait_for_line(proc.stderr, "capturing on lo", timeout=180)
        yield LiveRun(proc)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        for pipe in (proc.stdout, proc.stderr):
            if pipe is not None:
                pipe.close()


@pytest.mark.slow
@needs_capture
def test_live_prints_verdicts_for_plaintext_and_tls_miners_as_they_run(tmp_path: Path) -> None:
    db = tmp_path / "case.sqlite"
    with ThreadedServers() as lab:
        plain = lab.start(start_pool("xmrig", host="127.77.0.1", port=0, job_interval=0.5))
        tls = lab.start(start_pool("xmrig", host="127.77.0.2", port=0, tls=True, job_interval=0.5))
        with live_probing(tmp_path, db, "host 127.77.0.1 or host 127.77.0.2") as live:
            # a connection still open at Ctrl-C must still be reported
            with socket.create_connection(plain.target) as idle:
                idle_port = idle.getsockname()[1]
                idle.sendall(b'{"id":1,"jsonrpc":"2.0","method":"login","params":{"login":"x","pass":"x"}}\n')
                miners = MinersInBackground([(*plain.target, False), (*tls.target, True)])
                # verdicts are printed while the sessions run: two windows of each, then stop them
                still_mining = live.until_windows(miners)
                stats = miners.stop()
                interrupted_wall = live.interrupt()
    assert all(s.logged_in and s.accepted >= 3 for s in stats), stats
    plain_miner, tls_miner = (s.local_port for s in stats)

    records = live.records()
    assert records and all(list(r) == list(RECORD_FIELDS) for r in records)
    for r in records:
        assert (r["dst"], r["dport"]) in (plain.target, tls.target), r
        assert r["capture"] == "lo" and r["proto"] == 6 and r["src"] == "127.0.0.1", r
        assert isinstance(r["p_mining"], float) and 0.0 <= r["p_mining"] <= 1.0
        assert r["stage1"] in ("mining", "benign", "unscored") and r["verdict"] in ("mining", "benign")
        # a window with fewer application messages than the model's minimum (the handshake
        # alone, the idle connection's two jobs a second) is left unscored
        if r["window"] is None:
            assert r["p_mining"] == 0.0 and r["stage1"] == "unscored" and not r["top_features"], r
        else:
            assert r["window"] == 0 and r["top_features"], r
    # (the prober's own connections to the pools are on the wire too: only the sessions are
    # checked, each by its whole 4-tuple: Linux hands the same ephemeral port to connections
    # to different servers, and a CI run once saw a probe of the TLS pool leave from the
    # plaintext miner's port)
    session = {
        port: [r for r in records if (r["sport"], r["dst"], r["dport"]) == (port, *target)]
        for port, target in ((plain_miner, plain.target), (tls_miner, tls.target), (idle_port, plain.target))
    }
    # the idle connection (jobs pushed to it every 0.5 s) was still open at SIGINT: its last
    # window, however few packets it holds, can only have been printed by the final flush
    assert max(r["last_seen"] for r in session[idle_port]) > interrupted_wall - 1.5, session[idle_port]
    # (on a starved machine a session's first window may close before its first payload: the
    # TCP handshake alone, three packets, with nothing to recognise)
    session = {port: [r for r in rs if r["packets"] > 3] for port, rs in session.items()}
    # plaintext Stratum: stage 0 recognises the xmrig dialect in every window, so the verdict is mining
    for r in session[plain_miner] + session[idle_port]:
        assert r["sni"] == "", r
        assert [e["kind"] for e in r["stage0"]] == ["stratum"], r
        assert r["stage0"][0]["dialect"] == "xmrig" and r["verdict"] == "mining", r
    # TLS: the SNI of the ClientHello, in every window of the session, and no cleartext evidence
    assert all(r["sni"] == SNI and r["stage0"] == [] for r in session[tls_miner]), session
    # (the test waited for two windows of each session, at most one of them handshake-only)
    assert len(session[plain_miner]) >= 1 and len(session[tls_miner]) >= 1, session
    # (and the miners' sessions, several messages a second, were scored)
    assert all(any(r["window"] == 0 for r in session[port]) for port in (plain_miner, tls_miner)), session
    # verdicts were printed while the miners ran, not at the end
    assert still_mining, stats
    # --probe: stage 1 flagged both pools; the background prober confirmed each in its transport,
    # reprinted the endpoint's record with the outcome, and recorded it in the case file
    for pool, transport in ((plain, "tcp"), (tls, "tls")):
        probes = [r["probe"] for r in records if (r["dst"], r["dport"]) == pool.target and r["probe"]]
        assert probes and probes[-1]["is_pool"] is True, probes
        assert probes[-1]["dialect"] == "xmrig" and probes[-1]["transport"] == transport
    with open_store(db) as store:
        confirmed = {(p["host"], p["port"], p["transport"]) for p in store.list_pools()}
        # the session is a capture of the case file, holding every printed window with its score
        (capture,) = [c for c in store.list_captures() if c["path"] == "live:lo"]
        stored = store.rows(
            "SELECT f.sport, f.first_seen, s.p_mining FROM flows f JOIN flow_scores s ON s.flow_id = f.id"
            " WHERE f.capture_id = ?",
            (capture["id"],),
        )
    assert confirmed == {(*plain.target, "tcp"), (*tls.target, "tls")}
    assert capture["packets"] > 0 and capture["first_ts"] <= capture["last_ts"]
    # (JSONL rounds p_mining to 6 decimals; the case file keeps it whole)
    printed = {(r["sport"], round(r["first_seen"], 6)): r["p_mining"] for r in records}
    kept = {(r["sport"], round(r["first_seen"], 6)): r["p_mining"] for r in stored}
    assert kept.keys() == printed.keys()
    assert all(abs(kept[k] - printed[k]) <= 1e-6 for k in kept), (kept, printed)


def _free_port(host: str) -> int:
    with socket.socket() as probe:
        probe.bind((host, 0))
        return int(probe.getsockname()[1])


def _start_proxy(argv: list[str], host: str, port: int) -> subprocess.Popen[bytes]:
    """A real proxy (Debian's microsocks or tinyproxy) on ``host:port``, once it accepts."""
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 10
    while True:
        try:
            socket.create_connection((host, port), timeout=1).close()
            return proc
        except OSError:
            if time.monotonic() > deadline or proc.poll() is not None:
                proc.kill()
                raise
            time.sleep(0.05)


def _microsocks(host: str, port: int, _tmp: Path) -> list[str]:
    return ["microsocks", "-i", host, "-p", str(port)]


def _tinyproxy(host: str, port: int, tmp: Path) -> list[str]:
    """tinyproxy in the foreground; no ConnectPort line, so CONNECT may reach any port."""
    conf = tmp / "tinyproxy.conf"
    conf.write_text(
        f"Port {port}\nListen {host}\nTimeout 60\nMaxClients 20\nAllow 127.0.0.0/8\n"
        "LogLevel Error\nDisableViaHeader Yes\n"
    )
    return ["tinyproxy", "-d", "-c", str(conf)]


PROXIES = [
    pytest.param(
        "socks5",
        _microsocks,
        marks=pytest.mark.skipif(shutil.which("microsocks") is None, reason="needs Debian's microsocks"),
        id="socks5-microsocks",
    ),
    pytest.param(
        "http",
        _tinyproxy,
        marks=pytest.mark.skipif(shutil.which("tinyproxy") is None, reason="needs Debian's tinyproxy"),
        id="http-connect-tinyproxy",
    ),
]


@pytest.mark.slow
@needs_capture
@pytest.mark.parametrize(("kind", "command"), PROXIES)
def test_live_follows_a_miner_through_a_proxy_to_its_pool(
    tmp_path: Path, kind: str, command: Callable[[str, int, Path], list[str]]
) -> None:
    """A miner set to use a proxy (XMRig's ``socks5``, or HTTP CONNECT through a corporate
    proxy) talks only to the proxy; the sensor sees that leg alone. The records name the
    pool behind the proxy, stage 1 scores the TLS inside the tunnel (after tinyproxy's
    "200 Connection established" head), and --probe checks (and confirms) the pool, not
    the proxy."""
    db = tmp_path / "case.sqlite"
    host = "127.77.0.6"
    port = _free_port(host)
    proxy = (host, port)
    proxy_proc = _start_proxy(command(host, port, tmp_path), host, port)
    via = {"socks5": proxy} if kind == "socks5" else {"http_proxy": proxy}
    try:
        with ThreadedServers() as lab:
            pool = lab.start(start_pool("xmrig", host="127.77.0.5", port=0, tls=True, job_interval=0.5))
            with live_probing(tmp_path, db, f"host {proxy[0]} and tcp port {proxy[1]}") as live:
                miners = MinersInBackground([(*pool.target, True)], **via)
                live.until_windows(miners)
                (stats,) = miners.stop()
                live.interrupt()
    finally:
        proxy_proc.kill()
        proxy_proc.wait()
    assert stats.logged_in and stats.accepted >= 3, stats
    records = live.records()
    session = [r for r in records if (r["sport"], r["dst"], r["dport"]) == (stats.local_port, *proxy)]
    assert session and all(r["dst"] == proxy[0] for r in records), records
    # every window of the session names the pool behind the proxy, and the SNI inside the tunnel
    assert all((r["proxy_host"], r["proxy_port"]) == pool.target for r in session), session
    assert all(r["sni"] == SNI and r["stage0"] == [] for r in session), session
    assert any(r["window"] == 0 and r["stage1"] == "mining" for r in session), session
    probes = [r["probe"] for r in records if r["probe"]]
    assert probes and probes[-1]["is_pool"] is True and probes[-1]["transport"] == "tls", probes
    with open_store(db) as store:
        confirmed = {(p["host"], p["port"], p["transport"]) for p in store.list_pools()}
        proxied = store.rows("SELECT DISTINCT dst, dport, proxy_host, proxy_port FROM flows")
    assert confirmed == {(*pool.target, "tls")}  # the pool, never the proxy
    assert {tuple(r.values()) for r in proxied} == {(*proxy, *pool.target)}


def _has_capability(bit: int) -> bool:
    status = Path("/proc/self/status").read_text()
    effective = next(line.split()[1] for line in status.splitlines() if line.startswith("CapEff:"))
    return bool(int(effective, 16) >> bit & 1)


def _drop_cap_net_raw() -> None:  # runs in the child between fork and exec
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_CAPBSET_DROP, CAP_NET_RAW, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP)")


def test_live_without_capture_privilege_says_what_is_needed(tmp_path: Path) -> None:
    root = os.geteuid() == 0
    if not root and _UNAVAILABLE is None:
        pytest.skip("this process can capture without root (file capabilities): nothing to drop")
    if root and not _has_capability(CAP_SETPCAP):
        pytest.skip("cannot drop CAP_NET_RAW for the child (no CAP_SETPCAP)")
    result = subprocess.run(
        [sys.executable, "-m", "minerscope", "--db", str(tmp_path / "c.sqlite"), "live", "-i", "lo"],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=60,
        preexec_fn=_drop_cap_net_raw if root else None,
    )
    assert result.returncode == 4, result.stderr
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, lines
    assert "root or the CAP_NET_RAW capability" in lines[0] and "setcap cap_net_raw" in lines[0]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["-i", "no-such-if0"], "no network interface named 'no-such-if0'"),
        (["-i", "any", "--promisc"], "'any' cannot be put in promiscuous mode"),
        (["-i", "lo", "--bpf", "port not-a-port"], "--bpf 'port not-a-port'"),
    ],
)
def test_live_rejects_bad_input_in_one_line(args: list[str], message: str, tmp_path: Path) -> None:
    if "--bpf" in args and "libpcap" in (_UNAVAILABLE or ""):
        pytest.skip("needs libpcap")
    result = CliRunner().invoke(main, ["--db", str(tmp_path / "c.sqlite"), "live", *args])
    assert result.exit_code == 4, result.output
    assert message in result.stderr and result.stderr.count("\n") == 1


def test_live_workstation_refuses_probe_flag_instead_of_ignoring_it(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        main, ["--db", str(tmp_path / "c.sqlite"), "live", "-i", "lo", "--tui", "--probe"]
    )
    assert result.exit_code == 2, result.output
    assert "--probe is for the headless stream" in result.stderr


@pytest.mark.parametrize("probe", [[], ["--probe"]])
def test_live_refuses_a_file_that_is_no_case_file_before_capturing(tmp_path: Path, probe: list[str]) -> None:
    junk = tmp_path / "notes.sqlite"
    junk.write_bytes(b"just some notes, not SQLite\n")
    result = CliRunner().invoke(main, ["--db", str(junk), "live", "-i", "lo", "--duration", "1", *probe])
    assert result.exit_code == 4, result.output
    assert "not a minerscope case file (not an SQLite database)" in result.stderr
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.output
    assert junk.read_bytes() == b"just some notes, not SQLite\n"


@needs_capture
@pytest.mark.parametrize("probe", [[], ["--probe", "--probe-timeout", "5"]])
def test_headless_live_shows_the_flow_cache_on_a_terminal_beside_the_records(
    tmp_path: Path, probe: list[str]
) -> None:
    """stderr on a terminal, records piped away: a status line counts packets and open flows
    (and, with --probe, the endpoints probed)."""
    import re

    from tests.terminal import PseudoTerminal

    host = "127.79.0.7"
    with socket.create_server((host, 0)) as server, PseudoTerminal(24, 120) as term:
        port = server.getsockname()[1]
        proc = subprocess.Popen(
            [sys.executable, "-m", "minerscope", "--db", str(tmp_path / "c.sqlite"), "live", "-i", "lo",
             "--bpf", f"host {host} and port {port}", "--duration", "6", *(probe or ["--no-store"])],
            stdout=subprocess.PIPE, stderr=term.slave, cwd=REPO, env={**os.environ, "TERM": "xterm-256color"},
        )  # fmt: skip
        term.attach(proc)
        deadline = time.monotonic() + 180
        while "capturing on lo" not in term.text():
            assert time.monotonic() < deadline and proc.poll() is None, term.text()[-500:]
            term.read(0.2)
        with socket.create_connection((host, port)) as client, server.accept()[0] as conn:
            client.sendall(b"hello\n")
            conn.recv(16)
            held = time.monotonic() + 2.5  # open across two status updates
            while time.monotonic() < held:
                term.read(0.2)
        while proc.poll() is None:
            term.read(0.2)
        term.read(0.2)
    text = term.text()
    assert proc.returncode == 0, text[-800:]
    assert re.search(r"lo: [1-9][0-9]* pkts · 1 open flow · 0 scored", text), text[-800:]
    assert ("endpoints probed" in text) == bool(probe), text[-800:]
    assert proc.stdout is not None
    with proc.stdout:
        records = [json.loads(line) for line in proc.stdout.read().splitlines()]
    assert [(r["dst"], r["dport"]) for r in records] == [(host, port)]
