"""Telnet on a chat line: negotiation out of the text, and the answers a real telnet waits for.

A real ``telnet`` client may send ``IAC WILL/WONT/DO/DONT x``, ``IAC SB ... IAC SE`` and
two-byte commands. None of that is text, so none of it may be echoed, broadcast or treated
as a line, even when a sequence is split across reads. ``IAC IAC`` (an escaped 0xFF data
byte) is removed too: 0xFF is never valid UTF-8.

Some of it must be answered, or Debian's telnet goes deaf: after Ctrl-C (``IAC IP``) and the
other control keys it sends ``IAC DO TIMING-MARK`` and throws away everything it receives
until the mark comes back (RFC 860). So:

- ``DO TIMING-MARK`` gets ``WILL TIMING-MARK``, every time;
- ``IAC IP`` (Ctrl-C; ``ABORT`` too) ends the input: once the lines before it are handled,
  the connection leaves as ``/quit`` does. ``IAC AYT`` is answered at once with a line (one
  per read, so it costs no more than the read). ``BRK``, ``AO``, ``SUSP`` and the rest are
  ignored (their timing mark is answered);
- the first telnet command a client sends shows it speaks telnet; it is then asked to send
  BINARY (RFC 856), which stops it from reading UTF-8 bytes as control keys: until then it
  clears each typed byte's high bit before comparing it with the terminal's keys, so the
  continuation byte 0x83 (in Greek sigma, Cyrillic u) is Ctrl-C and 0x9C (in ``本``) is
  Ctrl-\\. Such a command in the middle of a UTF-8 character is that byte, and is put back;
- around a password prompt the server offers ``WILL ECHO`` (``hide_input``: the client
  stops echoing what is typed) and takes it back after (``show_input``: ``WONT ECHO``);
  its own state here (RFC 1143) takes the client's ``DO ECHO`` as agreement, not as a
  request to refuse;
- every other option is refused (``WONT``/``DONT``), once per request, as RFC 1143 says.

Nothing is ever sent to a client that has not sent a telnet command first: ``nc`` users see
UTF-8 lines only. Answers collect in ``answer``; the connection sends them, in order with
its other output, between lines.
"""

from __future__ import annotations

import enum

from chatroom.lines import render

IAC = 0xFF
DONT, DO, WONT, WILL = 0xFE, 0xFD, 0xFC, 0xFB
SB, SE = 0xFA, 0xF0
AYT, AO, IP, BRK = 0xF6, 0xF5, 0xF4, 0xF3
ABORT, SUSP = 0xEE, 0xED
BINARY, ECHO, TIMING_MARK = 0x00, 0x01, 0x06

_OPTION_VERBS = frozenset((WILL, WONT, DO, DONT))

MANGLED = {IP: 0x83, AO: 0x8F, SUSP: 0x9A, BRK: 0x9C}
"""The byte each command stands for when Debian's telnet sends it for a typed byte whose low
seven bits are a terminal key (Ctrl-C, Ctrl-O, Ctrl-Z, Ctrl-\\ under stty's defaults)."""

STILL_HERE = render.notice("yes, still here")
"""The answer to ``IAC AYT``."""

_DATA, _IAC, _OPTION, _SUB, _SUB_IAC = range(5)
_NO, _WANT_YES, _YES, _WANT_NO = range(4)  # RFC 1143's states, as far as this side needs


class Command(enum.Enum):
    """What the person at a telnet asked for, handled in turn with their lines."""

    INTERRUPT = "interrupt"  # IAC IP, Ctrl-C: leave


class TelnetFilter:
    """Feed it raw bytes; get back the bytes that are data. Answers collect in ``answer``,
    commands for the connection come out of ``next_command``."""

    __slots__ = ("_asked", "_binary_in", "_binary_out", "_echo", "_interrupted", "_reported",
                 "_state", "_tail", "_telnet", "_verb", "answer")

    def __init__(self) -> None:
        self._state = _DATA
        self._verb = 0
        self._tail = b""  # the last data bytes (up to 3): is a UTF-8 character open?
        self._telnet = False  # it sent a telnet command: it may be answered
        self._binary_in = _NO  # does it send BINARY (8-bit bytes as they were typed)?
        self._binary_out = _NO  # do we?
        self._echo = _NO  # do we echo (so that the client does not)?
        self._interrupted = False
        self._reported = False
        self._asked = False
        self.answer = b""  # rarely anything: an empty bytearray costs 56 bytes

    def feed(self, data: bytes) -> bytes:
        # 0xFF never occurs in valid UTF-8, so ordinary text takes this fast path.
        if self._state == _DATA and not self._interrupted and b"\xff" not in data:
            if data:
                self._tail = _tail(self._tail, data)
            return data
        out = bytearray()
        state = self._state
        for byte in data:
            if state == _DATA:
                if byte == IAC:
                    state = _IAC
                elif not self._interrupted:  # after Ctrl-C, nothing typed counts
                    out.append(byte)
            elif state == _IAC:
                if byte in _OPTION_VERBS:
                    self._verb = byte
                    state = _OPTION
                elif byte == SB:
                    state = _SUB
                else:
                    state = _DATA
                    if byte != IAC:  # IAC IAC: a 0xFF data byte, never UTF-8: dropped
                        self._command(byte, out)
            elif state == _OPTION:
                state = _DATA
                self._negotiate(self._verb, byte)
            elif state == _SUB:
                if byte == IAC:
                    state = _SUB_IAC
            else:  # _SUB_IAC: an option we never agreed to; its content is ignored
                state = _DATA if byte == SE else _SUB
        self._state = state
        if self._asked:
            self._asked = False
            self.answer += STILL_HERE
        if out:
            self._tail = _tail(self._tail, bytes(out[-3:]))
        return bytes(out)

    def next_command(self) -> Command | None:
        """The next command to act on, once the lines received before it are handled."""
        if self._interrupted and not self._reported:
            self._reported = True
            return Command.INTERRUPT
        return None

    def take_answer(self) -> bytes:
        answer, self.answer = self.answer, b""
        return answer

    # -- what it sent ---------------------------------------------------------------

    def _command(self, command: int, out: bytearray) -> None:
        self._spoke_telnet()
        if self._interrupted:
            return
        typed = MANGLED.get(command) if self._binary_in != _YES else None
        if typed is not None and _open_character(self._tail + out[-3:]):
            out.append(typed)  # a byte typed inside a character, not a key: put it back
        elif command in (IP, ABORT):
            self._interrupted = True
        elif command == AYT:
            self._asked = True

    def _negotiate(self, verb: int, option: int) -> None:
        if option == BINARY and verb in (WILL, WONT):
            self._telnet = True  # it has its say on BINARY already: no offer
            self._binary_in = self._agree(verb == WILL, self._binary_in, DO, DONT)
            return
        self._spoke_telnet()
        if option == BINARY:
            self._binary_out = self._agree(verb == DO, self._binary_out, WILL, WONT)
        elif option == ECHO and verb in (DO, DONT):
            self._echo_answered(verb == DO)
        elif option == TIMING_MARK and verb == DO:
            self._send(WILL, TIMING_MARK)  # "all you sent before this is handled"
        elif verb == WILL:
            self._send(DONT, option)
        elif verb == DO:
            self._send(WONT, option)
        # WONT/DONT of an option that is off (all but BINARY are): nothing to say

    def hide_input(self) -> bytes:
        """What to send so the client stops echoing what is typed (a password): ``IAC WILL
        ECHO``, only to a client that negotiated; sent between lines."""
        if not self._telnet or self._echo in (_YES, _WANT_YES):
            return b""
        self._echo = _WANT_YES
        return bytes((IAC, WILL, ECHO))

    def show_input(self) -> bytes:
        """What to send so the client echoes again: ``IAC WONT ECHO``, if it was hidden."""
        if self._echo in (_NO, _WANT_NO):
            return b""
        self._echo = _WANT_NO
        return bytes((IAC, WONT, ECHO))

    @property
    def hiding_input(self) -> bool:
        return self._echo in (_YES, _WANT_YES)

    def _echo_answered(self, agreed: bool) -> None:
        state = self._echo
        if agreed:
            if state == _WANT_YES:
                self._echo = _YES
            elif state == _NO:
                self._send(WONT, ECHO)  # asked unasked: we do not echo
            elif state == _WANT_NO:
                self._echo = _NO  # RFC 1143: an answer out of turn; ours stands
        else:
            self._echo = _NO  # refused, or our WONT acknowledged

    def _agree(self, on: bool, state: int, yes: int, no: int) -> int:
        """RFC 1143 for an option we accept: acknowledge changes, never repeat a state."""
        if on:
            if state == _NO:
                self._send(yes, BINARY)
            return _YES
        if state == _YES:
            self._send(no, BINARY)
        return _NO

    def _spoke_telnet(self) -> None:
        if self._telnet:
            return
        self._telnet = True
        if self._binary_in == _NO:
            self._binary_in = _WANT_YES
            self._send(DO, BINARY)  # so that UTF-8 typed from now on arrives as typed

    def _send(self, verb: int, option: int) -> None:
        self.answer += bytes((IAC, verb, option))


def _tail(tail: bytes, data: bytes) -> bytes:
    """The last data bytes (up to 3) as far as ``_open_character`` needs them: none after
    an ASCII byte (a line's end, most often), which closes any character before it. So an
    idle connection keeps no bytes object of its own here."""
    if data[-1] < 0x80:
        return b""
    return data[-3:] if len(data) >= 3 else (tail + data)[-3:]


def _open_character(data: bytes) -> bool:
    """Does ``data`` end inside a UTF-8 character?"""
    continuations = 0
    for byte in reversed(data[-4:]):
        if 0x80 <= byte <= 0xBF:
            continuations += 1
            continue
        length = 2 if 0xC2 <= byte <= 0xDF else 3 if 0xE0 <= byte <= 0xEF else (
            4 if 0xF0 <= byte <= 0xF4 else 0)
        return length > continuations + 1
    return False
