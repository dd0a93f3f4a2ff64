"""Real server software on 127.0.0.1 for the prober to meet: solo-mining daemons and
benign services that speak other protocols.

Each :class:`Service` is a Debian package's own binary started in a private temporary
directory on free loopback ports, and stopped (then killed) at teardown. The daemons are
kept off every network but loopback by their own switches: monerod ``--offline`` (no
peers, no DNS checkpoints, no update check, no UPnP); litecoind ``-dnsseed=0
-discover=0``, listening on loopback only, its peer node allowed to connect to it alone
(``-connect``). Traced with ``strace -f -e connect`` through start-up and a whole probe,
monerod and the first litecoind made no connection at all, the peer node only its two to
127.0.0.1. ``HOME`` points into the temporary directory too, so nothing is written to the
user's (Debian's ``litecoind`` wrapper creates ``~/.litecoin`` otherwise).

A missing binary skips its tests with the package to install; ``.ci/run`` installs them
all, so CI runs every one.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from minerscope.emulate.server import default_cert

START_TIMEOUT_S = 120.0
"""monerod's first start creates its LMDB store: ~8 s on a 2-core VM, more on a busy one."""


@dataclass(frozen=True, slots=True)
class Service:
    """A real server: how to start it and the loopback ports it serves (name -> port)."""

    name: str
    argv: tuple[str, ...]
    ports: dict[str, int]
    workdir: Path
    files: dict[str, Path] = field(default_factory=dict)
    companions: tuple[tuple[str, ...], ...] = ()
    """Processes that run beside it (a peer node), started and stopped with it."""

    @property
    def log(self) -> Path:
        return self.workdir / f"{self.name}.log"


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def binary(*names: str) -> str | None:
    """The first of ``names`` that exists (absolute) or is on PATH."""
    for name in names:
        found = name if os.path.isabs(name) and os.access(name, os.X_OK) else shutil.which(name)
        if found:
            return found
    return None


def _tls_files(workdir: Path) -> tuple[Path, Path]:
    cert = default_cert()
    cert_path, key_path = workdir / "cert.pem", workdir / "key.pem"
    cert_path.write_bytes(cert.cert_pem)
    key_path.write_bytes(cert.key_pem)
    key_path.chmod(0o600)
    return cert_path, key_path


def monerod(workdir: Path) -> Service | None:
    """monerod in regtest, offline, fixed difficulty 1: it builds block templates at once."""
    exe = binary("monerod")
    if exe is None:
        return None
    rpc, p2p = free_port(), free_port()
    argv = (
        exe, "--regtest", "--offline", "--fixed-difficulty", "1", "--non-interactive",
        "--no-igd", "--no-zmq", "--disable-dns-checkpoints", "--check-updates", "disabled",
        "--data-dir", str(workdir / "monerod"), "--log-level", "0",
        "--rpc-bind-ip", "127.0.0.1", "--rpc-bind-port", str(rpc),
        "--p2p-bind-ip", "127.0.0.1", "--p2p-bind-port", str(p2p),
    )  # fmt: skip
    return Service("monerod", argv, {"rpc": rpc}, workdir)


def litecoind(workdir: Path) -> Service | None:
    """litecoind in regtest with its RPC server (cookie auth), and a second node as its only
    peer: Litecoin Core hands out block templates only to a node with a peer and out of
    initial sync (:func:`litecoin_rpc` mines the blocks that end it)."""
    exe = binary("/usr/lib/litecoin/litecoind", "litecoind")
    if exe is None:
        return None
    rpc, p2p = free_port(), free_port()
    node, peer = workdir / "litecoin", workdir / "litecoin-peer"
    node.mkdir()
    peer.mkdir()
    offline = ("-regtest", "-printtoconsole=0", "-dnsseed=0", "-upnp=0", "-discover=0", "-listenonion=0")
    argv = (
        exe, *offline, f"-datadir={node}", "-server=1", "-rpcbind=127.0.0.1", "-rpcallowip=127.0.0.1",
        f"-rpcport={rpc}", "-connect=0", "-listen=1", f"-bind=127.0.0.1:{p2p}",
    )  # fmt: skip
    peer_argv = (exe, *offline, f"-datadir={peer}", "-server=0", f"-connect=127.0.0.1:{p2p}", "-listen=0")
    return Service(
        "litecoind", argv, {"rpc": rpc}, workdir, {"cookie": node / "regtest" / ".cookie"}, (peer_argv,)
    )


def cookie_credentials(service: Service) -> tuple[str, str]:
    """The (user, password) of litecoind's RPC cookie file."""
    user, password = service.files["cookie"].read_text().strip().split(":", 1)
    return user, password


def litecoin_rpc(service: Service, method: str, *params: object) -> object:
    """Call the litecoind node's RPC with its cookie; the ``result`` (AssertionError on an error)."""
    user, password = cookie_credentials(service)
    body = {"jsonrpc": "1.0", "id": 1, "method": method, "params": list(params)}
    reply = httpx.post(
        f"http://127.0.0.1:{service.ports['rpc']}/",
        json=body,
        auth=(user, password),
        timeout=30,
        trust_env=False,
    ).json()
    assert reply["error"] is None, reply["error"]
    return reply["result"]


def nginx(workdir: Path) -> Service | None:
    """nginx serving a static page over HTTP and HTTPS."""
    exe = binary("nginx", "/usr/sbin/nginx")
    if exe is None:
        return None
    http, https = free_port(), free_port()
    cert, key = _tls_files(workdir)
    (workdir / "www").mkdir()
    (workdir / "www" / "index.html").write_text("<html><body>hello</body></html>\n")
    temp = workdir / "nginx-temp"
    temp.mkdir()
    temps = " ".join(
        f"{kind}_temp_path {temp};" for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    conf = workdir / "nginx.conf"
    # as root, workers would switch to 'nobody' and could not read the private temp dir
    user = "user root root;" if os.geteuid() == 0 else ""
    conf.write_text(
        f"{user} daemon off; pid {workdir}/nginx.pid; error_log {workdir}/nginx-error.log;\n"
        "events {}\n"
        f"http {{ access_log off; {temps}\n"
        f"  server {{ listen 127.0.0.1:{http}; root {workdir}/www; }}\n"
        f"  server {{ listen 127.0.0.1:{https} ssl; ssl_certificate {cert}; ssl_certificate_key {key};"
        f" root {workdir}/www; }}\n}}\n"
    )
    return Service("nginx", (exe, "-c", str(conf), "-e", str(workdir / "nginx-error.log")),
                   {"http": http, "https": https}, workdir)  # fmt: skip


def redis(workdir: Path) -> Service | None:
    """redis-server without persistence."""
    exe = binary("redis-server")
    if exe is None:
        return None
    port = free_port()
    argv = (exe, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
            "--dir", str(workdir))  # fmt: skip
    return Service("redis", argv, {"resp": port}, workdir)


def mosquitto(workdir: Path) -> Service | None:
    """mosquitto with an MQTT listener and an MQTT-over-TLS listener (anonymous)."""
    exe = binary("mosquitto", "/usr/sbin/mosquitto")
    if exe is None:
        return None
    mqtt, mqtts = free_port(), free_port()
    cert, key = _tls_files(workdir)
    conf = workdir / "mosquitto.conf"
    conf.write_text(
        # as root it would drop to user 'mosquitto', which cannot read the private temp dir
        ("user root\n" if os.geteuid() == 0 else "") + "persistence false\nlog_dest stderr\n"
        f"listener {mqtt} 127.0.0.1\nallow_anonymous true\n"
        f"listener {mqtts} 127.0.0.1\ncertfile {cert}\nkeyfile {key}\n"
    )
    return Service("mosquitto", (exe, "-c", str(conf)), {"mqtt": mqtt, "mqtts": mqtts}, workdir)


def sshd(workdir: Path) -> Service | None:
    """OpenSSH's sshd (it speaks first: its banner), with a fresh host key."""
    exe = binary("/usr/sbin/sshd")
    keygen = binary("ssh-keygen")
    if exe is None or keygen is None:
        return None
    if os.geteuid() == 0:
        # root's sshd insists on its privilege-separation directory, as the ssh unit makes it
        os.makedirs("/run/sshd", mode=0o755, exist_ok=True)
    key = workdir / "ssh_host_ed25519_key"
    subprocess.run([keygen, "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    port = free_port()
    argv = (exe, "-D", "-e", "-f", "/dev/null", "-h", str(key), "-p", str(port),
            "-o", "ListenAddress=127.0.0.1", "-o", "PidFile=none")  # fmt: skip
    return Service("sshd", argv, {"ssh": port}, workdir)


def _accepting(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


def _start(service: Service, argv: tuple[str, ...], log_path: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "HOME": str(service.workdir)}
    with open(log_path, "wb") as log:
        return subprocess.Popen(
            argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
            env=env, cwd=service.workdir, start_new_session=True,
        )  # fmt: skip


def _wait_listening(service: Service, proc: subprocess.Popen[bytes], deadline: float) -> None:
    """Return once every port of ``service`` accepts; AssertionError naming the service and
    the end of its log when it exits first or ``deadline`` (monotonic) passes."""
    waiting = dict(service.ports)
    while waiting:
        if proc.poll() is not None:
            raise AssertionError(f"{service.name} exited ({proc.returncode}): {_tail(service.log)}")
        if time.monotonic() > deadline:
            raise AssertionError(f"{service.name} not listening on {waiting} after {START_TIMEOUT_S:.0f} s")
        waiting = {name: port for name, port in waiting.items() if not _accepting(port)}
        if waiting:
            time.sleep(0.1)


def _stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def _tail(path: Path, lines: int = 5) -> str:
    text = path.read_text(errors="replace") if path.exists() else ""
    return " | ".join(text.strip().splitlines()[-lines:])


@contextmanager
def all_running(workdir: Path) -> Iterator[dict[str, Service]]:
    """Every service whose binary is installed, each in its own folder under ``workdir``,
    started together and stopped at exit. Yields name -> service; a name missing from it
    is not installed (:data:`PACKAGES` says what brings it)."""
    with ExitStack() as stack:
        started: list[tuple[Service, subprocess.Popen[bytes]]] = []
        for make in (monerod, litecoind, nginx, redis, mosquitto, sshd):
            folder = workdir / make.__name__
            folder.mkdir()
            service = make(folder)
            if service is not None:
                proc = _start(service, service.argv, service.log)
                stack.callback(_stop, proc)
                started.append((service, proc))
                for k, argv in enumerate(service.companions):
                    stack.callback(_stop, _start(service, argv, folder / f"companion-{k}.log"))
        deadline = time.monotonic() + START_TIMEOUT_S
        for service, proc in started:
            _wait_listening(service, proc, deadline)
        yield {service.name: service for service, _ in started}


PACKAGES = {"monerod": "monero", "litecoind": "litecoind", "nginx": "nginx-light", "redis": "redis-server",
            "mosquitto": "mosquitto", "sshd": "openssh-server"}  # fmt: skip
"""The Debian package that brings each service (what a skip asks to install)."""
