"""The user interface for people: a prompt_toolkit line editor on the asyncio reactor.

Received lines are printed *above* the prompt (``run_in_terminal`` hides the prompt,
prints, and redraws it with whatever was being typed), so they never garble the input.
All output goes through one queue drained by one task, so lines keep their order whether
or not the prompt is showing at that moment. ``patch_stdout`` catches any stray print.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
from typing import TextIO

from prompt_toolkit import PromptSession
from prompt_toolkit.application import run_in_terminal
from prompt_toolkit.formatted_text import ANSI
from prompt_toolkit.history import InMemoryHistory
from prompt_toolkit.patch_stdout import patch_stdout
from twisted.internet.defer import Deferred

from chatroom.clientlib.lines import Line, nick_style, render, sgr
from chatroom.clientlib.session import ClientSession


class TerminalUi:
    """A prompt showing the nickname (``alice> ``), coloured lines above it."""

    def __init__(self, colour: bool, stdout: TextIO | None = None,
                 stderr: TextIO | None = None) -> None:
        self._colour = colour
        self._stdout = stdout or sys.stdout
        self._stderr = stderr or sys.stderr
        self._prompt: PromptSession[str] = PromptSession(history=InMemoryHistory())
        self._message = self._prompt_for(None)
        self._session: ClientSession | None = None
        self._input: asyncio.Task[None] | None = None
        self._pending: list[tuple[TextIO, str]] = []
        self._writer: asyncio.Task[None] | None = None
        self._stopping = False

    # -- UserInterface ------------------------------------------------------------------

    def show(self, line: Line) -> None:
        self._print(self._stdout, render(line, self._colour) + "\n")

    def status(self, sentence: str) -> None:
        text = f"-- {sentence}"
        if self._colour:
            text = f"\x1b[{sgr('replay')}m{text}\x1b[0m"
        self._print(self._stderr, text + "\n")

    def set_nick(self, nick: str | None) -> None:
        self._message = self._prompt_for(nick)
        app = self._prompt.app
        if app.is_running:
            app.invalidate()

    def stop_input(self) -> None:
        """End the prompt (keeping what it showed), and ask for no more input."""
        self._stopping = True
        app = self._prompt.app
        if app.is_running and not app.is_done:
            with contextlib.suppress(Exception):  # already exiting: the loop sees _stopping
                app.exit(result="")

    # -- life -----------------------------------------------------------------------------

    def start(self, session: ClientSession) -> None:
        self._session = session
        self._input = asyncio.ensure_future(self._read_input())

    def close(self) -> Deferred[None]:
        """Fires once the prompt is gone (terminal restored) and all output is written."""
        self.stop_input()
        return Deferred.fromFuture(asyncio.ensure_future(self._closed()))

    async def _closed(self) -> None:
        if self._input is not None:
            await asyncio.gather(self._input, return_exceptions=True)
        while self._writer is not None:
            await asyncio.gather(self._writer, return_exceptions=True)

    # -- input ----------------------------------------------------------------------------

    def _prompt_for(self, nick: str | None) -> ANSI | str:
        label = nick if nick is not None else "nickname"
        if not self._colour or nick is None:
            return f"{label}> "
        return ANSI(f"\x1b[{sgr(nick_style(nick) + ' me')}m{label}\x1b[0m> ")

    async def _read_input(self) -> None:
        session = self._session
        assert session is not None
        with patch_stdout(raw=True):
            while not self._stopping:
                try:
                    text = await self._prompt.prompt_async(
                        lambda: self._message, handle_sigint=False
                    )
                except EOFError:  # Ctrl-D on an empty line
                    if not self._stopping:
                        session.input_ended()
                    break
                except KeyboardInterrupt:  # Ctrl-C (a key, not a signal, in raw mode)
                    if not self._stopping:
                        session.interrupted()
                    break
                if self._stopping:
                    break
                for line in text.splitlines() or [""]:  # a paste may hold several lines
                    if line.strip():
                        session.user_typed(line)

    # -- output ---------------------------------------------------------------------------

    def _print(self, stream: TextIO, text: str) -> None:
        self._pending.append((stream, text))
        if self._writer is None:
            self._writer = asyncio.ensure_future(self._write_pending())

    async def _write_pending(self) -> None:
        """The one writer: hides the prompt, prints everything queued, redraws."""
        try:
            while self._pending:
                batch, self._pending = self._pending, []
                await run_in_terminal(lambda batch=batch: _write(batch))  # type: ignore[misc]
        finally:
            self._writer = None


def _write(batch: list[tuple[TextIO, str]]) -> None:
    for stream, text in batch:
        encoding = getattr(stream, "encoding", None) or "utf-8"
        try:
            stream.write(text.encode(encoding, "replace").decode(encoding))
            stream.flush()
        except (OSError, ValueError):  # the terminal is gone: nothing left to tell
            pass
