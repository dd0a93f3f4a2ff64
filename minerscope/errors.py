"""The whole exception tree of minerscope, and whose fault each branch is.

::

    MinerscopeError
    ├── InputError                 the user's file, argument or setting is at fault
    │   ├── CaptureError           a capture cannot be read at all
    │   │   ├── NotACaptureError       the magic bytes match no supported format
    │   │   └── UnsupportedLinkTypeError  a link type we cannot decode (never silently empty)
    │   ├── CapturePrivilegeError  live capture refused: no root or CAP_NET_RAW
    │   ├── ModelError             a model file is missing, malformed, or of another schema
    │   ├── StoreError             a case file is not SQLite, is corrupt, or is too new
    │   └── ScopeError             a probe target lies outside the allowed scope
    ├── RemoteError                the peer (a probed server) misbehaved
    │   ├── LimitExceededError     a named read limit (bytes, line length, frames) was hit
    │   └── RemoteProtocolError    the peer broke the protocol it claims to speak
    └── InternalError              our own bug: report it

A *damaged* capture is not an exception: the reader keeps every packet before the damage
and reports it in its ``ReadReport`` (see :mod:`minerscope.capture.pcap`), so nothing
that could be read is lost. The CLI maps classes to exit codes in one place
(:func:`minerscope.cli.common.exit_code_for`).
"""

from __future__ import annotations


class MinerscopeError(Exception):
    """Base class of every error minerscope raises on purpose."""


class InputError(MinerscopeError):
    """The user's input (a file, an argument, a setting) is at fault."""


class CaptureError(InputError):
    """A capture file cannot be read at all."""

    def __init__(self, message: str, *, path: str | None = None, offset: int | None = None):
        self.path = path
        self.offset = offset
        where = ""
        if path is not None:
            where = f"{path}"
            if offset is not None:
                where += f" at byte {offset}"
            where += ": "
        super().__init__(f"{where}{message}")


class NotACaptureError(CaptureError):
    """The file's magic bytes match no supported capture format."""


class UnsupportedLinkTypeError(CaptureError):
    """The capture uses a link type minerscope cannot decode."""


class CapturePrivilegeError(InputError):
    """Opening a packet socket was refused: the process lacks root or ``CAP_NET_RAW``.

    The user's setting, not a bad capture: the message says how to grant the capability
    (:func:`minerscope.capture.live.privilege_hint`).
    """


class ModelError(InputError):
    """A model file is missing, malformed, or was built for another feature schema."""


class StoreError(InputError):
    """A case file is not SQLite, fails its integrity check, or comes from a newer version."""


class ScopeError(InputError):
    """A probe target lies outside the configured scope; nothing was sent to it."""


class RemoteError(MinerscopeError):
    """A remote peer misbehaved (it is their fault, not ours and not the user's)."""


class LimitExceededError(RemoteError):
    """A named security limit was hit while reading from a peer.

    Attributes:
        limit: the name of the limit (``max_line_bytes``, ``max_total_bytes`` ...).
        value: the configured limit.
    """

    def __init__(self, limit: str, value: int, detail: str = ""):
        self.limit = limit
        self.value = value
        extra = f": {detail}" if detail else ""
        super().__init__(f"peer exceeded {limit}={value}{extra}")


class RemoteProtocolError(RemoteError):
    """The peer broke the protocol it appears to speak."""


class InternalError(MinerscopeError):
    """A bug in minerscope itself."""
