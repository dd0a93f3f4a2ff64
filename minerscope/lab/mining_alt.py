"""Mining that does not look like a pool session: solo mining to a daemon, browser miners.

Why separate from :mod:`minerscope.lab.mining`: these scenarios change the *shape* of
the flow, not just its payload. Solo miners talk HTTP JSON-RPC to a node: request/response
pairs on a polling timer (``eth_getWork`` every ~0.5-3 s, monerod height polls every
second with a template fetch on change) or long-poll ``getblocktemplate`` calls that the
daemon answers at the next block or template refresh, with large templates. Browser
miners speak Coinhive-style ``type``/``params`` objects in WebSocket frames behind an
HTTP upgrade, with low hash rates (shares minutes apart).
"""

from __future__ import annotations

import dataclasses
import email.utils
import random
from typing import Any

from minerscope.lab import ws as wsmod
from minerscope.lab.mining import Pool, _hex
from minerscope.lab.session import Conn
from minerscope.probe.dialects import browser_ws as bws
from minerscope.probe.dialects import ethereum as eth
from minerscope.probe.dialects import http_jsonrpc as http
from minerscope.probe.dialects import monero as xmr_dialect
from minerscope.probe.framing import rpc_request

_EPOCH = 1_700_000_000.0


def _date(t: float) -> str:
    return email.utils.formatdate(_EPOCH + t, usegmt=True)


def solo_script(pool: Pool, rng: random.Random, rtt: float, start: float, end: float) -> Conn:
    """A miner polling its own node over HTTP JSON-RPC (one keep-alive connection)."""
    coin = pool.coin
    solo: dict[str, Any] = dict(coin.spec["solo"])
    rpc = str(solo["rpc"])
    auth = (rng.choice(("rpcuser", "miner", "user")), _hex(rng, 24))
    agent = rng.choice(
        ("cgminer/4.12.1", "XMRig/6.21.0", "ethminer/0.19.0", "curl/7.88.1", "python-requests/2.31")
    )
    host = f"{pool.ip}:{pool.port}"
    server = rng.choice(("", "", "bitcoind"))
    conn = Conn(start=start)
    t = start + rtt * 1.2
    req_id = 0

    def call(
        t: float, body: dict[str, Any], result: dict[str, Any], delay: float = 0.0, path: str = "/"
    ) -> float:
        spec = http.json_rpc_http_request(path, body, agent=agent, auth=auth if rpc != "geth" else None)
        if body.get("method") == "getblocktemplate":
            extra = (("X-Mining-Extensions", "longpoll midstate rollntime submitold"),)
            spec = dataclasses.replace(spec, headers=spec.headers + extra)
        conn.msgs.append((t, 0, http.http_request_bytes(spec, host)))
        rt = t + rtt / 2 + rng.uniform(0.0005, 0.01) + delay
        reply = http.json_http_reply(result)
        headers = reply.headers + (("Date", _date(rt)),) + ((("Server", server),) if server else ())
        conn.msgs.append((rt, 1, http.http_response_bytes(dataclasses.replace(reply, headers=headers))))
        return rt + rtt / 2

    if rpc == "geth":
        poll_lo, poll_hi = (float(x) for x in solo.get("poll", (0.5, 3.0)))
        period = rng.uniform(poll_lo, poll_hi)
        work = eth.make_work(rng, difficulty=rng.randint(10**14, 10**15))
        last_job = pool.latest_job(t)
        next_rate = t + rng.uniform(5, 30)
        while t < end:
            job = pool.latest_job(t)
            if job is not last_job:
                work = eth.make_work(rng, difficulty=rng.randint(10**14, 10**15), seed=work.seed)
                last_job = job
            req_id += 1
            call(t, eth.get_work_request(req_id, jsonrpc=True), eth.work_result(req_id, work))
            if t >= next_rate:
                req_id += 1
                rate_req = eth.submit_hashrate_request(
                    req_id, rng.randint(10**7, 10**9), "0x" + _hex(rng, 64)
                )
                call(t + 0.001, rate_req, eth.bool_result(req_id))
                next_rate = t + rng.uniform(5, 30)
            t += period * rng.uniform(0.95, 1.05)
    elif rpc == "monerod":
        poll = rng.uniform(0.5, 2.0)
        last_height = -1
        tx_lo, tx_hi = (int(x) for x in solo.get("template_tx", (0, 40)))
        wallet = xmr_dialect.make_wallet(rng)
        while t < end:
            job = pool.latest_job(t)
            req_id += 1
            info = {
                "id": str(req_id),
                "jsonrpc": "2.0",
                "result": {"height": job.height, "status": "OK", "untrusted": False},
            }
            call(t, rpc_request(str(req_id), "get_height", {}, jsonrpc=True), info, path="/json_rpc")
            if job.height != last_height or rng.random() < 0.02:
                req_id += 1
                n = rng.randint(tx_lo, tx_hi)
                result = http.monerod_template_result(rng, str(req_id), height=job.height, tx_count=n)
                call(
                    t + 0.002,
                    http.monerod_template_request(wallet, 60, str(req_id)),
                    result,
                    path="/json_rpc",
                )
                last_height = job.height
            t += poll * rng.uniform(0.9, 1.1)
    else:  # bitcoind family: getblocktemplate long-poll
        tx_lo, tx_hi = (int(x) for x in solo.get("template_tx", (5, 50)))
        caps = ("coinbasetxn", "workid", "coinbase/append", "longpoll")
        longpollid = ""
        while t < end:
            job = pool.latest_job(t)
            later = [j for j in pool.jobs if j.t > t]
            answer_at = later[0].t if later else end
            req_id += 1
            body = http.gbt_request(req_id, capabilities=caps)
            if longpollid:
                body["params"][0]["longpollid"] = longpollid  # a long-poll: answered at the next template
            template = http.make_block_template(
                rng, tx_count=rng.randint(tx_lo, tx_hi), height=job.height, curtime=int(_EPOCH + t)
            )
            delay = min(max(answer_at - t, 0.0), 120.0) if longpollid else 0.0
            longpollid = str(template["longpollid"])
            t = call(t, body, http.gbt_result(req_id, template), delay=delay) + rng.uniform(0.001, 0.05)
    conn.end = end
    return conn


def browser_script(pool: Pool, rng: random.Random, rtt: float, start: float, end: float) -> Conn:
    """A Coinhive-style in-page miner: WS upgrade, ``auth``, then jobs, submits, accepts."""
    conn = Conn(start=start)
    site = rng.choice(("news-portal.example", "streamz.example", "free-games.example"))
    agent = rng.choice(
        (
            "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36",
            "Mozilla/5.0 (X11; Linux x86_64; rv:121.0) Gecko/20100101 Firefox/121.0",
        )
    )
    path = rng.choice(("/proxy", "/", "/ws", "/socket?k=" + _hex(rng, 8)))
    req, resp = wsmod.upgrade(rng, pool.host, path, f"https://{site}", agent)
    t = start + rtt * 1.2
    conn.msgs.append((t, 0, req))
    rt = t + rtt / 2 + rng.uniform(0.001, 0.02)
    conn.msgs.append((rt, 1, resp))
    conn.raw_ws = frozenset({0, 1})
    t = rt + rtt / 2 + rng.uniform(0.01, 0.3)
    conn.msgs.append((t, 0, bws.encode_ws_json(bws.auth_message(bws.make_site_key(rng)))))
    rt = t + rtt / 2 + rng.uniform(0.001, 0.02)
    conn.msgs.append((rt, 1, bws.encode_ws_json(bws.authed_message("", 0))))
    hashes = 0
    share_mean = rng.uniform(20.0, 180.0)
    throttle = rng.choice((1.0, 1.0, 0.5, 0.3))
    jobs = [j for j in pool.jobs if rt < j.t < end]
    events: list[tuple[float, str, int, int]] = [(rt + 0.001, "job", 0, pool.latest_job(rt).height)]
    events += [(j.t + pool.fanout, "job", j.tx_count, j.height) for j in jobs]
    s = rt
    while True:
        s += rng.expovariate(throttle / share_mean)
        if s >= end:
            break
        events.append((s, "share", 0, 0))
    events.sort()
    job: xmr_dialect.Job | None = None
    for when, kind, tx_count, height in events:
        if kind == "job":
            job = xmr_dialect.make_job(
                rng,
                algo=rng.choice(("cn/r", "rx/0", None)),
                height=height,
                difficulty=rng.choice((256, 512, 1024)),
                seed_hash=rng.random() < 0.5,
                tx_count=tx_count,
                timestamp=int(_EPOCH + when),
            )
            conn.msgs.append((when, 1, bws.encode_ws_json(bws.job_message(job))))
        elif job is not None:
            share = xmr_dialect.make_submit(rng, job, "")
            conn.msgs.append(
                (when, 0, bws.encode_ws_json(bws.submit_message(job.job_id, share.nonce, share.result)))
            )
            hashes += 256
            rt = when + rtt / 2 + rng.uniform(0.001, 0.05)
            conn.msgs.append((rt, 1, bws.encode_ws_json(bws.hash_accepted_message(hashes))))
    conn.end = end
    return conn
