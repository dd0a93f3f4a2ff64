"""``minerscope lab``: generate labelled captures, re-wrap real sessions in TLS, rebuild the sample.

A thin shell over :mod:`minerscope.lab`; results (file paths and counts) go to stdout,
errors to stderr with the project's exit codes.
"""

from __future__ import annotations

from pathlib import Path

import click

from minerscope.cli.common import FiniteFloatRange, fail
from minerscope.errors import MinerscopeError


def _plain_name(ctx: click.Context, param: click.Parameter, value: str) -> str:
    """``--name`` is a file name inside ``--out``: a path in it would write elsewhere (usage error)."""
    from minerscope.lab.output import check_name

    try:
        return check_name(value)
    except MinerscopeError as exc:
        raise click.BadParameter(str(exc)) from None


@click.group(name="lab")
def lab() -> None:
    """Generate labelled captures of mining and benign encrypted traffic."""


@lab.command("generate")
@click.option(
    "--out", "out", type=click.Path(file_okay=False, path_type=Path), required=True, help="Output folder."
)
@click.option(
    "--seed", type=click.IntRange(min=0), default=1, show_default=True, help="Same seed, same bytes."
)
@click.option(
    "--hours",
    type=FiniteFloatRange(min=0.0, min_open=True),
    default=1.0,
    show_default=True,
    help="Simulated duration.",
)
@click.option(
    "--sessions",
    type=click.IntRange(min=1),
    default=100,
    show_default=True,
    help="Concurrent sessions (slots).",
)
@click.option(
    "--coins",
    default="btc,ltc,xmr,etc,ethw,rvn,zec",
    show_default=True,
    help="Comma-separated coin tickers from the registry.",
)
@click.option(
    "--benign-ratio",
    type=FiniteFloatRange(0.0, 1.0),
    default=0.5,
    show_default=True,
    help="Share of slots running benign sessions.",
)
@click.option(
    "--name",
    default="lab",
    show_default=True,
    callback=_plain_name,
    help="Base name of the .pcapng and .labels.csv files (a plain file name).",
)
@click.option(
    "--web-mix",
    is_flag=True,
    help="Web/API sessions also over TLS 1.2 and plain HTTP/1.1 (as real captures are); off keeps old seeds' bytes.",
)
def generate_cmd(
    out: Path,
    seed: int,
    hours: float,
    sessions: int,
    coins: str,
    benign_ratio: float,
    name: str,
    web_mix: bool,
) -> None:
    """Write OUT/NAME.pcapng and OUT/NAME.labels.csv (one row per flow)."""
    from minerscope.lab.benign import WIDE_WEB_MIX
    from minerscope.lab.generate import LabConfig, generate

    tickers = tuple(c.strip().lower() for c in coins.split(",") if c.strip())
    cfg = LabConfig(
        seed=seed,
        hours=hours,
        sessions=sessions,
        coins=tickers,
        benign_ratio=benign_ratio,
        web_mix=WIDE_WEB_MIX if web_mix else None,
    )
    try:
        result = generate(cfg, out, name)
    except MinerscopeError as exc:
        fail(exc)
    click.echo(f"{result.pcap}\t{result.flows} flows\t{result.packets} packets\t{result.bytes} bytes")
    click.echo(f"{result.labels}")
    click.echo(f"simulated {result.simulated_s:.0f} s in {result.wall_s:.1f} s", err=True)


@lab.command("wrap-tls")
@click.argument("src", metavar="IN", type=click.Path(dir_okay=False, exists=True, path_type=Path))
@click.argument("dst", metavar="OUT", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--seed", type=click.IntRange(min=0), default=1, show_default=True)
@click.option("--tls-version", type=click.Choice(["1.2", "1.3"]), default="1.3", show_default=True)
@click.option("--sni", default="", help="Server name to send in the ClientHello (default: none).")
def wrap_tls_cmd(src: Path, dst: Path, seed: int, tls_version: str, sni: str) -> None:
    """Rewrite a plaintext capture IN as the same sessions under real TLS, into OUT (pcapng)."""
    from minerscope.lab.wrap import wrap_tls

    try:
        report = wrap_tls(src, dst, seed=seed, version="tls" + tls_version, sni=sni)
    except MinerscopeError as exc:
        fail(exc)
    click.echo(f"{dst}\t{report.flows} flows\t{report.messages} messages\t{report.packets_out} packets")


@lab.command("sample")
@click.option(
    "--out",
    "out",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("sample_pcaps"),
    show_default=True,
)
def sample_cmd(out: Path) -> None:
    """Regenerate the bundled demo capture, its labels and the sample blacklist (byte for byte)."""
    from minerscope.lab.sample import build_sample

    try:
        files = build_sample(out)
    except MinerscopeError as exc:
        fail(exc)
    for path in (files.capture, files.labels, files.blacklist):
        click.echo(str(path))
