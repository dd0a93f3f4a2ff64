"""Every flow's payload prefixes in one byte buffer: :class:`PayloadPrefixes`.

Why: the assembler keeps up to 4 KiB of each direction of every flow for handshake
parsing and stage 0 (100 MB over the 2 M-packet bench capture). Copied out as two
``bytes`` objects per flow that cost 0.16-0.35 CPU s (one allocation per side, most on
fresh pages), and stage 0 then called a regex per object from Python. Here the bytes are
one gather out of the assembler's arena into a single array with an (offset, length)
span per flow and direction; scans that only decide *which* flows need a closer look run
compiled over the whole buffer, and ``bytes`` are made only for the flows that get one.

The class is a ``Sequence[tuple[bytes, bytes]]`` (client->server, server->client), so code
that wants the pairs (the live carry-over, tests) reads it like the list it replaced.
It is immutable: slicing and :meth:`take` share the buffer.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import overload

import numpy as np
import numpy.typing as npt

Spans = npt.NDArray[np.int64]
"""``(n, 4)`` int64: client->server offset and length, then server->client offset and length."""


class PayloadPrefixes(Sequence[tuple[bytes, bytes]]):
    """Per flow, the first payload bytes of each direction, held as ``data`` + ``spans``.

    Attributes:
        data: uint8, every prefix's bytes (regions may be shared or unused).
        spans: int64 ``(n, 4)``: where flow ``i``'s client->server bytes lie
            (``spans[i, 0]``, length ``spans[i, 1]``) and its server->client bytes
            (``spans[i, 2]``, ``spans[i, 3]``).
    """

    __slots__ = ("data", "spans")

    def __init__(self, data: npt.NDArray[np.uint8], spans: Spans) -> None:
        if data.dtype != np.uint8 or data.ndim != 1:
            raise ValueError(f"prefix data must be a 1-D uint8 array, got {data.dtype} with {data.ndim} dims")
        if spans.dtype != np.int64 or spans.ndim != 2 or spans.shape[1] != 4:
            raise ValueError(f"prefix spans must be int64 (n, 4), got {spans.dtype} {spans.shape}")
        if spans.shape[0]:
            offs, lens = spans[:, 0::2], spans[:, 1::2]
            if (offs < 0).any() or (lens < 0).any() or (offs + lens > data.shape[0]).any():
                raise ValueError(f"a prefix span lies outside the {data.shape[0]}-byte buffer")
        self.data = data
        self.spans = spans

    @classmethod
    def from_pairs(cls, pairs: Iterable[tuple[bytes | memoryview, bytes | memoryview]]) -> PayloadPrefixes:
        """The buffer form of (client->server, server->client) pairs (bytes or byte views)."""
        pieces = [side for pair in pairs for side in pair]
        lens = np.fromiter(map(len, pieces), np.int64, len(pieces))
        offs = np.zeros_like(lens)
        np.cumsum(lens[:-1], out=offs[1:])
        data = np.frombuffer(b"".join(pieces), np.uint8)
        return cls(data, np.stack([offs, lens], axis=1).reshape(-1, 4))

    @classmethod
    def of(cls, prefixes: Sequence[tuple[bytes, bytes]]) -> PayloadPrefixes:
        """``prefixes`` itself when already in buffer form, else :meth:`from_pairs` of it."""
        return prefixes if isinstance(prefixes, PayloadPrefixes) else cls.from_pairs(prefixes)

    @staticmethod
    def concat(parts: Sequence[PayloadPrefixes]) -> PayloadPrefixes:
        """One buffer for the flows of ``parts``, in order. A part that uses its whole buffer
        (as the assembler hands them out) is copied as it is; a slice or take of a larger
        one gives only its flows' bytes, so no part brings its parent's whole buffer along."""
        if len(parts) == 1:
            return parts[0]
        datas: list[npt.NDArray[np.uint8]] = []
        spans: list[Spans] = []
        base = 0
        for part in parts:
            if int(part.spans[:, 1::2].sum()) != part.data.shape[0]:
                part = PayloadPrefixes.from_pairs(part._views())
            moved = part.spans.copy()
            moved[:, 0::2] += base
            datas.append(part.data)
            spans.append(moved)
            base += part.data.shape[0]
        return PayloadPrefixes(np.concatenate(datas), np.concatenate(spans))

    def __len__(self) -> int:
        return int(self.spans.shape[0])

    @overload
    def __getitem__(self, index: int) -> tuple[bytes, bytes]: ...

    @overload
    def __getitem__(self, index: slice) -> PayloadPrefixes: ...

    def __getitem__(self, index: int | slice) -> tuple[bytes, bytes] | PayloadPrefixes:
        if isinstance(index, slice):
            return PayloadPrefixes(self.data, self.spans[index])
        c_off, c_len, s_off, s_len = self.spans[index].tolist()
        data = self.data
        return data[c_off : c_off + c_len].tobytes(), data[s_off : s_off + s_len].tobytes()

    def __iter__(self) -> Iterator[tuple[bytes, bytes]]:
        for c2s, s2c in self._views():
            yield c2s.tobytes(), s2c.tobytes()

    def _views(self) -> Iterator[tuple[memoryview, memoryview]]:
        """Each flow's two sides as views of the buffer (no copy)."""
        view = self.data.data
        for c_off, c_len, s_off, s_len in self.spans.tolist():
            yield view[c_off : c_off + c_len], view[s_off : s_off + s_len]

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Sequence):
            return NotImplemented
        return len(other) == len(self) and all(a == tuple(b) for a, b in zip(self, other, strict=True))

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"PayloadPrefixes({len(self)} flows, {int(self.spans[:, 1::2].sum())} bytes)"

    def take(self, index: npt.NDArray[np.integer]) -> PayloadPrefixes:
        """The flows at ``index``, in that order (the buffer is shared)."""
        return PayloadPrefixes(self.data, self.spans[index])

    def head(self, i: int, direction: int, n: int) -> bytes:
        """The first ``n`` bytes (fewer when shorter) of flow ``i``'s ``direction``
        (0 client->server, 1 server->client)."""
        off, length = self.spans[i, 2 * direction : 2 * direction + 2].tolist()
        return self.data[off : off + min(n, length)].tobytes()

    def first_bytes(self, direction: int) -> npt.NDArray[np.int16]:
        """Per flow, the first byte of ``direction`` (0 client->server, 1 server->client); -1 when empty."""
        off, length = self.spans[:, 2 * direction], self.spans[:, 2 * direction + 1]
        out = np.full(off.shape[0], -1, np.int16)
        filled = length > 0
        out[filled] = self.data[off[filled]]
        return out
