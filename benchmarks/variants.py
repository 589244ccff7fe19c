"""chatroom with experimental patches, to measure a suggested change before anyone makes it.

``python benchmarks/variants.py PATCH[,PATCH...] TWISTD-ARGS...`` applies the patches to
the imported chatroom modules, then runs twistd exactly as ``twistd`` would. Nothing in
``chatroom/`` changes; this exists so the benchmark report can say "this change is worth
N%", measured, not guessed. Patches:

- ``nodelay``: ``transport.setTcpNoDelay(True)`` on every connection (no Nagle delay for
  the small writes of a quiet room).
- ``direct``: ``Outbox.send`` tries ``socket.send`` at once when the transport has nothing
  buffered, and hands Twisted only what the kernel did not take. Twisted's own ``write``
  always buffers and registers for writability, which costs an ``epoll_ctl`` to start and
  another to stop writing, plus an event dispatch, per connection per reactor turn.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any


def patch_nodelay() -> None:
    from chatroom.lines.protocol import ChatLineProtocol

    original = ChatLineProtocol.connectionMade

    def connectionMade(self: ChatLineProtocol) -> None:
        set_nodelay = getattr(self.transport, "setTcpNoDelay", None)
        if set_nodelay is not None:
            set_nodelay(True)
        original(self)

    ChatLineProtocol.connectionMade = connectionMade  # type: ignore[method-assign]


def patch_direct() -> None:
    from chatroom.lines.outbox import Outbox

    queued_send = Outbox.send

    def send(self: Outbox, data: bytes) -> None:
        transport: Any = self._transport
        if (
            not self._paused
            and not transport._tempDataLen
            and not transport.dataBuffer
            and transport.connected
            and not transport.disconnecting
            and not transport._writeDisconnected
        ):
            sock = getattr(transport, "socket", None)
            if sock is not None:
                try:
                    sent = sock.send(data)
                except BlockingIOError:
                    sent = 0
                except OSError:
                    sent = 0  # let Twisted's own write find and report the error
                if sent == len(data):
                    return
                data = data[sent:]
        queued_send(self, data)

    Outbox.send = send  # type: ignore[method-assign]


PATCHES: dict[str, Callable[[], None]] = {"nodelay": patch_nodelay, "direct": patch_direct}


def main() -> None:
    if len(sys.argv) < 2:
        known = ", ".join(sorted(PATCHES))
        sys.exit(f"usage: {sys.argv[0]} PATCH[,PATCH...] TWISTD-ARGS... (patches: {known})")
    for name in filter(None, sys.argv[1].split(",")):
        PATCHES[name]()
    sys.argv = ["twistd", *sys.argv[2:]]
    from twisted.scripts.twistd import run

    run()  # type: ignore[no-untyped-call]


if __name__ == "__main__":
    main()
