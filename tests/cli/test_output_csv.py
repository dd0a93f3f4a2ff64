"""scan's column-wise CSV is the record-by-record CSV, byte for byte, hostile text included."""

from __future__ import annotations

import io

import polars as pl

from minerscope import resources
from minerscope.cli.output import SCAN_FIELDS, frame_to_records, write_csv, write_csv_frame
from minerscope.triage import triage_rows

HOSTILE_TEXT = [
    '=HYPERLINK("http://x")',
    "+1+1",
    "-2+3",
    "@SUM(1)",
    "\tx",
    "-1.5",
    "\x1b]52;c;QUFB\x07",
    "例え",
    "",
]


def _by_records(rows: pl.DataFrame, header: bool = True) -> str:
    out = io.StringIO()
    write_csv(frame_to_records(rows, SCAN_FIELDS), out=out, fields=SCAN_FIELDS, header=header)
    return out.getvalue()


def _by_columns(rows: pl.DataFrame, header: bool = True) -> str:
    out = io.StringIO()
    write_csv_frame(rows, SCAN_FIELDS, out=out, header=header)
    return out.getvalue()


def test_column_wise_csv_is_the_record_csv() -> None:
    rows, _ = triage_rows(str(resources.sample_capture()))
    n = rows.height
    hostile = rows.with_columns(
        pl.Series("sni", [HOSTILE_TEXT[i % len(HOSTILE_TEXT)] for i in range(n)]),
        pl.Series("coin", [None if i % 3 else "-xmr" for i in range(n)], dtype=pl.Utf8),
        pl.Series("first_seen", [(-0.0, 0.0, float("nan"), 1e-7)[i % 4] for i in range(n)]),
        pl.Series("p_mining", [(-0.0, 0.0, 0.1234567891, None)[i % 4] for i in range(n)], dtype=pl.Float64),
        pl.lit("").alias("analyst"),
    )
    for frame in (rows, hostile, rows.clear()):
        for header in (True, False):
            assert _by_columns(frame, header) == _by_records(frame, header)
    text = _by_columns(hostile)
    assert "'=HYPERLINK" in text and "'-2+3" in text and ",-1.5," in text and "\x1b" not in text
    assert text.count("\n") == n + 1
