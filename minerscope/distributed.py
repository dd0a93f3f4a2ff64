"""Scan captures on many machines with a distributed engine you already run (Dask, Ray...).

minerscope ships no cluster scheduler: the unit of work is already embarrassingly
parallel. :func:`scan_capture` is a pure function of one capture (plus options and the
model files) that returns the records ``minerscope scan --no-store --format jsonl``
prints for it, so any engine that can map a picklable function over a list of paths
runs the pipeline: ``dask.bag``, ``distributed.Client.map``, ``ray.remote``,
``concurrent.futures``. Workers need minerscope installed and the captures (and a
custom model folder, if any) reachable at the same path -- a shared file system -- or
given as object-store URLs, which are copied to local disk first through fsspec.

Results stay identical to a serial ``scan``: each capture is scanned whole by one
worker, flow ids restart at 0 per capture, and concatenating the per-capture lists in
input order gives the serial output. The case file is not written from workers (SQLite
over a network file system is not safe); record centrally afterwards if needed.

Nothing here imports dask or ray; see the README section "Many machines".
"""

from __future__ import annotations

import importlib
import logging
import os
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from minerscope.triage import TriageOptions

log = logging.getLogger(__name__)

PathLike = str | os.PathLike[str]


def capture_paths(inputs: Iterable[PathLike]) -> list[str]:
    """The capture files under ``inputs`` (files and directories, found by magic bytes), in
    the order ``scan`` visits them: the driver's list of tasks. URLs are passed through."""
    from minerscope.capture.discover import expand_captures

    out: list[str] = []
    local: list[str] = []
    for item in inputs:
        text = os.fspath(item)
        if "://" in text:
            out.extend(str(p) for p in expand_captures(local))
            local = []
            out.append(text)
        else:
            local.append(text)
    out.extend(str(p) for p in expand_captures(local))
    return out


def scan_capture(path: PathLike, options: TriageOptions | None = None) -> list[dict[str, Any]]:
    """Stage 0 and stage 1 over one capture -> its JSON-ready records (``scan``'s fields).

    Args:
        path: a capture file on a file system this process sees, or an fsspec URL
            (``s3://bucket/x.pcap``; needs fsspec and its backend on the worker).
        options: triage settings (model, blacklist files, timeouts); picklable.

    Returns:
        One record per flow, as ``minerscope scan --no-store --format jsonl`` prints it
        (``analyst`` is "", ``probe`` None). A damaged capture gives the flows before the
        damage and a logged warning, as ``scan`` does.

    Raises:
        minerscope.errors.MinerscopeError: not a capture, unreadable model, ...
    """
    from minerscope.cli.output import SCAN_FIELDS, frame_to_records
    from minerscope.numba_registries import load_cached_kernels_without_registries
    from minerscope.triage import triage_rows

    load_cached_kernels_without_registries()  # once per worker process: no compiler set-up

    name = os.fspath(path)
    local = _local_copy(name) if "://" in name else name
    rows, report = triage_rows(local, options)
    said = (report.warning or "").replace(local, name)  # the URL, not the local copy's name
    if not report.complete:
        log.warning("%s: capture is damaged; results cover what could be read (%s)", name, said)
    elif said:  # read to the end, but packets were left out (a link type, --bpf, sensor drops)
        log.warning("%s", said)
    records = frame_to_records(rows, SCAN_FIELDS)
    shown = name.rstrip("/").rsplit("/", 1)[-1] if local != name else None
    for record in records:
        record["analyst"] = ""
        if shown is not None:  # the URL's file name, not the local cache file's
            record["capture"] = shown
    return records


def _local_copy(url: str) -> str:
    """An object-store capture copied to local disk (fsspec's cache)."""
    try:  # optional: only object-store URLs need it (untyped, hence import_module)
        fsspec = importlib.import_module("fsspec")
    except ImportError:
        raise ImportError(f"{url}: scanning a URL needs fsspec (pip install fsspec s3fs/gcsfs...)") from None
    return str(fsspec.open_local(f"simplecache::{url}"))


def json_line(record: Mapping[str, Any]) -> str:
    """One record as a JSONL line (no newline), byte for byte what ``scan`` prints."""
    from minerscope.cli.output import json_line as line

    return line(record)


def scan_serially(
    inputs: Iterable[PathLike], options: TriageOptions | None = None
) -> Iterator[dict[str, Any]]:
    """The reference: every record of every capture under ``inputs``, in ``scan`` order."""
    for path in capture_paths(inputs):
        yield from scan_capture(path, options)


__all__ = ["TriageOptions", "capture_paths", "json_line", "scan_capture", "scan_serially"]
