"""The bundled demo capture ``sample_pcaps/campus-gateway.pcapng`` and its companions.

One command (``minerscope lab sample --out sample_pcaps``) regenerates all three files
byte for byte; a test checks that. The capture is ten minutes at a campus gateway: a few
hundred benign encrypted flows (hard negatives first), TLS miners of several coins, one
plaintext Stratum miner that stage 0 catches, one miner whose pool name is on the
bundled blacklist (visible in SNI and DNS), a WebSocket browser miner, and the real DNS
lookups that map every name to its address.

Every address is inside 127.0.0.0/8 (clients 127.10.x.y, servers 127.20.x.y, resolver
127.20.0.53) so the demo can probe local pool emulators on those addresses and nothing
in it can ever reach another machine.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path

from minerscope.lab.generate import LabConfig, SessionSpec, World, render, write_capture
from minerscope.lab.labels import write_labels

SAMPLE_SEED = 20240611
SAMPLE_SECONDS = 600.0
CAPTURE_NAME = "campus-gateway.pcapng"
LABELS_NAME = "campus-gateway.labels.csv"
BLACKLIST_NAME = "sample-blacklist.txt"

BLACKLISTED_POOL = "xmr-eu1.hashvault-lab.example"
"""The pool whose name is on the sample blacklist (a TLS XMR miner reaches it by name)."""

BROWSER_POOL = "ws.webminer-lab.example"
"""The WebSocket shard the in-page (browser) miner talks to; not on the blacklist."""

_BLACKLIST_TEXT = f"""# minerscope sample blacklist: one indicator per line (domain or IP); '#' starts a comment.
# Used by the bundled demo: {BLACKLISTED_POOL} is contacted (TLS SNI + DNS) in campus-gateway.pcapng.
{BLACKLISTED_POOL}
pool.supportxmr-lab.example
rx.unmineable-lab.example
stratum.coinhive-lab.example
"""


@dataclass(frozen=True, slots=True)
class SampleFiles:
    capture: Path
    labels: Path
    blacklist: Path


def sample_specs() -> list[SessionSpec]:
    """The demo's sessions: fixed miners of interest plus drawn benign background."""
    rng = random.Random(f"sample-plan:{SAMPLE_SEED}")
    end = SAMPLE_SECONDS
    specs = [
        SessionSpec(
            "mining", 12.0, end, coin="ltc", transport="tcp", port=3333, miner_class="cpu", dns=True, sni=True
        ),
        SessionSpec(
            "mining",
            30.0,
            end,
            coin="xmr",
            transport="tls1.3",
            port=443,
            pool_host=BLACKLISTED_POOL,
            miner_class="cpu",
            dns=True,
            sni=True,
        ),
        SessionSpec(
            "mining",
            45.0,
            end,
            coin="btc",
            transport="tls1.2",
            port=3334,
            miner_class="asic",
            dns=True,
            sni=True,
        ),
        SessionSpec(
            "mining",
            60.0,
            end,
            coin="etc",
            transport="tls1.3",
            port=5443,
            miner_class="gpu",
            dns=True,
            sni=True,
        ),
        SessionSpec(
            "mining",
            80.0,
            end,
            coin="rvn",
            transport="tls1.3",
            port=443,
            miner_class="gpu",
            dns=True,
            sni=False,
        ),
        SessionSpec(
            "mining",
            95.0,
            end,
            coin="zec",
            transport="tls1.2",
            port=8443,
            miner_class="gpu",
            dns=True,
            sni=True,
        ),
        SessionSpec(
            "mining",
            140.0,
            end,
            coin="xmr",
            transport="tls1.3",
            port=9999,
            miner_class="cpu",
            dns=True,
            sni=True,
        ),
        SessionSpec(
            "mining",
            150.0,
            end,
            coin="xmr",
            scenario="browser",
            transport="wss1.3",
            port=443,
            pool_host=BROWSER_POOL,
            dns=True,
            sni=True,
        ),
    ]
    hard = ["ws-app", "mqtt", "imaps-idle", "push", "ssh", "vpn", "dot-doh", "mqtt", "ssh", "push"]
    for _ in range(45):
        kind = rng.choice(hard)
        start = rng.uniform(0.0, 150.0)
        specs.append(
            SessionSpec("benign", start, min(end, start + rng.uniform(200.0, 600.0)), benign_kind=kind)
        )
    start = rng.uniform(0.0, 500.0)
    specs.append(SessionSpec("benign", start, start + 4.0, benign_kind="video-call"))
    for kind, count in (("web", 25), ("api", 120)):
        for _ in range(count):
            start = rng.uniform(0.0, end - 30.0)
            specs.append(
                SessionSpec("benign", start, min(end, start + rng.uniform(5.0, 60.0)), benign_kind=kind)
            )
    return specs


def build_sample(out_dir: Path) -> SampleFiles:
    """(Re)generate the demo capture, its labels CSV and the sample blacklist into ``out_dir``.

    Raises:
        InputError: an output path cannot be written (named).
    """
    from minerscope.lab.output import output_dir, writing

    output_dir(out_dir)
    cfg = LabConfig(
        seed=SAMPLE_SEED,
        hours=SAMPLE_SECONDS / 3600.0,
        sessions=1,
        loopback_only=True,
        ipv6_ratio=0.0,
        vlan_ratio=0.0,
    )
    world = World(cfg)
    try:
        packets, rows = render(world, sample_specs())
    finally:
        world.certs.close()
    files = SampleFiles(out_dir / CAPTURE_NAME, out_dir / LABELS_NAME, out_dir / BLACKLIST_NAME)
    with writing(files.capture):
        write_capture(files.capture, packets)
    with writing(files.labels):
        write_labels(files.labels, rows)
    with writing(files.blacklist):
        files.blacklist.write_text(_BLACKLIST_TEXT, encoding="utf-8")
    return files
