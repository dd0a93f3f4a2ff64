"""The column-wise JSONL writer prints exactly what the per-record writer prints."""

from __future__ import annotations

import io
import json
import math

import polars as pl
import pytest

from minerscope import resources
from minerscope.cli.output import SCAN_FIELDS, frame_to_records, write_jsonl, write_jsonl_frame

SAMPLE = resources.sample_capture()


def _both(rows: pl.DataFrame, fields: tuple[str, ...] = SCAN_FIELDS) -> tuple[str, str]:
    by_record, by_column = io.StringIO(), io.StringIO()
    write_jsonl(frame_to_records(rows, fields), by_record)
    write_jsonl_frame(rows, fields, by_column)
    return by_record.getvalue(), by_column.getvalue()


@pytest.mark.skipif(not SAMPLE.is_file(), reason="bundled sample capture not generated")
def test_triage_rows_of_the_sample_print_identically() -> None:
    from minerscope.triage import TriageOptions, triage_rows

    rows, _ = triage_rows(SAMPLE, TriageOptions(blacklist_files=(resources.sample_blacklist(),)))
    rows = rows.with_columns(pl.lit("").alias("analyst"))
    by_record, by_column = _both(rows)
    assert by_column == by_record
    lines = by_column.splitlines()
    assert len(lines) == rows.height > 100
    # tiny probabilities are spelled as Python's json spells them (1e-05, not 0.00001)
    assert any("e-05" in line for line in lines)
    assert any(json.loads(line)["stage0"] for line in lines)


def test_awkward_values_print_identically() -> None:
    nan, inf = math.nan, math.inf
    rows = pl.DataFrame(
        {
            "capture": ["a.pcap", "b\u00e9\x1b[31m\u2028.pcap", None, "%s%%"],
            "src": ["10.0.0.1", "::1", "10.0.0.2", '"quoted"\\'],
            "sport": pl.Series([1, 65535, None, 0], dtype=pl.UInt16),
            "first_seen": [1705663830.435877, nan, None, 1e-07],
            "last_seen": [inf, -inf, 1.5e16, -0.0],
            "packets": pl.Series([1, 2**62, None, 0], dtype=pl.Int64),
            "sni": ["pool.example", "", None, "\u00fcber"],
            "dns_names": ["a.example,b.example", "", None, ",c.example,"],
            "stage0": ['[{"kind": "blacklist", "x": NaN}]', "", None, "[]"],
            "p_mining": [0.12345678, nan, None, 1.2345e-07],
            "coin_probs": ['{"xmr":1e-05,"btc":0.99999}', "{}", None, ""],
            "top_features": ['[{"name":"f","contribution":-0.5,"value":null}]', "[]", None, ""],
            "window": pl.Series([0, None, -1, 3], dtype=pl.Int32),
            "analyst": ["", "dismissed", None, "confirmed"],
            "probe": ['{"is_pool": true, "confidence": 0.9}', None, "", "null"],
            "extra_flag": [True, False, None, True],
        }
    )
    fields = (*SCAN_FIELDS, "extra_flag")
    by_record, by_column = _both(rows, fields)
    assert by_column == by_record
    for line in by_column.splitlines():
        record = json.loads(line)  # strict JSON: NaN and infinities became null
        assert set(record) == set(fields)
    assert json.loads(by_column.splitlines()[1])["first_seen"] is None
    # an integer p_mining is printed as the float it is rounded to, as per record
    ints = rows.select("capture", pl.Series("p_mining", [1, None, 0, 2], dtype=pl.Int64))
    assert _both(ints)[1] == _both(ints)[0]
    assert '"p_mining":1.0' in _both(ints)[1]


def test_empty_frame_and_no_fields_print_nothing() -> None:
    rows = pl.DataFrame({"capture": ["a"]})
    assert _both(rows.clear()) == ("", "")
    assert _both(rows, ()) == ("", "")


def test_columns_without_nulls_take_the_fast_paths_and_print_identically() -> None:
    """No null and no non-finite value: floats spelled once per distinct value (by their
    bits, so -0.0 stays "-0.0"), plain ASCII strings quoted as they are, one-value columns
    folded into the line, across a block boundary."""
    from minerscope.cli.output import JSONL_BLOCK_ROWS

    n = JSONL_BLOCK_ROWS + 7
    cycle = [0.0, -0.0, 1e-05, 1.5e16, 5e-324, 0.1 + 0.2, 1705663830.435877]
    rows = pl.DataFrame(
        {
            "capture": ["same.pcap"] * n,
            "src": [f"10.0.{i % 256}.{i % 7}" for i in range(n)],
            "sni": ["plain.example" if i % 3 else "caf\u00e9.example" for i in range(n)],
            "sport": pl.Series([i % 65536 for i in range(n)], dtype=pl.UInt16),
            "first_seen": [cycle[i % len(cycle)] for i in range(n)],
            "last_seen": pl.Series([cycle[i % len(cycle)] for i in range(n)], dtype=pl.Float32),
            # distinct before rounding, equal after: 0.1234564 and 0.1234561 both print 0.123456
            "p_mining": [0.1234564 if i % 2 else 0.1234561 for i in range(n)],
            "coin_probs": ['{"xmr":1e-05}'] * n,
            "top_features": ["[]"] * n,
        }
    )
    by_record, by_column = _both(rows)
    assert by_column == by_record
    lines = by_column.splitlines()
    assert len(lines) == n and '"first_seen":-0.0' in lines[1] and '"p_mining":0.123456' in lines[0]
    assert "\\u00e9" in lines[0] and '"sni":"plain.example"' in lines[1]
