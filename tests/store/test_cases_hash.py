"""``file_sha256``: the capture's identity in the case file, and its cancellation."""

from __future__ import annotations

import hashlib
import threading
from pathlib import Path

import pytest

from minerscope.store.cases import file_sha256


def test_hash_and_size_of_a_file_larger_than_one_chunk(tmp_path: Path) -> None:
    data = bytes(range(256)) * 9_000  # 2.2 MiB: three chunks
    path = tmp_path / "capture.pcap"
    path.write_bytes(data)
    assert file_sha256(path) == (hashlib.sha256(data).hexdigest(), len(data))
    assert file_sha256(path, threading.Event()) == (hashlib.sha256(data).hexdigest(), len(data))


def test_a_set_cancel_event_stops_hashing(tmp_path: Path) -> None:
    path = tmp_path / "capture.pcap"
    path.write_bytes(b"\0" * 100)
    cancel = threading.Event()
    cancel.set()
    with pytest.raises(InterruptedError):
        file_sha256(path, cancel)
