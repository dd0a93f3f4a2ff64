"""Compressed captures: gzip, xz, bzip2 and zstd read as they are, by magic bytes.

Each format's own compressor (Python's gzip/lzma/bz2 and zstd modules, and the
command-line tools where installed) writes the input; the reader must give the rows of
the uncompressed capture, over several streams one after another too, and keep every
packet before a cut or corruption with a one-line reason.
"""

from __future__ import annotations

import bz2
import gzip
import lzma
import shutil
import subprocess
import zlib
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from minerscope import resources
from minerscope.capture.compressed import OUTPUT_CHUNK, zstd
from minerscope.capture.discover import looks_like_capture
from minerscope.capture.pcap import CaptureReader, read_all
from minerscope.errors import NotACaptureError

SAMPLE = resources.sample_capture()

pytestmark = pytest.mark.skipif(not SAMPLE.is_file(), reason="bundled sample capture not generated")

COMPRESS: dict[str, Callable[[bytes], bytes]] = {
    "gzip": lambda b: gzip.compress(b, mtime=0),
    "xz": lzma.compress,
    "bzip2": lambda b: bz2.compress(b, 1),  # 100 kB blocks: a cut keeps the whole blocks before it
    "zstd": zstd.compress,
}
TOOLS = {"gzip": "gzip", "xz": "xz", "bzip2": "bzip2", "zstd": "zstd"}


@pytest.fixture(scope="module")
def plain() -> tuple[bytes, np.ndarray]:
    """The first ~600 kB of the sample, cut at a block boundary, and its rows."""
    data = SAMPLE.read_bytes()
    batch, report = read_all(SAMPLE)
    assert report.complete
    cut = max(e for e in _record_ends(data) if e <= 600_000)
    part = data[:cut]
    rows, _ = read_all_bytes(part)
    assert 1000 < len(rows) < len(batch.packets)
    return part, rows


def read_all_bytes(data: bytes, tmp: Path | None = None) -> tuple[np.ndarray, object]:
    import tempfile

    with tempfile.TemporaryDirectory(dir=tmp) as d:
        path = Path(d) / "capture"
        path.write_bytes(data)
        batch, report = read_all(path)
        return batch.packets.copy(), report


def _same_rows(ours: np.ndarray, theirs: np.ndarray) -> bool:
    keep = [n for n in ours.dtype.names or () if n != "payload_off"]  # offsets into each batch's buffer
    return len(ours) == len(theirs) and all(np.array_equal(ours[n], theirs[n]) for n in keep)


@pytest.mark.parametrize("codec", sorted(COMPRESS))
def test_a_compressed_capture_reads_as_the_plain_one(
    tmp_path: Path, plain: tuple[bytes, np.ndarray], codec: str
) -> None:
    data, rows = plain
    path = tmp_path / "capture.bin"  # no telling name: found by magic
    path.write_bytes(COMPRESS[codec](data))
    assert looks_like_capture(path)
    batch, report = read_all(path)
    assert report.complete and report.warning is None
    assert report.file_format == f"pcapng+{codec}"
    assert _same_rows(batch.packets, rows)
    assert report.bytes_read == path.stat().st_size  # progress is against the file's own size


@pytest.mark.parametrize("codec", sorted(COMPRESS))
def test_several_streams_one_after_another_are_one_capture(
    tmp_path: Path, plain: tuple[bytes, np.ndarray], codec: str
) -> None:
    """``cat a.xz b.xz``, pbzip2's independent blocks, zstd's frames: as the tools decode
    them, one after the other (here split mid-record, and with xz's zero padding)."""
    data, rows = plain
    cut = len(data) // 3 + 5
    pad = bytes(4) if codec in ("xz", "gzip") else b""
    path = tmp_path / "joined"
    path.write_bytes(COMPRESS[codec](data[:cut]) + pad + COMPRESS[codec](data[cut:]))
    batch, report = read_all(path)
    assert report.complete and report.warning is None
    assert _same_rows(batch.packets, rows)


def _record_ends(data: bytes) -> list[int]:
    """Where each pcapng block of ``data`` ends (after its section and interface blocks)."""
    pos, ends = 0, []
    while pos < len(data):
        pos += int.from_bytes(data[pos + 4 : pos + 8], "little")
        ends.append(pos)
    return ends


@pytest.mark.parametrize("codec", sorted(COMPRESS))
def test_a_cut_or_corrupt_compressed_capture_keeps_the_packets_decoded_before_the_damage(
    tmp_path: Path, plain: tuple[bytes, np.ndarray], codec: str
) -> None:
    """Cut short; a check that fails at the very end (a flipped bit in gzip's length,
    xz's footer, bzip2's stream CRC, zstd's checksum): the decompressor raises only then,
    and no more than its last call's output may be lost; data after the last stream."""
    data, rows = plain
    packed = COMPRESS[codec](data)
    if codec == "zstd":  # the zstd tool writes a checksum; the module only when asked
        packed = zstd.compress(data, options={zstd.CompressionParameter.checksum_flag: 1})
    flipped = bytearray(packed)
    flipped[-2 if codec == "bzip2" else -1] ^= 0x01
    blocks = _record_ends(data)
    packets_before = len(blocks) - 2  # less the section header and interface blocks
    most_lost = 64 * 1024  # one decompressor call's output at most
    assert OUTPUT_CHUNK <= most_lost
    decoded_before_check = sum(1 for e in blocks[2:] if e <= len(data) - most_lost)
    for name, damaged, reason, at_least in (
        ("cut", packed[: len(packed) * 2 // 3], f"{codec} stream ends before its end marker (truncated)", 1),
        ("corrupt", bytes(flipped), f"{codec} data cannot be decoded", decoded_before_check),
        (
            "trailing",
            packed + b"not compressed",
            f"data after the last {codec} stream is not {codec}",
            packets_before,
        ),
    ):
        path = tmp_path / f"{name}.{codec}"
        path.write_bytes(damaged)
        batch, report = read_all(path)
        got = batch.packets
        assert at_least <= len(got) <= len(rows), (name, len(got), at_least)
        assert _same_rows(got, rows[: len(got)]), name  # a prefix, each packet whole
        assert not report.complete and reason in (report.warning or ""), (name, report.warning)
        assert str(path) in (report.warning or "") and "decompressed byte" in (report.warning or "")


@pytest.mark.parametrize("codec", sorted(TOOLS))
def test_files_the_command_line_tools_wrote(
    tmp_path: Path, plain: tuple[bytes, np.ndarray], codec: str
) -> None:
    """The real tools, as an archive is made: multi-threaded where they can (zstd -T2 and
    xz -T2 write several blocks; bzip2's 100 kB blocks)."""
    tool = shutil.which(TOOLS[codec])
    if tool is None:
        pytest.skip(f"{TOOLS[codec]} not installed")
    data, rows = plain
    path = tmp_path / "capture.pcapng"
    path.write_bytes(data)
    threads = ["-T2"] if codec in ("xz", "zstd") else []
    subprocess.run([tool, "-q", *threads, "-k", str(path)], check=True, timeout=60)
    (packed,) = [p for p in tmp_path.iterdir() if p != path]
    batch, report = read_all(packed)
    assert report.complete and report.file_format == f"pcapng+{codec}"
    assert _same_rows(batch.packets, rows)


@pytest.mark.parametrize("codec", sorted(COMPRESS))
def test_compressed_data_that_holds_no_capture_is_named(tmp_path: Path, codec: str) -> None:
    for content, needle in (
        (
            COMPRESS[codec](b"meeting notes, not packets\n" * 4),
            f"{codec}-compressed, but not a capture inside",
        ),
        (COMPRESS[codec](b"meeting notes")[:8], f"{codec}-compressed, but {codec} stream ends"),
    ):
        path = tmp_path / f"notes.{codec}"
        path.write_bytes(content)
        assert not looks_like_capture(path)
        with pytest.raises(NotACaptureError, match=needle) as info:
            CaptureReader(path)
        assert str(path) in str(info.value)


def test_an_xz_stream_that_asks_for_gigabytes_is_refused_not_allocated(tmp_path: Path) -> None:
    """An xz block header names its dictionary size (up to 4 GiB) and liblzma allocates it:
    a hostile file must meet a limit, not a MemoryError (or the machine's swap)."""
    packed = bytearray(lzma.compress(b"x" * 1000, filters=[{"id": lzma.FILTER_LZMA2, "dict_size": 4096}]))
    size = (packed[12] + 1) * 4  # the block header, after the 12-byte stream header
    header = packed[12 : 12 + size]
    at = header.index(b"\x21\x01")  # LZMA2's filter flags: id, properties size, dictionary code
    header[at + 2] = 39  # a 3 GiB dictionary
    header[-4:] = zlib.crc32(bytes(header[:-4])).to_bytes(4, "little")
    packed[12 : 12 + size] = header
    path = tmp_path / "bomb.xz"
    path.write_bytes(bytes(packed))
    with pytest.raises(NotACaptureError, match="xz data cannot be decoded .Memory usage limit"):
        CaptureReader(path)


def test_progress_through_a_compressed_capture_never_passes_its_size(tmp_path: Path) -> None:
    """scan's bar and the workstation's percentage compare bytes read with the file's size:
    counted in decompressed bytes, a capture compressed 10x showed 1000 %."""
    from minerscope.triage import iter_triage

    path = tmp_path / "sample.pcapng.zst"
    path.write_bytes(zstd.compress(SAMPLE.read_bytes()))
    size = path.stat().st_size
    assert size < SAMPLE.stat().st_size
    updates = list(iter_triage(path))
    assert all(0 <= u.bytes_read <= u.bytes_total == size for u in updates)
    assert updates[-1].bytes_read == size
