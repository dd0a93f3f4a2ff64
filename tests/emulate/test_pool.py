"""Pool emulators speak their dialect like real pool software: a miner's side of each
conversation, built with the dialect modules' miner-side builders, over real sockets."""

from __future__ import annotations

import asyncio
import base64
import json
import random
import socket
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from websockets.asyncio.client import connect as ws_connect
from websockets.exceptions import InvalidStatus

from minerscope.emulate import benign, hostile
from minerscope.emulate.pool import POOL_DIALECTS, PoolConfig, start_pool
from minerscope.emulate.server import ServerHandle, ThreadedServers
from minerscope.errors import InputError
from minerscope.probe.dialects import bitcoin, browser_ws, ethereum, http_jsonrpc, monero, sv2
from minerscope.probe.framing import encode_json_line
from tests.conftest import MS


class LineMiner:
    """A newline-JSON client with a read timeout (test helper)."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    async def send(self, msg: dict[str, Any]) -> None:
        self.writer.write(encode_json_line(msg))
        await self.writer.drain()

    async def recv(self, within: float = 2.0) -> dict[str, Any]:
        async with asyncio.timeout(within):
            line = await self.reader.readline()
        assert line, "pool closed the connection"
        out: dict[str, Any] = json.loads(line)
        return out

    async def recv_until(self, pred: Any, within: float = 2.0) -> dict[str, Any]:
        async with asyncio.timeout(within):
            while True:
                msg = await self.recv(within)
                if pred(msg):
                    return msg


@pytest.fixture
async def pools() -> AsyncIterator[list[ServerHandle]]:
    handles: list[ServerHandle] = []
    yield handles
    await asyncio.gather(*(h.close() for h in handles))


async def _miner(handle: ServerHandle) -> LineMiner:
    reader, writer = await asyncio.open_connection(handle.host, handle.port)
    return LineMiner(reader, writer)


async def test_stratum1_session_subscribe_authorize_jobs_and_vardiff(pools: list[ServerHandle]) -> None:
    pool = await start_pool("stratum1", job_interval=150 * MS, vardiff_interval=250 * MS)
    pools.append(pool)
    miner = await _miner(pool)
    await miner.send(bitcoin.subscribe_request(1))
    reply = await miner.recv()
    sub = bitcoin.parse_subscribe_result(reply["result"])
    assert len(sub.extranonce1) == 8 and sub.extranonce2_size == 4
    first_diff = bitcoin.parse_difficulty((await miner.recv())["params"])
    job = bitcoin.parse_notify((await miner.recv())["params"])
    assert job.clean_jobs in (True, False) and len(job.prevhash) == 64
    await miner.send(bitcoin.authorize_request(2, "bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t4.rig1"))
    assert (await miner.recv())["result"] is True
    pushed = await miner.recv_until(lambda m: m.get("method") == "mining.notify", within=2.0)
    assert bitcoin.parse_notify(pushed["params"]).job_id != job.job_id
    retarget = await miner.recv_until(lambda m: m.get("method") == "mining.set_difficulty", within=2.0)
    assert bitcoin.parse_difficulty(retarget["params"]) in (first_diff / 2, first_diff * 2)
    await miner.send({"id": 9, "method": "no.such.method", "params": []})
    err = await miner.recv_until(lambda m: m.get("id") == 9)
    assert err["result"] is None and err["error"][0] == bitcoin.ERR_OTHER
    miner.writer.close()
    assert pool.stats.requests[:2] == ["mining.subscribe", "mining.authorize"]


async def test_stratum1_validate_policy_rejects_a_bad_worker(pools: list[ServerHandle]) -> None:
    pool = await start_pool("stratum1", wallet_policy="validate", job_interval=0)
    pools.append(pool)
    miner = await _miner(pool)
    await miner.send(bitcoin.authorize_request(2, "not-a-wallet.worker"))
    reply = await miner.recv()
    assert reply["result"] is False
    assert bitcoin.POOL_REJECTION_RE.search(reply["error"][1])
    await miner.send(bitcoin.authorize_request(3, "1BoatSLRHtKNngkdXEeobR76b53LETtpyT.w"))
    assert (await miner.recv())["result"] is True
    miner.writer.close()


async def test_xmrig_login_keepalive_and_rejection(pools: list[ServerHandle]) -> None:
    pool = await start_pool("xmrig", wallet_policy="validate", job_interval=100 * MS)
    pools.append(pool)
    miner = await _miner(pool)
    wallet = monero.make_wallet(random.Random(7))
    await miner.send(monero.login_request(1, wallet))
    login = await miner.recv()
    session_id, job = monero.parse_login_result(login["result"])
    assert job is not None and len(job.blob) >= 152 and session_id
    await miner.send(monero.keepalived_request(2, session_id))
    assert (await miner.recv_until(lambda m: m.get("id") == 2))["result"]["status"] == "KEEPALIVED"
    push = await miner.recv_until(lambda m: m.get("method") == "job", within=2.0)
    assert monero.parse_job(push["params"]).job_id != job.job_id
    miner.writer.close()
    other = await _miner(pool)
    await other.send(monero.login_request(1, "x"))
    error = await other.recv()
    assert error["error"]["message"] == "Invalid payment address provided"
    other.writer.close()


async def test_ethproxy_login_and_work(pools: list[ServerHandle]) -> None:
    pool = await start_pool("ethproxy", job_interval=0)
    pools.append(pool)
    miner = await _miner(pool)
    await miner.send(ethereum.submit_login_request(1, ethereum.FAKE_WALLET, worker="rig", jsonrpc=True))
    assert (await miner.recv())["result"] is True
    await miner.send(ethereum.get_work_request(2, worker="rig", jsonrpc=True))
    work = ethereum.parse_work((await miner.recv())["result"])
    assert work.header.startswith("0x") and len(work.header) == 66
    miner.writer.close()


async def test_tls_pool_presents_a_fresh_self_signed_certificate(pools: list[ServerHandle]) -> None:
    import ssl

    pool = await start_pool("xmrig", tls=True, job_interval=0)
    pools.append(pool)
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    reader, writer = await asyncio.open_connection(pool.host, pool.port, ssl=ctx)
    der = writer.get_extra_info("ssl_object").getpeercert(binary_form=True)
    assert der and pool.url.startswith("stratum+ssl://127.0.0.1:")
    miner = LineMiner(reader, writer)
    await miner.send(monero.login_request(1, monero.PROBE_WALLET))
    assert "job" in (await miner.recv())["result"]
    writer.transport.abort()


async def test_bitcoind_requires_basic_auth_then_serves_templates(pools: list[ServerHandle]) -> None:
    pool = await start_pool("bitcoind", rpc_user="alice", rpc_password="s3cret")
    pools.append(pool)
    url = f"http://{pool.host}:{pool.port}/"
    body = http_jsonrpc.gbt_request(1)
    async with httpx.AsyncClient(trust_env=False) as client:
        denied = await client.post(url, json=body)
        assert denied.status_code == 401
        assert denied.headers["www-authenticate"] == 'Basic realm="jsonrpc"'
        ok = await client.post(url, json=body, auth=("alice", "s3cret"))
        template = http_jsonrpc.parse_block_template(ok.json()["result"])
        assert template["height"] and template["transactions"]
        no_segwit = await client.post(url, json={**body, "params": [{}]}, auth=("alice", "s3cret"))
        assert no_segwit.status_code == 500 and no_segwit.json()["error"]["code"] == -8
        unknown = await client.post(
            url, json={"id": 3, "method": "nope", "params": []}, auth=("alice", "s3cret")
        )
        assert unknown.status_code == 404 and unknown.json()["error"]["code"] == -32601


async def test_monerod_answers_as_monerod_does(pools: list[ServerHandle]) -> None:
    """JSON-RPC on /json_rpc (xmrig's 'getblocktemplate' alias too) and the /getheight
    endpoint xmrig's daemon mode polls, laid out by epee as monerod 0.18 does (the real
    daemon's own replies are compared in tests/probe/test_real_services.py)."""
    pool = await start_pool("monerod", tls=True)
    pools.append(pool)
    base = f"https://{pool.host}:{pool.port}"
    async with httpx.AsyncClient(verify=False, trust_env=False) as client:
        for method in ("get_block_template", "getblocktemplate"):
            body = dict(http_jsonrpc.monerod_template_request(monero.PROBE_WALLET), method=method)
            template = await client.post(base + "/json_rpc", json=body)
            assert template.json()["result"]["status"] == "OK"
            assert template.content.startswith(
                b'{\r\n  "id": "0",\r\n  "jsonrpc": "2.0",\r\n  "result": {\r\n'
            )
            assert template.headers["server"] == "Epee-based"
        height = await client.get(base + "/getheight")
        assert set(height.json()) == {"hash", "height", "status", "untrusted"}
        assert (await client.post(base + "/other", json={})).status_code == 404


async def test_coinhive_shard_serves_one_path(pools: list[ServerHandle]) -> None:
    pool = await start_pool("coinhive", ws_path="/proxy", job_interval=0)
    pools.append(pool)
    with pytest.raises(InvalidStatus) as info:
        async with ws_connect(f"ws://{pool.host}:{pool.port}/elsewhere", proxy=None):
            pass
    assert info.value.response.status_code == 404
    async with ws_connect(f"ws://{pool.host}:{pool.port}/proxy", proxy=None) as ws:
        await ws.send(browser_ws.encode_ws_json(browser_ws.auth_message(browser_ws.FAKE_SITE_KEY)).decode())
        kinds = [browser_ws.parse_ws_message(json.loads(await ws.recv()))[0] for _ in range(2)]
        assert kinds == ["authed", "job"]


async def test_sv2_answers_an_act1_with_a_fixed_size_act2(pools: list[ServerHandle]) -> None:
    pool = await start_pool("sv2")
    pools.append(pool)
    reader, writer = await asyncio.open_connection(pool.host, pool.port)
    writer.write(sv2.make_act1(random.Random(1)))
    async with asyncio.timeout(2):
        act2 = await reader.readexactly(sv2.ACT2_SIZE)
    assert sv2.looks_random(act2)
    with pytest.raises(TimeoutError):  # then it waits for Act-3, silently
        async with asyncio.timeout(150 * MS):
            await reader.read(1)
    writer.transport.abort()


def test_threaded_servers_serve_sync_callers() -> None:
    with ThreadedServers() as lab:
        handle = lab.start(start_pool("stratum1", job_interval=0))
        with socket.create_connection(handle.target, timeout=2) as sock:
            sock.sendall(encode_json_line(bitcoin.subscribe_request(1)))
            data = sock.makefile("rb").readline()
        assert bitcoin.parse_subscribe_result(json.loads(data)["result"]).extranonce1
    assert handle.closed


def test_config_errors_name_the_option() -> None:
    with pytest.raises(InputError, match="--dialect 'nope'"):
        PoolConfig("nope")
    with pytest.raises(InputError, match="--wallets"):
        PoolConfig("xmrig", wallet_policy="sometimes")
    assert set(POOL_DIALECTS) >= {"stratum1", "xmrig", "coinhive", "bitcoind", "monerod", "geth", "sv2"}


async def test_sv2_refuses_tls() -> None:
    with pytest.raises(InputError, match="Noise"):
        await start_pool("sv2", tls=True)


@pytest.mark.parametrize("name", sorted(benign.BENIGN))
async def test_every_benign_service_accepts_connections(name: str) -> None:
    handle = await benign.start_benign(name)
    try:
        reader, writer = await asyncio.open_connection(handle.host, handle.port)
        writer.transport.abort()
        assert handle.host == "127.0.0.1" and handle.dialect is None
    finally:
        await handle.close()


@pytest.mark.parametrize("name", hostile.HOSTILE)
async def test_every_hostile_server_starts_and_closes_promptly(name: str) -> None:
    handle = await hostile.start_hostile(name, interval=20 * MS)
    reader, writer = await asyncio.open_connection(handle.host, handle.port)
    writer.write(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    await asyncio.sleep(30 * MS)
    async with asyncio.timeout(2):  # close() drops parked handlers, never hangs
        await handle.close()
    writer.transport.abort()


async def test_basic_auth_header_format_matches_the_probe() -> None:
    spec = http_jsonrpc.json_rpc_http_request("/", {"id": 1}, auth=("u", "p"))
    header = dict(spec.headers)["Authorization"]
    assert base64.b64decode(header.split()[1]) == b"u:p"
