"""Splits a byte stream into lines, with a hard cap on how long a line may be.

``LineReceiver`` buffers an over-long line before it notices, and then hands the caller
everything it has buffered, later lines included; we need the opposite: an over-long line
costs no memory (the rest of it is dropped as it arrives, up to its newline) and the lines
after it are kept. Lines end in LF; a CR before the LF is dropped.
"""

from __future__ import annotations

from typing import Final


class TooLong:
    """Stands in for a line that was longer than the limit and was discarded."""

    __slots__ = ()


TOO_LONG: Final = TooLong()


class LineBuffer:
    """Feed it bytes; take complete lines out one at a time, so a reader can stop any time."""

    __slots__ = ("_buffer", "_discarding", "_position", "max_line")

    def __init__(self, max_line: int) -> None:
        self.max_line = max_line
        self._buffer = b""
        self._position = 0
        self._discarding = False

    def feed(self, data: bytes) -> None:
        if self._position:
            self._buffer = self._buffer[self._position :]
            self._position = 0
        self._buffer = self._buffer + data if self._buffer else data
        if self._discarding:
            self._drop_to_newline()

    def next_line(self) -> bytes | TooLong | None:
        """The next complete line, ``TOO_LONG`` for one that was discarded, or ``None``."""
        buffer, position = self._buffer, self._position
        end = buffer.find(b"\n", position)
        if end < 0:
            if len(buffer) - position > self.max_line + 1:  # +1: room for a CR
                self._buffer, self._position = b"", 0
                self._discarding = True
                return TOO_LONG
            return None
        if end + 1 == len(buffer):
            # All taken: the bytes read go now, not when more come (an idle member's last
            # line is otherwise kept for as long as it stays).
            self._buffer, self._position = b"", 0
        else:
            self._position = end + 1
        if end > position and buffer[end - 1] == 13:  # CR before LF
            end -= 1
        if end - position > self.max_line:
            return TOO_LONG
        return buffer[position:end]

    def pending(self) -> int:
        """Bytes held that are not yet a line: what this buffer costs in memory."""
        return len(self._buffer) - self._position

    def _drop_to_newline(self) -> None:
        end = self._buffer.find(b"\n")
        if end < 0:
            self._buffer = b""
            return
        self._buffer = self._buffer[end + 1 :]
        self._discarding = False
