"""A pseudo-terminal for tests that start a real command and read what a person would see.

Both the workstation test (the whole app in a terminal) and the headless ``live`` status
line need the same steps: open a pty of a given size, hand its slave side to the child,
collect what the child draws, strip the escape sequences, and never leak the child or
the descriptors when an assertion fails half-way.
"""

from __future__ import annotations

import fcntl
import os
import pty
import re
import select
import struct
import subprocess
import termios
from types import TracebackType
from typing import Self

ANSI = re.compile(rb"\x1b(\[[0-9;?<>=]*[ -/]*[@-~]|\][^\x07\x1b]*(\x07|\x1b\\)|[()][0-9A-Za-z]|[=>NOM78c])")
"""Terminal escape sequences (CSI, OSC, charset and mode switches)."""


class PseudoTerminal:
    """``with PseudoTerminal(24, 80) as term:`` start the child on ``term.slave``, then
    :meth:`attach` it; :meth:`read` collects into :attr:`screen`; leaving the block kills
    a child still running and closes the pty."""

    def __init__(self, rows: int, cols: int) -> None:
        self.master, self.slave = pty.openpty()
        fcntl.ioctl(self.slave, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
        self.screen = b""
        self.proc: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> Self:
        return self

    def attach(self, proc: subprocess.Popen[bytes]) -> None:
        """The child has the slave side now: close ours, so its exit ends our reads."""
        self.proc = proc
        os.close(self.slave)
        self.slave = -1

    def read(self, until_s: float) -> bytes:
        """Whatever the terminal shows within ``until_s`` seconds ('' once the child closed it);
        also appended to :attr:`screen`."""
        ready, _, _ = select.select([self.master], [], [], until_s)
        if not ready:
            return b""
        try:
            got = os.read(self.master, 65536)
        except OSError:  # EIO: the child exited and the pty closed
            return b""
        self.screen += got
        return got

    def write(self, data: bytes) -> None:
        os.write(self.master, data)

    def text(self, since: int = 0) -> str:
        """What was drawn (from byte ``since`` of :attr:`screen`), escape sequences removed."""
        return ANSI.sub(b"", self.screen[since:]).decode("utf-8", "replace")

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self.proc is not None:
            if self.proc.poll() is None:
                self.proc.kill()
            self.proc.wait()
        if self.slave >= 0:
            os.close(self.slave)
        os.close(self.master)
