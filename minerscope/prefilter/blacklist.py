"""Pool indicators (IPs, IP:ports, domains) and fast matching of flows against them.

Stage 0 is cheap certainty: a flow to a known pool address, or whose SNI, DNS-resolved
name or HTTP Host falls under a known pool domain, is evidence before any model runs.
Indicators arrive as data (a file the analyst passes, the case file's confirmed pools),
never as code, so the parsers here accept the formats people actually have — plain
lists, hosts files, CSV exports — and reject a malformed line with its file and line
number instead of silently skipping it. The case-store imports indicators through the
same public functions, so a list means the same thing everywhere.

minerscope's own exports come back as they went out: its CSV (``kind,value,port,source,
added,expires,enabled``) is read by its ``kind`` column (a suffix stays a suffix, an
``ip_port`` keeps its port) with source, expiry and on/off switch, and a Zeek Intel file by
its ``#fields`` header (the port of an ``ip_port``, which Intel cannot match, is read back
from the description minerscope wrote). A one-label name (``junk``, ``localhost``) is no
pool domain and is refused, except as a suffix (``*.example``); a hosts file's one-label
aliases (``ip6-localhost``) are skipped like ``localhost``.

Matching is set lookups: addresses are normalised text (``ipaddress``), names are
lower-cased without a trailing dot, and a suffix indicator ``*.example.com`` matches
``example.com`` itself and every name below it, checked by walking the name's labels
(at most as many lookups as the name has labels).
"""

from __future__ import annotations

import csv
import io
import ipaddress
import re
import time
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from minerscope.errors import InputError
from minerscope.untrusted import is_decimal, is_ip

IndicatorKind = Literal["ip", "ip_port", "domain", "domain_suffix"]

MAX_INDICATOR_FILE_BYTES = 64 * 1024 * 1024
"""Security limit: indicator files larger than this are refused."""
MAX_NAME_CHARS = 253

_LABEL_RE = re.compile(r"^[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?$")
_CSV_COLUMNS = ("indicator", "domain", "ip", "host", "hostname", "address", "value")


class IndicatorError(InputError):
    """An indicator (or a line of an indicator file) is malformed."""


@dataclass(frozen=True, slots=True)
class Indicator:
    """One pool indicator.

    Attributes:
        kind: ``ip``, ``ip_port``, ``domain`` (exact name) or ``domain_suffix`` (the name and
            everything below it).
        value: normalised address text or lower-case name without trailing dot.
        port: the port of an ``ip_port`` indicator, else None.
        source: where it came from (file name and line, or a free label).
        enabled: False for an indicator a file lists as switched off (matched by nothing).
        expires_at: when it stops matching (epoch seconds), None for never.
    """

    kind: IndicatorKind
    value: str
    port: int | None = None
    source: str = ""
    enabled: bool = True
    expires_at: float | None = None

    def __str__(self) -> str:
        if self.kind == "ip_port":
            return f"[{self.value}]:{self.port}" if ":" in self.value else f"{self.value}:{self.port}"
        if self.kind == "domain_suffix":
            return f"*.{self.value}"
        return self.value


def normalise_name(name: str) -> str:
    """Lower-case ``name`` and drop one trailing dot (``Pool.Example.COM.`` -> ``pool.example.com``)."""
    name = name.strip().lower()
    return name[:-1] if name.endswith(".") else name


def _valid_name(name: str) -> bool:
    """LDH labels (underscores allowed), at most ``MAX_NAME_CHARS``; one label allowed here
    (a suffix may be one, an exact pool domain may not: :func:`parse_indicator` says so)."""
    if not name or len(name) > MAX_NAME_CHARS or "." not in name and not _LABEL_RE.match(name):
        return False
    return all(_LABEL_RE.match(label) for label in name.split("."))


def parse_indicator(text: str, source: str = "") -> Indicator:
    """Parse one indicator.

    Accepted forms: ``1.2.3.4``, ``2001:db8::1``, ``1.2.3.4:3333``, ``[2001:db8::1]:3333``,
    ``pool.example.com`` (exact), ``*.example.com`` or ``.example.com`` (suffix). A URL such
    as ``stratum+tcp://pool.example.com:3333`` is reduced to its host (and port for IPs).

    Raises:
        IndicatorError: the text is none of these.
    """
    raw = text.strip()
    value = raw
    if "://" in value:
        value = value.split("://", 1)[1].split("/", 1)[0]
        if "@" in value:
            value = value.rsplit("@", 1)[1]
    if not value:
        raise IndicatorError(f"{source or 'indicator'}: empty indicator")
    try:
        return Indicator("ip", str(ipaddress.ip_address(value)), None, source)
    except ValueError:
        pass
    m = re.fullmatch(r"\[([0-9A-Fa-f:.]+)\]:(\d{1,5})|([0-9.]+):(\d{1,5})", value)
    if m:
        addr_text, port_text = (m.group(1), m.group(2)) if m.group(1) else (m.group(3), m.group(4))
        port = int(port_text)
        try:
            addr = ipaddress.ip_address(addr_text)
        except ValueError:
            raise IndicatorError(f"{source or 'indicator'}: bad address in {raw!r}") from None
        if not 0 < port < 65536:
            raise IndicatorError(f"{source or 'indicator'}: port out of range in {raw!r}")
        return Indicator("ip_port", str(addr), port, source)
    name = value
    if ":" in name and not name.startswith("["):
        host, _, port_text = name.rpartition(":")
        if is_decimal(port_text):
            name = host  # a name with a port: the name is the indicator
    suffix = False
    if name.startswith("*."):
        name, suffix = name[2:], True
    elif name.startswith("."):
        name, suffix = name[1:], True
    name = normalise_name(name)
    if not _valid_name(name):
        raise IndicatorError(f"{source or 'indicator'}: not an IP, IP:port or domain: {raw[:80]!r}")
    if not suffix and "." not in name:
        raise IndicatorError(
            f"{source or 'indicator'}: a one-label name is not a pool domain: {raw[:80]!r}"
            " (write *.NAME for every name under it)"
        )
    return Indicator("domain_suffix" if suffix else "domain", name, None, source)


@dataclass(frozen=True, slots=True)
class IndicatorFile:
    """What an indicator file holds.

    Attributes:
        indicators: in file order.
        carries_sources: the format names each indicator's source (minerscope's CSV, Zeek
            Intel ``meta.source``): an indicator's ``source`` is then that label, "" when
            the file left it empty; otherwise it is the file name and line.
    """

    indicators: list[Indicator]
    carries_sources: bool = False


def parse_indicators(text: str, source: str = "") -> list[Indicator]:
    """Parse an indicator list given as text, detecting its format (see :func:`parse_indicator_file`).

    Raises:
        IndicatorError: a line is malformed (message names ``source`` and the line number).
    """
    return parse_indicator_file(text, source).indicators


def parse_indicator_file(text: str, source: str = "") -> IndicatorFile:
    """Parse an indicator list given as text, detecting its format.

    Formats: minerscope's CSV export (header ``kind,value,...``), other CSV (a header naming
    a column ``indicator``/``domain``/``ip``/``host``..., else the first column), a Zeek
    Intel file (``#fields`` header), hosts files (``0.0.0.0 name [name...]``), or one
    indicator per line. ``#`` starts a comment in lists and hosts files; blank lines are
    skipped.

    Raises:
        IndicatorError: a line is malformed (message names ``source`` and the line number).
    """
    lines = text.splitlines()
    if any(ln.startswith("#fields") for ln in lines):
        return _parse_zeek(lines, source)
    first = next((ln for ln in lines if ln.strip() and not ln.lstrip().startswith("#")), "")
    if "," in first:
        return _parse_csv(text, source)
    return IndicatorFile(_parse_lines(lines, source))


def _parse_lines(lines: list[str], source: str) -> list[Indicator]:
    out: list[Indicator] = []
    for number, line in enumerate(lines, 1):
        body = line.split("#", 1)[0].strip()
        if not body:
            continue
        where = f"{source}:{number}" if source else f"line {number}"
        fields = body.split()
        if len(fields) >= 2 and is_ip(fields[0]):
            for name in fields[1:]:
                local = normalise_name(name)
                if local in ("localhost", "localhost.localdomain") or "." not in local:
                    continue  # the host's own names (localhost, ip6-loopback, broadcasthost)
                out.append(parse_indicator(name, where))
            continue
        if len(fields) != 1:
            raise IndicatorError(f"{where}: expected one indicator, got {body[:80]!r}")
        out.append(parse_indicator(fields[0], where))
    return out


def _parse_csv(text: str, source: str) -> IndicatorFile:
    rows = list(csv.reader(io.StringIO(text)))
    rows = [r for r in rows if r and any(c.strip() for c in r) and not r[0].lstrip().startswith("#")]
    if not rows:
        return IndicatorFile([])
    header = [c.strip().lower() for c in rows[0]]
    if "kind" in header and "value" in header:
        return _parse_own_csv(rows, header, source)
    col = next((header.index(name) for name in _CSV_COLUMNS if name in header), None)
    body = rows[1:] if col is not None else rows
    if col is None:
        try:
            parse_indicator(rows[0][0])
        except IndicatorError:
            body = rows[1:]  # an unrecognised header row
        col = 0
    start = len(rows) - len(body) + 1
    out: list[Indicator] = []
    for number, row in enumerate(body, start):
        where = f"{source}:{number}" if source else f"row {number}"
        if col >= len(row) or not row[col].strip():
            raise IndicatorError(f"{where}: missing indicator column")
        out.append(parse_indicator(row[col], where))
    return IndicatorFile(out)


_FORMULA_GUARDED = tuple("=+-@\uff1d\uff0b\uff0d\uff20")
_TRUE = ("", "yes", "true", "1", "on", "enabled")
_FALSE = ("no", "false", "0", "off", "disabled")


def _from_kind(kind: str, value: str, port_text: str, where: str) -> Indicator:
    """The indicator a (kind, value, port) triple of minerscope's own exports names, checked as
    :func:`parse_indicator` checks text, and of exactly that kind."""
    kind = kind.strip().lower()
    value = value.strip()
    port_text = port_text.strip()
    if kind not in ("ip", "ip_port", "domain", "domain_suffix"):
        raise IndicatorError(f"{where}: unknown indicator kind {kind[:40]!r}")
    if port_text and not is_decimal(port_text, 5):
        raise IndicatorError(f"{where}: port is not a number: {port_text[:40]!r}")
    if kind == "ip_port":
        if not port_text:
            raise IndicatorError(f"{where}: an ip_port indicator needs a port")
        host = value.strip("[]")
        text = f"[{host}]:{port_text}" if ":" in host else f"{host}:{port_text}"
    else:
        if port_text:
            raise IndicatorError(f"{where}: a {kind} indicator has no port, got {port_text!r}")
        text = f"*.{value}" if kind == "domain_suffix" else value
    ind = parse_indicator(text, where)
    if ind.kind != kind or "://" in value:
        raise IndicatorError(f"{where}: not a valid {kind} indicator: {value[:80]!r}")
    return ind


def _unguarded(cell: str) -> str:
    """A CSV cell as it was before minerscope's formula guard prefixed it with ``'``."""
    if cell.startswith("'") and cell[1:].startswith(_FORMULA_GUARDED):
        return cell[1:]
    return cell


def _parse_time(text: str, where: str) -> float | None:
    """``2026-01-02T03:04:05Z`` (how minerscope writes times) -> epoch seconds; "" -> None."""
    import datetime as dt

    text = text.strip()
    if not text:
        return None
    try:
        moment = dt.datetime.fromisoformat(text.replace(" ", "T"))
    except ValueError:
        raise IndicatorError(f"{where}: not a time: {text[:40]!r}") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    return moment.timestamp()


def _parse_own_csv(rows: list[list[str]], header: list[str], source: str) -> IndicatorFile:
    """minerscope's CSV export (``kind,value,port,source,added,expires,enabled``): each row
    is taken by its kind, with its source, expiry and switch (``added`` is the new file's)."""
    at: dict[str, int] = {
        name: header.index(name)
        for name in ("kind", "value", "port", "source", "expires", "enabled")
        if name in header
    }

    def cell(row: list[str], name: str) -> str:
        i = at.get(name)
        return row[i] if i is not None and i < len(row) else ""

    out: list[Indicator] = []
    for number, row in enumerate(rows[1:], 2):
        where = f"{source}:{number}" if source else f"row {number}"
        ind = _from_kind(cell(row, "kind"), cell(row, "value"), cell(row, "port"), where)
        switch = cell(row, "enabled").strip().lower()
        if switch not in _TRUE + _FALSE:
            raise IndicatorError(f"{where}: enabled must be yes or no, not {switch[:20]!r}")
        out.append(
            Indicator(
                ind.kind,
                ind.value,
                ind.port,
                _unguarded(cell(row, "source").strip()),
                enabled=switch in _TRUE,
                expires_at=_parse_time(cell(row, "expires"), where),
            )
        )
    return IndicatorFile(out, carries_sources="source" in at)


_ZEEK_TYPES = {"intel::addr": "ip", "intel::domain": "domain"}
_ZEEK_UNSET = ("", "-", "(empty)")
ZEEK_DESC_PREFIX = "mining pool "
"""How minerscope's Zeek export starts ``meta.desc``: the indicator's plain form follows."""


def _parse_zeek(lines: list[str], source: str) -> IndicatorFile:
    """A Zeek Intel framework file: ``#fields`` names the tab-separated columns, other ``#``
    lines are directives. ``Intel::ADDR`` and ``Intel::DOMAIN`` only; an address whose
    ``meta.desc`` is minerscope's ``mining pool ADDR:PORT`` comes back as that ``ip_port``."""
    fields: list[str] = []
    out: list[Indicator] = []
    for number, line in enumerate(lines, 1):
        where = f"{source}:{number}" if source else f"line {number}"
        if line.startswith("#fields"):
            fields = line.split("\t")[1:]
            continue
        if not line.strip() or line.startswith("#"):
            continue
        if "indicator" not in fields or "indicator_type" not in fields:
            raise IndicatorError(
                f"{where}: Zeek Intel line before a #fields header naming indicator, indicator_type"
            )
        cells = line.split("\t")
        row = dict(zip(fields, cells, strict=False))
        itype = row.get("indicator_type", "").strip()
        kind = _ZEEK_TYPES.get(itype.lower())
        if kind is None:
            raise IndicatorError(
                f"{where}: {itype[:40]!r} is not a pool indicator type (Intel::ADDR, Intel::DOMAIN)"
            )
        value = row.get("indicator", "").strip()
        ind = _from_kind(kind, value, "", where)
        desc = row.get("meta.desc", "")
        if kind == "ip" and desc.startswith(ZEEK_DESC_PREFIX):
            try:
                named = parse_indicator(desc[len(ZEEK_DESC_PREFIX) :].split(" ", 1)[0], where)
            except IndicatorError:
                named = ind
            if named.kind == "ip_port" and named.value == ind.value:
                ind = named
        label = row.get("meta.source", "").strip()
        out.append(Indicator(ind.kind, ind.value, ind.port, "" if label in _ZEEK_UNSET else label))
    return IndicatorFile(out, carries_sources="meta.source" in fields)


def read_indicators(path: str | Path) -> list[Indicator]:
    """Read an indicator file (plain list, hosts file, CSV or Zeek Intel; see :func:`parse_indicators`).

    Raises:
        IndicatorError: the file is too large, not text, or has a malformed line.
    """
    return read_indicator_file(path).indicators


def read_indicator_file(path: str | Path) -> IndicatorFile:
    """Read an indicator file with what its format says of sources (see :func:`parse_indicator_file`).

    Raises:
        IndicatorError: the file is too large, not text, or has a malformed line.
    """
    p = Path(path)
    try:
        size = p.stat().st_size
        if size > MAX_INDICATOR_FILE_BYTES:
            raise IndicatorError(
                f"{p}: {size} bytes exceed MAX_INDICATOR_FILE_BYTES={MAX_INDICATOR_FILE_BYTES}"
            )
        raw = p.read_bytes()
    except OSError as exc:
        raise IndicatorError(f"{p}: cannot read indicator file: {exc.strerror}") from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise IndicatorError(f"{p}: not UTF-8 text (byte {exc.start})") from None
    return parse_indicator_file(text, source=p.name)


@dataclass(frozen=True, slots=True)
class BlacklistHit:
    """Which indicator matched which value."""

    indicator: Indicator
    field: str
    value: str


class Blacklist:
    """A set of indicators with constant-time matching per address and per name label.

    Args:
        indicators: the indicators to match against.
    """

    def __init__(self, indicators: Iterable[Indicator] = ()) -> None:
        self._ips: dict[str, Indicator] = {}
        self._ip_ports: dict[tuple[str, int], Indicator] = {}
        self._names: dict[str, Indicator] = {}
        self._suffixes: dict[str, Indicator] = {}
        self._count = 0
        for ind in indicators:
            self.add(ind)

    @classmethod
    def from_files(cls, paths: Iterable[str | Path]) -> Blacklist:
        """Load and merge indicator files (see :func:`read_indicators`)."""
        bl = cls()
        for path in paths:
            for ind in read_indicators(path):
                bl.add(ind)
        return bl

    def add(self, ind: Indicator) -> None:
        """Add one indicator (the first one added for a value is kept as its source).

        One a file lists as switched off, or past its expiry, matches nothing and is left out.
        """
        if not ind.enabled or (ind.expires_at is not None and ind.expires_at <= time.time()):
            return
        self._count += 1
        if ind.kind == "ip":
            self._ips.setdefault(ind.value, ind)
        elif ind.kind == "ip_port":
            assert ind.port is not None
            self._ip_ports.setdefault((ind.value, ind.port), ind)
        elif ind.kind == "domain":
            self._names.setdefault(ind.value, ind)
        else:
            self._suffixes.setdefault(ind.value, ind)

    def __len__(self) -> int:
        return len(self._ips) + len(self._ip_ports) + len(self._names) + len(self._suffixes)

    def indicators(self) -> Iterator[Indicator]:
        """Every indicator held (one per distinct value), e.g. to merge two blacklists."""
        yield from self._ips.values()
        yield from self._ip_ports.values()
        yield from self._names.values()
        yield from self._suffixes.values()

    @property
    def has_addresses(self) -> bool:
        """True when some indicator is an address (``ip`` or ``ip_port``)."""
        return bool(self._ips or self._ip_ports)

    @property
    def has_names(self) -> bool:
        """True when some indicator is a name (``domain`` or ``domain_suffix``)."""
        return bool(self._names or self._suffixes)

    def listed_addresses(self, addresses: Iterable[str]) -> set[str]:
        """The members of ``addresses`` some address indicator names (on any port).

        For stage 0 to look only at the flows that can hit: called with the distinct
        server addresses of a block, far fewer than its flows.
        """
        listed = set(self._ips) | {a for a, _ in self._ip_ports}
        out: set[str] = set()
        for address in addresses:
            if not address:
                continue
            try:
                if str(ipaddress.ip_address(address)) in listed:
                    out.add(address)
            except ValueError:
                continue
        return out

    def match_ip(self, address: str, port: int | None = None) -> Indicator | None:
        """The indicator matching ``address`` (and ``address:port``), if any."""
        if not address:
            return None
        try:
            address = str(ipaddress.ip_address(address))
        except ValueError:
            return None
        ind = self._ips.get(address)
        if ind is None and port is not None:
            ind = self._ip_ports.get((address, port))
        return ind

    def match_name(self, name: str) -> Indicator | None:
        """The indicator matching ``name`` exactly or by suffix (case-insensitive, trailing dot ignored)."""
        if not name:
            return None
        name = normalise_name(name)
        ind = self._names.get(name)
        if ind is not None:
            return ind
        if not self._suffixes:
            return None
        part = name
        while True:
            ind = self._suffixes.get(part)
            if ind is not None:
                return ind
            dot = part.find(".")
            if dot < 0:
                return None
            part = part[dot + 1 :]

    def match_flow(
        self, dst: str, dport: int | None, names: Mapping[str, Iterable[str]]
    ) -> list[BlacklistHit]:
        """Every hit for one flow: its server address/port and names by field (``sni``, ``dns``...)."""
        hits: list[BlacklistHit] = []
        ind = self.match_ip(dst, dport)
        if ind is not None:
            field = "dst" if ind.kind == "ip" else "dst_port"
            hits.append(BlacklistHit(ind, field, dst if ind.kind == "ip" else f"{dst}:{dport}"))
        for field, values in names.items():
            for value in values:
                ind = self.match_name(value)
                if ind is not None:
                    hits.append(BlacklistHit(ind, field, value))
        return hits
