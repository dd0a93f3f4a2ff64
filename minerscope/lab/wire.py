"""The lab's one seam to mining-message bytes: every pool and miner message is built here.

Why a seam: the project keeps ONE implementation of each dialect (``minerscope.probe.
dialects``); the lab must speak exactly what the prober and the stage-0 recogniser
understand. This module maps the lab's abstract events (subscribe, notify, submit, job,
keepalive ...) onto those builders where they exist, and keeps only the serialisation
*style* of a given pool (compact vs spaced JSON, key order, ``jsonrpc`` field) as lab
data, because real pools differ there and a detector must not learn one style.

When a dialect module lacks a builder for a side (for example a pool-side push), the
message is built here from the same field names the dialect parser reads; the report
lists which ones.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from minerscope.probe.dialects import bitcoin as btc
from minerscope.probe.dialects import ethereum as eth
from minerscope.probe.dialects import monero as xmr
from minerscope.probe.dialects import zcash as zec
from minerscope.probe.framing import encode_json_line, rpc_notification, rpc_request, rpc_response


@dataclass(frozen=True, slots=True)
class JsonStyle:
    """How one pool/miner serialises JSON lines (real software differs)."""

    compact: bool = True
    jsonrpc: bool = False  # add "jsonrpc": "2.0" where the dialect builder leaves it optional
    id_null_push: bool = True  # server pushes carry "id": null (else omitted)

    def dump(self, obj: dict[str, Any]) -> bytes:
        if self.jsonrpc and "jsonrpc" not in obj:
            obj = {"id": obj.get("id"), "jsonrpc": "2.0", **{k: v for k, v in obj.items() if k != "id"}}
        if not self.id_null_push and "id" in obj and obj["id"] is None and "method" in obj:
            obj = {k: v for k, v in obj.items() if k != "id"}
        return encode_json_line(obj, spaced=not self.compact)


# -- Stratum V1 (bitcoin family, zcash and kawpow variants) ------------------------------


def v1_request(style: JsonStyle, req_id: int, method: str, params: list[Any]) -> bytes:
    """A miner request; the bitcoin dialect's builders for the methods it defines."""
    if method == "mining.subscribe" and len(params) == 1:
        return style.dump(btc.subscribe_request(req_id, params[0]))
    if method == "mining.subscribe" and len(params) == 2 and params[1] == eth.PROTOCOL:
        return style.dump(eth.nh_subscribe_request(req_id, params[0]))
    if method == "mining.subscribe" and len(params) == 4:
        return style.dump(zec.subscribe_request(req_id, params[0], params[2], params[3]))
    if method == "mining.submit" and len(params) == 3:
        return style.dump(eth.nh_submit_request(req_id, *params))
    if method == "mining.submit" and len(params) == 5 and str(params[4]).startswith("fd4005"):
        return style.dump(zec.submit_request(req_id, *params))
    if method == "mining.authorize":
        return style.dump(btc.authorize_request(req_id, params[0], params[1]))
    if method == "mining.extranonce.subscribe":
        return style.dump(btc.extranonce_subscribe_request(req_id))
    if method == "mining.configure":
        return style.dump(btc.configure_request(req_id))
    if method == "mining.submit" and len(params) in (5, 6) and not str(params[2]).startswith("0x"):
        return style.dump(btc.submit_request(req_id, *params))
    return style.dump(rpc_request(req_id, method, params))


def v1_result(style: JsonStyle, req_id: int, result: Any, error: Any = None) -> bytes:
    if result is True and error is None:
        return style.dump(btc.authorize_result(req_id, True))
    return style.dump(rpc_response(req_id, result, error))


def v1_subscribe_result(
    style: JsonStyle, req_id: int, extranonce1: str, extranonce2_size: int, sub_id: str, both: bool
) -> bytes:
    return style.dump(
        btc.subscribe_result(req_id, extranonce1, extranonce2_size, sub_id, both_subscriptions=both)
    )


def v1_configure_result(style: JsonStyle, req_id: int) -> bytes:
    return style.dump(btc.configure_result(req_id))


def v1_set_difficulty(style: JsonStyle, difficulty: float) -> bytes:
    return style.dump(btc.set_difficulty(difficulty))


def v1_notify(
    style: JsonStyle,
    job_id: str,
    prevhash: str,
    coinb1: str,
    coinb2: str,
    branches: list[str],
    version: str,
    nbits: str,
    ntime: str,
    clean: bool,
) -> bytes:
    job = btc.NotifyJob(job_id, prevhash, coinb1, coinb2, tuple(branches), version, nbits, ntime, clean)
    return style.dump(btc.notify(job))


def zec_subscribe_result(style: JsonStyle, req_id: int, nonce1: str, session_id: str) -> bytes:
    return style.dump(zec.subscribe_result(req_id, nonce1, session_id))


def set_target(style: JsonStyle, target: str) -> bytes:
    return style.dump(zec.set_target(target))


def zec_notify(style: JsonStyle, params: list[Any]) -> bytes:
    return style.dump(zec.notify(zec.ZcashJob(*params)))


def eth_nh_subscribe_result(style: JsonStyle, req_id: int, sub_id: str, extranonce: str) -> bytes:
    return style.dump(eth.nh_subscribe_result(req_id, sub_id, extranonce))


def eth_nh_notify(style: JsonStyle, job_id: str, seedhash: str, headerhash: str, clean: bool) -> bytes:
    return style.dump(eth.nh_notify(eth.NhJob(job_id, seedhash, headerhash, clean)))


def v1_reconnect(style: JsonStyle, host: str, port: int, wait_s: int) -> bytes:
    return style.dump(btc.reconnect(host, port, wait_s))


def v1_push(style: JsonStyle, method: str, params: list[Any]) -> bytes:
    return style.dump(rpc_notification(method, params))


# -- Monero / CryptoNote (xmrig dialect) -------------------------------------------------


def xmr_login(
    style: JsonStyle, req_id: int, login: str, password: str, agent: str, algos: list[str]
) -> bytes:
    return style.dump(xmr.login_request(req_id, login, password, agent, algos or None))


def xmr_job(blob: str, job_id: str, target: str, miner_id: str, extra: dict[str, Any]) -> xmr.Job:
    return xmr.Job(
        blob, job_id, target, miner_id, extra.get("algo"), extra.get("height"), extra.get("seed_hash")
    )


def xmr_login_result(style: JsonStyle, req_id: int, miner_id: str, job: xmr.Job, ext: list[str]) -> bytes:
    return style.dump(xmr.login_result(req_id, miner_id, job, extensions=ext or None))


def xmr_job_push(style: JsonStyle, job: xmr.Job) -> bytes:
    return style.dump(xmr.job_push(job))


def xmr_submit(style: JsonStyle, req_id: int, miner_id: str, job_id: str, nonce: str, result: str) -> bytes:
    return style.dump(xmr.submit_request(req_id, miner_id, job_id, nonce, result))


def xmr_keepalived(style: JsonStyle, req_id: int, miner_id: str) -> bytes:
    return style.dump(xmr.keepalived_request(req_id, miner_id))


def xmr_submit_result(style: JsonStyle, req_id: int, ok: bool, message: str = "") -> bytes:
    return style.dump(xmr.submit_result(req_id, ok, message or "Low difficulty share"))


def xmr_keepalived_result(style: JsonStyle, req_id: int) -> bytes:
    return style.dump(xmr.keepalived_result(req_id))


def xmr_login_error(style: JsonStyle, req_id: int, message: str) -> bytes:
    return style.dump(xmr.login_error(req_id, message))


def xmr_blob(rng: Any, tx_count: int, timestamp: int) -> str:
    return xmr.make_blob(rng, timestamp=timestamp, tx_count=tx_count)


def xmr_target(difficulty: int) -> str:
    return xmr.target_for_difficulty(difficulty)


# -- Ethereum: EthereumStratum/1.0.0 and eth-proxy ----------------------------------------


def eth_proxy_request(style: JsonStyle, req_id: int, method: str, params: list[Any], worker: str) -> bytes:
    w = worker or None
    if method == "eth_submitLogin":
        return style.dump(eth.submit_login_request(req_id, params[0], params[1], worker=w, jsonrpc=True))
    if method == "eth_getWork":
        return style.dump(eth.get_work_request(req_id, worker=w, jsonrpc=True))
    if method == "eth_submitWork":
        return style.dump(eth.submit_work_request(req_id, *params, worker=w, jsonrpc=True))
    if method == "eth_submitHashrate":
        return style.dump(eth.submit_hashrate_request(req_id, int(params[0], 16), params[1], worker=w))
    return style.dump(rpc_request(req_id, method, params, jsonrpc=True))


def eth_proxy_result(style: JsonStyle, req_id: int, result: Any) -> bytes:
    if isinstance(result, list):
        return style.dump(eth.work_result(req_id, eth.Work(*result)))
    return style.dump(eth.bool_result(req_id, bool(result)))
