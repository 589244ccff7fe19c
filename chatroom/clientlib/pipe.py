"""The user interface for scripts: lines from stdin, received lines to stdout.

Each received line is printed as received (sanitised, without its CRLF) and flushed at
once, so a program at the other end of the pipe can react to it. Sentences from the
client itself go to stderr. Stdin is read by a thread with ``os.read`` (no file locks to
trip over at exit, and it works for terminals, pipes, files and /dev/null alike); the
lines are handed to the reactor, and the thread pauses while the server is not taking
what we send (TCP backpressure reaches the script).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from typing import BinaryIO, TextIO

from twisted.internet.interfaces import IPushProducer
from zope.interface import implementer

from chatroom.clientlib.lines import Line, render
from chatroom.clientlib.session import ClientSession

MAX_INPUT_LINE = 1 << 20
"""Longest stdin line buffered before it is sent anyway (the server will refuse it)."""


@implementer(IPushProducer)
class _Gate:
    """The reader thread's brake, worked by the connection's transport."""

    def __init__(self) -> None:
        self.open = threading.Event()
        self.open.set()
        self.stopped = False

    def pauseProducing(self) -> None:
        self.open.clear()

    def resumeProducing(self) -> None:
        self.open.set()

    def stopProducing(self) -> None:
        self.stopped = True
        self.open.set()


class PipeUi:
    """Plain lines in and out; colours only if asked (stdout is a terminal)."""

    def __init__(
        self,
        call_from_thread: Callable[..., object],
        stdin_fd: int,
        stdout: BinaryIO,
        stderr: TextIO,
        colour: bool = False,
        program: str = "chatroom-client",
    ) -> None:
        self._call = call_from_thread
        self._fd = stdin_fd
        self._out = stdout
        self._err = stderr
        self._colour = colour
        self._program = program
        self._session: ClientSession | None = None
        self._gate = _Gate()
        self._buffer = b""
        self._reading = False
        self._out_broken = False

    # -- UserInterface ------------------------------------------------------------------

    def show(self, line: Line) -> None:
        if self._out_broken:
            return
        try:
            self._out.write(render(line, self._colour).encode("utf-8", "replace") + b"\n")
            self._out.flush()
        except OSError:  # the reader went away (e.g. `| head -1`): leave quietly
            self._out_broken = True
            if self._session is not None:
                self._session.quit()

    def status(self, sentence: str) -> None:
        try:
            self._err.write(f"{self._program}: {sentence}\n")
            self._err.flush()
        except OSError:
            pass

    def set_nick(self, nick: str | None) -> None:
        pass

    def stop_input(self) -> None:
        self._reading = False
        self._gate.stopProducing()

    # -- input ----------------------------------------------------------------------------

    def start(self, session: ClientSession) -> None:
        """Read stdin on a daemon thread; each line goes to ``session``, in order."""
        self._session = session
        self._reading = True
        session.register_producer(self._gate)
        threading.Thread(target=self._read_stdin, name="chatroom-client stdin", daemon=True
                         ).start()

    def close(self) -> None:
        self.stop_input()

    def _read_stdin(self) -> None:
        """The thread: block in ``os.read``, hand the bytes over, stop at EOF."""
        gate = self._gate
        while True:
            gate.open.wait()
            if gate.stopped:
                return
            try:
                chunk = os.read(self._fd, 65536)
            except OSError:
                chunk = b""
            self._call(self._received, chunk)
            if not chunk:
                return

    def _received(self, chunk: bytes) -> None:
        """In the reactor: split ``chunk`` into lines (LF or CRLF) for the session."""
        session = self._session
        if not self._reading or session is None:
            return
        if not chunk:  # EOF: an unterminated last line still counts
            if self._buffer:
                session.user_typed(self._buffer.rstrip(b"\r"))
                self._buffer = b""
            if self._reading:
                session.input_ended()
            return
        self._buffer += chunk
        *lines, self._buffer = self._buffer.split(b"\n")
        if len(self._buffer) > MAX_INPUT_LINE:
            lines.append(self._buffer)
            self._buffer = b""
        for raw in lines:
            if not self._reading:
                return
            session.user_typed(raw.rstrip(b"\r"))
