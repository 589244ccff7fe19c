"""WebSocket control frames from a browser, under the same limits as its messages.

autobahn answers a ping at once by writing a pong straight to the transport. So a client
that sends pings and never reads grew the server's memory without bound (the pongs bypassed
the slow-reader cap), and one that flooded pings cost everyone latency (they bypassed flood
control). Here a ping or a pong is an inbox item like a message: it costs one token of the
connection's flood allowance and waits its turn when the allowance is spent (the connection
is not read meanwhile), and the pong leaves through the connection's ``Outbox``, where a
reader that does not read is dropped.
"""

from __future__ import annotations

from dataclasses import dataclass

_PONG = 0x8A  # FIN + opcode 0xA


@dataclass(frozen=True, slots=True)
class Ping:
    """A ping to answer, with its payload (at most 125 bytes: RFC 6455 5.5)."""

    payload: bytes


@dataclass(frozen=True, slots=True)
class Pong:
    """A pong the browser sent (an answer to our keep-alive ping, or unasked): nothing to
    do but count it."""


PONG = Pong()


def pong_frame(payload: bytes) -> bytes:
    """The whole pong frame for ``payload``, as a server sends it (unmasked)."""
    return bytes((_PONG, len(payload))) + payload
