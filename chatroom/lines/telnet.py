"""Removes telnet negotiation from a byte stream, even when a sequence is split across reads.

A real ``telnet`` client may send ``IAC WILL/WONT/DO/DONT x`` and ``IAC SB ... IAC SE``.
None of that is text, so none of it may be echoed, broadcast or treated as a line. We never
answer: a reply would put bytes on the wire that are not UTF-8, and the client works without.
``IAC IAC`` (an escaped 0xFF data byte) is removed too: 0xFF is never valid UTF-8, so it
could only ever reach anyone as U+FFFD.
"""

from __future__ import annotations

IAC = 0xFF
SB = 0xFA
SE = 0xF0
_OPTION_VERBS = frozenset((0xFB, 0xFC, 0xFD, 0xFE))  # WILL WONT DO DONT

_DATA, _IAC, _OPTION, _SUB, _SUB_IAC = range(5)


class TelnetFilter:
    """Feed it raw bytes; get back the bytes that are data."""

    __slots__ = ("_state",)

    def __init__(self) -> None:
        self._state = _DATA

    def feed(self, data: bytes) -> bytes:
        # 0xFF never occurs in valid UTF-8, so ordinary text takes this fast path.
        if self._state == _DATA and b"\xff" not in data:
            return data
        out = bytearray()
        state = self._state
        for byte in data:
            if state == _DATA:
                if byte == IAC:
                    state = _IAC
                else:
                    out.append(byte)
            elif state == _IAC:
                if byte in _OPTION_VERBS:
                    state = _OPTION
                elif byte == SB:
                    state = _SUB
                else:  # NOP, GA, AYT, ...: a two-byte command
                    state = _DATA
            elif state == _OPTION:
                state = _DATA
            elif state == _SUB:
                if byte == IAC:
                    state = _SUB_IAC
            else:  # _SUB_IAC
                state = _DATA if byte == SE else _SUB
        self._state = state
        return bytes(out)
