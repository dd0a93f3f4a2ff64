"""``LabConfig.web_mix``: web/API sessions over plain HTTP and TLS 1.2, other sessions untouched."""

from __future__ import annotations

from pathlib import Path

import pytest

from minerscope.lab.benign import HTTP_SCENARIOS
from minerscope.lab.generate import LabConfig, generate
from minerscope.lab.labels import LabelRow, read_labels


def _rows(out: Path, name: str, web_mix: tuple[float, float, float] | None) -> list[LabelRow]:
    generate(LabConfig(seed=9, hours=0.1, sessions=24, benign_ratio=1.0, web_mix=web_mix), out, name)
    return read_labels(out / f"{name}.labels.csv")


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> tuple[list[LabelRow], list[LabelRow]]:
    out = tmp_path_factory.mktemp("webmix")
    return _rows(out, "default", None), _rows(out, "plain", (0.0, 0.0, 1.0))


def test_plain_http_web_sessions_use_port_80(pair: tuple[list[LabelRow], list[LabelRow]]) -> None:
    default, plain = pair
    web = [r for r in plain if r.scenario in HTTP_SCENARIOS]
    assert web, "the capture should hold web/API sessions"
    assert {r.transport for r in web} == {"tcp"}
    assert {r.server_port for r in web} <= {80, 8080}
    assert any(r.transport.startswith("tls") for r in default if r.scenario in HTTP_SCENARIOS)


def test_other_sessions_are_unchanged(pair: tuple[list[LabelRow], list[LabelRow]]) -> None:
    default, plain = pair

    def others(rows: list[LabelRow]) -> list[tuple[object, ...]]:
        sessions_with_web = {r.session_id for r in rows if r.scenario in HTTP_SCENARIOS}
        return [
            (r.session_id, r.scenario, r.transport, r.server_port, r.start_ns, r.packets, r.bytes)
            for r in rows
            if r.session_id not in sessions_with_web
        ]

    assert others(default) and others(default) == others(plain)


def test_cli_flag_turns_the_wide_mix_on(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from minerscope.cli import main

    args = ["lab", "generate", "--seed", "9", "--hours", "0.1", "--sessions", "24", "--benign-ratio", "1"]
    for name, extra in (("off", []), ("on", ["--web-mix"])):
        result = CliRunner().invoke(main, [*args, "--out", str(tmp_path), "--name", name, *extra])
        assert result.exit_code == 0, result.output
    off, on = read_labels(tmp_path / "off.labels.csv"), read_labels(tmp_path / "on.labels.csv")
    assert not any(r.transport == "tcp" for r in off if r.scenario in HTTP_SCENARIOS)
    assert any(r.transport == "tcp" for r in on if r.scenario in HTTP_SCENARIOS)
