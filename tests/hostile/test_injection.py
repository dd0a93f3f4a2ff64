"""Hostile text from captures and pool replies reaches every front end inert (issue #9).

The strings are put where an attacker controls them: the SNI of a real ClientHello, a
DNS answer's name, an HTTP ``Host`` header (all in a real pcap written with
:mod:`minerscope.capture.writer`), and the banner and errors of a real Stratum pool
(:func:`minerscope.emulate.hostile.start_injection_pool` on 127.0.0.1). Then:

* ``flows``, ``scan`` and ``probe`` tables contain no raw control byte (no ESC, so no
  CSI/OSC 8 hyperlink/OSC 52 clipboard write; no C0/C1; no bidi override) and show Rich
  markup literally; very long lines come out capped;
* the workstation (Textual Pilot) renders the same strings as literal cell text;
* every CSV cell (``flows``/``scan --format csv``, ``export pools``) that a spreadsheet
  would run as a formula is neutralised;
* and, by reading the package's syntax trees: nothing is unpickled, evaluated, run
  through a shell, or spliced into SQL text (dynamic SQL is limited to a reviewed list).
"""

from __future__ import annotations

import ast
import asyncio
import csv
import io
import re
import struct
import time
from collections.abc import AsyncIterator, Iterable
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from minerscope.capture.writer import PcapWriter
from minerscope.cli import main
from minerscope.emulate.hostile import start_injection_pool
from minerscope.emulate.server import ServerHandle
from tests.capture.test_handshake import build_client_hello
from tests.conftest import MS, REPO
from tests.flows.frames import Frame, tcp_session, udp

MARKUP = "[bold red]x[/] [link=https://evil.example]click[/link]"
HOSTILE: dict[str, str] = {
    "markup": MARKUP,
    "csi": "\x1b[2J\x1b[31mred",
    "osc8": "\x1b]8;;https://evil.example\x07link\x1b]8;;\x07",
    "osc52": "\x1b]52;c;Y2FsYw==\x07",
    "c0c1": "a\x01b\x07c\x08d\x7fe\x85f\x9bg",
    "rlo": "\u202egnp.exe",
    "formula": "=cmd|' /C calc'!A0",
    "plus": "+1+cmd",
    "minus": "-2+3",
    "at": "@SUM(1)",
    "tab": "\t=1",
    "cr": "\r=1",
}
LONG = "L" * 100_000
FORMULA_START = ("=", "+", "-", "@", "\t", "\r", "\uff1d", "\uff0b", "\uff0d", "\uff20")
RAW_CONTROL = re.compile("[\x00-\x08\x0b-\x0c\x0e-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")
"""What must never reach a terminal or a cell raw (``\\n`` and ``\\r`` only as line ends)."""


# --- a real capture carrying the strings --------------------------------------------------


def _sni_hello(name: str) -> bytes:
    raw = name.encode("utf-8")
    entry = b"\x00" + struct.pack("!H", len(raw)) + raw
    return build_client_hello([0x1301, 0x1302], [(0, struct.pack("!H", len(entry)) + entry)])


def _dns_answer(txid: int, name: str, address: str) -> bytes:
    """A DNS response whose question and answer name is ``name`` (labels as raw UTF-8)."""
    qname = b"".join(bytes((len(p),)) + p for p in (lbl.encode() for lbl in name.split("."))) + b"\x00"
    answer = struct.pack("!HHHIH", 0xC00C, 1, 1, 300, 4) + bytes(int(o) for o in address.split("."))
    return struct.pack("!HHHHHH", txid, 0x8180, 1, 1, 0, 0) + qname + struct.pack("!HH", 1, 1) + answer


def write_hostile_capture(path: Path, pool_port: int) -> Path:
    """One TLS flow per hostile SNI, a hostile DNS name for the pool flow, hostile Hosts."""
    frames: list[Frame] = []
    t = 10.0
    for i, text in enumerate([*HOSTILE.values(), "s" * 10_000]):
        frames += tcp_session(
            t,
            ("10.9.0.2", 40000 + i),
            (f"203.0.113.{i + 1}", 443),
            [(0, _sni_hello(text)), (1, b"\x16\x03\x03\x00\x01\x02")],
        )
        t += 1.0
    for i, host in enumerate((HOSTILE["formula"] + HOSTILE["csi"], HOSTILE["rlo"] + MARKUP, "h" * 3000)):
        request = b"GET / HTTP/1.1\r\nHost: " + host.encode() + b"\r\n\r\n"
        frames += tcp_session(
            t, ("10.9.0.2", 41000 + i), (f"198.51.100.{i + 1}", 80), [(0, request)], mss=4000
        )
        t += 1.0
    # the pool's name (as a resolver answered it) is hostile too; it becomes the pool's
    # name in the case file when `scan --probe` confirms the pool
    pool_name = HOSTILE["formula"] + "." + HOSTILE["osc52"] + ".pool"
    frames.append(udp(t, "10.9.0.53", 53, "10.9.0.2", 5353, _dns_answer(7, pool_name, "127.0.0.1")))
    subscribe = b'{"id":1,"method":"mining.subscribe","params":["cgminer/4.10.0"]}\n'
    frames += tcp_session(t + 0.5, ("10.9.0.2", 42000), ("127.0.0.1", pool_port), [(0, subscribe)])
    frames.sort(key=lambda f: f[0])
    with PcapWriter(path) as writer:
        for ts, frame in frames:
            writer.write_packet(round(ts * 1e9), bytes(frame))
    return path


@pytest.fixture
async def pool() -> AsyncIterator[ServerHandle]:
    handle = await start_injection_pool(HOSTILE["osc8"] + MARKUP + HOSTILE["formula"])
    yield handle
    await handle.close()


@pytest.fixture
def capture(tmp_path: Path, pool: ServerHandle) -> Path:
    return write_hostile_capture(tmp_path / "hostile.pcap", pool.port)


# --- checks ----------------------------------------------------------------------------


def assert_inert(text: str, *, where: str, max_line: int = 4_000) -> None:
    """No raw control/bidi character; markup (if present) literal; lines capped."""
    bad = RAW_CONTROL.search(text.replace("\r\n", "\n"))
    assert bad is None, (
        f"{where}: raw {bad.group(0)!r} at {bad.start()}: {text[max(0, bad.start() - 60) : bad.start() + 20]!r}"
    )
    longest = max((len(line) for line in text.splitlines()), default=0)
    assert longest <= max_line, f"{where}: a {longest}-character line"
    assert LONG[:5_000] not in text, f"{where}: the 100k line came through uncapped"


def assert_formula_safe(rows: Iterable[list[str]], *, where: str) -> int:
    """Every cell: not a formula (numbers like -1.5 aside), no raw control. Returns cells seen."""
    seen = 0
    for row in rows:
        for cell in row:
            seen += 1
            assert RAW_CONTROL.search(cell) is None, f"{where}: raw control in {cell[:80]!r}"
            if cell.startswith(FORMULA_START):
                try:
                    float(cell)
                except ValueError:
                    pytest.fail(f"{where}: formula cell {cell[:80]!r}")
    return seen


def invoke(args: list[str], db: Path | None = None) -> Any:
    prefix = ["--db", str(db)] if db is not None else []
    result = CliRunner().invoke(main, [*prefix, *args], catch_exceptions=False)
    return result


# --- CLI tables and CSV --------------------------------------------------------------------


def test_flows_table_and_csv_are_inert(capture: Path) -> None:
    table = invoke(["flows", "--format", "table", str(capture)])
    assert table.exit_code == 0, table.output
    assert_inert(table.stdout, where="flows table")
    assert MARKUP in table.stdout  # markup shown as the characters it is made of
    assert "\\x1b]52;c;" in table.stdout and "\\x1b]8;;" in table.stdout  # escaped, visible

    out = invoke(["flows", "--format", "csv", str(capture)])
    assert out.exit_code == 0
    rows = list(csv.reader(io.StringIO(out.stdout)))
    assert assert_formula_safe(rows, where="flows csv") > 100
    snis = {r[rows[0].index("sni")] for r in rows[1:]}
    assert "'" + HOSTILE["formula"] in snis and "'@SUM(1)" in snis and "'-2+3" in snis


def test_scan_table_and_csv_are_inert(capture: Path) -> None:
    table = invoke(["scan", "--no-store", "-q", "-j1", "--format", "table", str(capture)])
    assert table.exit_code == 0, table.output
    assert_inert(table.stdout, where="scan table")
    assert "[bold red]x[/]" in table.stdout
    out = invoke(["scan", "--no-store", "-q", "-j1", "--format", "csv", str(capture)])
    assert out.exit_code == 0, out.output
    rows = list(csv.reader(io.StringIO(out.stdout)))
    assert assert_formula_safe(rows, where="scan csv") > 100
    assert "'" + HOSTILE["formula"] in {r[rows[0].index("sni")] for r in rows[1:]}


async def test_probe_table_shows_a_hostile_pool_inertly(pool: ServerHandle) -> None:
    long_pool = await start_injection_pool(LONG)
    try:
        result = await asyncio.to_thread(
            invoke,
            [
                "probe",
                "-v",
                "--format",
                "table",
                "--connect-timeout",
                "0.5",
                "--timeout",
                "1",
                f"127.0.0.1:{pool.port}",
                f"127.0.0.1:{long_pool.port}",
            ],
        )
    finally:
        await long_pool.close()
    assert result.exit_code == 0, result.output
    # the pool is a pool, its words stay words; the 100k-character line breaks the line
    # limit, so that server is no pool (a real pool's lines are short) and costs 16 KiB
    assert result.stdout.count("POOL") == 1
    assert "max_line_bytes" in result.stdout
    assert_inert(result.stdout, where="probe table")
    assert "[bold" in result.stdout and "\\x1b]8;;" in result.stdout


def test_export_pools_neutralises_every_cell(tmp_path: Path) -> None:
    """Pool fields an analyst pasted from a capture or a reply: every cell made inert."""
    db = tmp_path / "case.sqlite"
    for i, (key, text) in enumerate(HOSTILE.items()):
        confirmed = invoke(
            [
                "case",
                "confirm",
                f"127.0.0.1:{3000 + i}",
                "--coin",
                text,
                "--dialect",
                text,
                "--transport",
                text,
                "--note",
                text + " " + key,
            ],
            db,
        )
        assert confirmed.exit_code == 0, (key, confirmed.output)
    listed = invoke(["case", "pools"], db)
    assert listed.exit_code == 0, listed.output
    assert_inert(listed.stdout, where="case pools table")
    exported = invoke(["export", "pools", "--format", "csv"], db)
    assert exported.exit_code == 0, exported.output
    rows = list(csv.reader(io.StringIO(exported.stdout)))
    assert len(rows) == 1 + len(HOSTILE)
    assert assert_formula_safe(rows, where="export pools") >= 12 * len(HOSTILE)
    coins = {r[rows[0].index("coin")] for r in rows[1:]}
    assert {"'=cmd|' /C calc'!A0", "'+1+cmd", "'-2+3", "'@SUM(1)"} <= coins


# --- the workstation ------------------------------------------------------------------------


def _screen_text(app: Any) -> str:
    """What the terminal would show: the text of every rendered screen line."""
    strips = app.screen._compositor.render_strips()
    return "\n".join("".join(segment.text for segment in strip) for strip in strips)


async def test_workstation_renders_capture_and_probe_strings_literally(
    capture: Path, pool: ServerHandle, tmp_path: Path
) -> None:
    from minerscope.triage import TriageOptions
    from minerscope.tui.app import MinerscopeApp
    from minerscope.tui.screens.probe import ProbeScreen

    db = tmp_path / "case.sqlite"
    app = MinerscopeApp([capture], db_path=db, options=TriageOptions(db_path=db))
    async with app.run_test(size=(200, 50)) as pilot:
        deadline = time.monotonic() + 120_000 * MS  # a cold numba cache compiles kernels
        while app.loads_done < 1:
            assert time.monotonic() < deadline, "capture did not load"
            await pilot.pause(50 * MS)
        await pilot.pause()
        assert not app.last_error
        table = app.flows_screen.table
        assert table.row_count >= len(HOSTILE)
        texts: list[str] = []
        for index in range(table.row_count):
            for cell in table.cells(index):
                plain = getattr(cell, "plain", str(cell))
                assert RAW_CONTROL.search(plain) is None, plain
                texts.append(plain)
                if "[bold red]" in plain:
                    assert not getattr(cell, "spans", None)  # markup was not interpreted
        assert any(MARKUP[:15] in t for t in texts)
        screen = _screen_text(app)
        assert_inert(screen, where="flows screen")

        await pilot.press("P")
        assert isinstance(app.screen, ProbeScreen)
        await pilot.press(*f"127.0.0.1:{pool.port}", "enter")
        probe_screen = app.screen
        deadline = time.monotonic() + 60_000 * MS
        while probe_screen.verdict is None:
            assert time.monotonic() < deadline, "probe did not finish"
            await pilot.pause(50 * MS)
        await pilot.pause()
        assert probe_screen.verdict.is_pool
        screen = _screen_text(app)
        assert_inert(screen, where="probe screen")
        assert "[bold red]x[/]" in screen and "\\x1b]8;;https://evil.example\\x07" in screen
        await pilot.press("c")  # confirm the pool: its evidence goes to the case file
        await pilot.pause()
        await pilot.press("escape", "q")
    exported = invoke(["export", "pools", "--format", "csv"], db)
    assert exported.exit_code == 0, exported.output
    rows = list(csv.reader(io.StringIO(exported.stdout)))
    assert [r[rows[0].index("port")] for r in rows[1:]] == [str(pool.port)]
    assert_formula_safe(rows, where="export pools after the workstation confirmed")
    assert "[bold red]x[/]" in rows[1][rows[0].index("evidence")]


# --- nothing is evaluated, unpickled, shelled or spliced into SQL -----------------------------

FORBIDDEN_MODULES = {"pickle", "cPickle", "_pickle", "dill", "cloudpickle", "joblib", "marshal", "shelve"}
FORBIDDEN_CALLS = {"eval", "exec", "__import__"}
FORBIDDEN_ATTR_CALLS = {("os", "system"), ("os", "popen"), ("yaml", "load"), ("pd", "read_pickle")}
SQL_METHODS = {"execute", "executemany", "executescript", "rows", "scalar"}

REVIEWED_DYNAMIC_SQL: dict[tuple[str, str], str] = {
    # (module, SQL expression) -> why the interpolated part cannot come from a capture/reply
    ("store/casefile.py", "f'SELECT count(*) FROM {t}'"): "t iterates the constant _MERGE_COUNTED",
    ("store/casefile.py", "sql"): "statements built from constant table/column names of our schema",
    ("store/casefile.py", "f'DROP TABLE temp.{name}'"): "name iterates the constant _MERGE_TEMP",
    ("store/cases.py", "sql + ' WHERE c.case_id = ? ORDER BY c.id'"): "constant text; the id is bound",
    ("store/cases.py", "sql + ' ORDER BY c.id'"): "constant text",
    ("store/cases.py", "f'SELECT 1 FROM {table} WHERE id = ?'"): "table from the constant _NOTE_TABLES",
    (
        "store/cases.py",
        "'SELECT * FROM notes' + where + ' ORDER BY id'",
    ): "where joins constant clauses; values bound",
    ("store/db.py", "f'PRAGMA busy_timeout = {int(timeout * 1000)}'"): "an int",
    ("store/db.py", "f'PRAGMA {pragma}'"): "one of two constant pragma names",
    ("store/db.py", "sql"): "the rows()/scalar() helpers: callers pass SQL text, values are bound",
    ("store/flows.py", "sql"): "constant fragments and constant clauses; values bound",
    ("store/flows.py", "_INSERT_FLOW"): "a module constant",
    ("store/flows.py", "_SELECT_BATCH_IDS"): "a module constant",
    ("store/flows.py", "_SELECT_FLOW_SERVER"): "a module constant",
    (
        "store/flows.py",
        "f'SELECT 1 FROM allowlist WHERE enabled = 1 AND port IN (0, ?) AND host IN ({marks}) LIMIT 1'",
    ): "marks is '?, ?, ...'; hosts are bound",
    ("store/migrations.py", "sql"): "migration DDL constants",
    ("store/pools.py", "_NAMES_SEEN"): "a module constant",
    ("store/pools.py", "_SEEN_INTERVAL"): "a module constant",
    ("store/migrations.py", "f'PRAGMA user_version = {version + 1:d}'"): "an int",
    ("store/pools.py", "_SELECT_POOLS + where + ' ORDER BY p.id'"): (
        "a module constant and one of the constant clauses in the same class; values bound"
    ),
    ("store/cases.py", "_LIST_CASES"): "a module constant",
    ("store/flows.py", "_CONFIRMED_POOLS_AT"): "a module constant; values bound",
}


def _package_trees() -> Iterable[tuple[str, ast.AST]]:
    root = REPO / "minerscope"
    for path in sorted(root.rglob("*.py")):
        yield path.relative_to(root).as_posix(), ast.parse(path.read_text(encoding="utf-8"), str(path))


def check_tree(module: str, tree: ast.AST) -> tuple[list[str], set[tuple[str, str]]]:
    """Forbidden constructs in one module, and its run-time-built SQL texts."""
    problems: list[str] = []
    dynamic_sql: set[tuple[str, str]] = set()
    for node in ast.walk(tree):
        where = f"minerscope/{module}:{getattr(node, 'lineno', 0)}"
        if isinstance(node, ast.Import | ast.ImportFrom):
            names = [a.name for a in node.names]
            if isinstance(node, ast.ImportFrom) and node.module:
                names.append(node.module)
            problems += [f"{where}: imports {n}" for n in names if n.split(".")[0] in FORBIDDEN_MODULES]
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        if isinstance(func, ast.Name) and func.id in FORBIDDEN_CALLS:
            problems.append(f"{where}: calls {func.id}()")
        if isinstance(func, ast.Attribute):
            owner = func.value.id if isinstance(func.value, ast.Name) else ""
            if (owner, func.attr) in FORBIDDEN_ATTR_CALLS:
                problems.append(f"{where}: calls {owner}.{func.attr}()")
        for kw in node.keywords:
            if kw.arg in ("shell", "allow_pickle") and not (
                isinstance(kw.value, ast.Constant) and kw.value.value is False
            ):
                problems.append(f"{where}: {kw.arg}={ast.unparse(kw.value)}")
        name = func.attr if isinstance(func, ast.Attribute) else ""
        if name in SQL_METHODS and node.args and module.startswith("store/"):
            sql = node.args[0]
            if not (isinstance(sql, ast.Constant) and isinstance(sql.value, str)):
                key = (module, ast.unparse(sql))
                dynamic_sql.add(key)
                if key not in REVIEWED_DYNAMIC_SQL:
                    problems.append(f"{where}: SQL text built at run time: {key[1][:120]}")
    return problems, dynamic_sql


def test_nothing_from_a_capture_is_unpickled_evaluated_shelled_or_spliced_into_sql() -> None:
    problems: list[str] = []
    dynamic_sql: set[tuple[str, str]] = set()
    for module, tree in _package_trees():
        found, sql = check_tree(module, tree)
        problems += found
        dynamic_sql |= sql
    assert not problems, "\n".join(problems)
    # the review list holds nothing stale (a removed query must leave the list too)
    assert set(REVIEWED_DYNAMIC_SQL) <= dynamic_sql, set(REVIEWED_DYNAMIC_SQL) - dynamic_sql


def test_the_checker_catches_what_it_is_for() -> None:
    """Each forbidden construct is flagged (so the test above can fail)."""
    samples = {
        "import pickle": "imports pickle",
        "from joblib import load": "imports joblib",
        "x = eval(s)": "calls eval()",
        "import os\nos.system(s)": "calls os.system()",
        "subprocess.run(s, shell=True)": "shell=True",
        "np.load(f, allow_pickle=True)": "allow_pickle=True",
        "conn.execute(f'SELECT * FROM t WHERE sni = {sni}')": "SQL text built at run time",
    }
    for code, expected in samples.items():
        problems, _ = check_tree("store/sample.py", ast.parse(code))
        assert len(problems) == 1 and expected in problems[0], (code, problems)
    clean_code = (
        "conn.execute('SELECT * FROM t WHERE sni = ?', (sni,))\nsubprocess.run(['tshark'], shell=False)"
    )
    assert check_tree("store/sample.py", ast.parse(clean_code)) == ([], set())
