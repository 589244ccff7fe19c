"""chatroom with experimental patches, to measure a suggested change before anyone makes it.

``python benchmarks/variants.py PATCH[,PATCH...] TWISTD-ARGS...`` applies the patches to
the imported chatroom modules, then runs twistd exactly as ``twistd`` would. Nothing in
``chatroom/`` changes; this exists so the benchmark report can say "this change is worth
N%", measured, not guessed. Patches:

- ``nodelay``: ``transport.setTcpNoDelay(True)`` on every connection (no Nagle delay for
  the small writes of a quiet room).
- ``queued``: every write through ``transport.write`` (``Outbox``), as before
  ``SocketOutbox`` landed: what writing straight to the socket saves.
- ``nostore``: history on, but ``SqliteHistory`` drops every row instead of writing it:
  the reactor's share of history's cost (recorder, replay buffer) without the writer's.
- ``rest=X``: ``Fanout``'s pause between passes is X times the last pass (``fanout.REST``;
  ``rest=0`` starts the next pass at once).
- ``outbox``: the line fan-out writes to each member's outbox, as on 88097cf, instead of
  through ``ChatLineProtocol.send`` and ``Fanout.reply`` (two calls per member per pass
  that only matter for replies queued behind a pass).
- ``fanout=FILE``: the line front end's fan-out is the ``Fanout`` of FILE, another version
  of ``chatroom/lines/fanout.py`` (e.g. ``git show 753bd16:chatroom/lines/fanout.py``, from
  before the fan-out counted its deliveries for ``--metrics``): what that counting costs.
"""

from __future__ import annotations

import sys
from collections.abc import Callable


def patch_nodelay() -> None:
    from chatroom.lines.protocol import ChatLineProtocol

    original = ChatLineProtocol.connectionMade

    def connectionMade(self: ChatLineProtocol) -> None:
        set_nodelay = getattr(self.transport, "setTcpNoDelay", None)
        if set_nodelay is not None:
            set_nodelay(True)
        original(self)

    ChatLineProtocol.connectionMade = connectionMade  # type: ignore[method-assign]


def patch_queued() -> None:
    from chatroom.lines import protocol

    protocol.writable_socket = lambda transport: None  # type: ignore[assignment]


def patch_nostore() -> None:
    from chatroom.history.sqlite import SqliteHistory

    SqliteHistory.record_row = lambda self, row: None  # type: ignore[method-assign]


def patch_rest(value: str) -> None:
    from chatroom.lines import fanout

    fanout.REST = float(value)
    original = fanout.Fanout.__init__

    def __init__(self: fanout.Fanout, *args: object, **kwargs: object) -> None:
        kwargs.setdefault("rest", float(value))
        original(self, *args, **kwargs)  # type: ignore[arg-type]

    fanout.Fanout.__init__ = __init__  # type: ignore[method-assign]


def patch_outbox() -> None:
    from chatroom.domain.chat import Member
    from chatroom.lines.fanout import Fanout, Recipient
    from chatroom.lines.protocol import ChatLineProtocol

    original = Fanout.add

    def add(self: Fanout, member: Member, recipient: Recipient) -> None:
        if isinstance(recipient, ChatLineProtocol) and recipient.outbox is not None:
            recipient = recipient.outbox
        original(self, member, recipient)

    Fanout.add = add  # type: ignore[method-assign]


def patch_fanout(path: str) -> None:
    import importlib.util

    from chatroom.lines import factory
    from chatroom.stats import Tally

    spec = importlib.util.spec_from_file_location("fanout_variant", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)

    class Fanout(module.Fanout):  # type: ignore[name-defined,misc]
        def __init__(self, *args: object, **kwargs: object) -> None:
            super().__init__(*args, **kwargs)
            if not hasattr(self, "tally"):
                self.tally = Tally()  # the sessions count into it; the fan-out does not

    factory.Fanout = Fanout  # type: ignore[misc]


PATCHES: dict[str, Callable[[], None]] = {"nodelay": patch_nodelay, "queued": patch_queued,
                                      "nostore": patch_nostore, "outbox": patch_outbox}


def main() -> None:
    if len(sys.argv) < 2:
        known = ", ".join(sorted(PATCHES))
        sys.exit(f"usage: {sys.argv[0]} PATCH[,PATCH...] TWISTD-ARGS... (patches: {known})")
    for name in filter(None, sys.argv[1].split(",")):
        if name.startswith("rest="):
            patch_rest(name.partition("=")[2])
        elif name.startswith("fanout="):
            patch_fanout(name.partition("=")[2])
        else:
            PATCHES[name]()
    sys.argv = ["twistd", *sys.argv[2:]]
    from twisted.scripts.twistd import run

    run()  # type: ignore[no-untyped-call]


if __name__ == "__main__":
    main()
