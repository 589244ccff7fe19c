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
- ``slice=X``: a scheduled fan-out pass over a room sends for X seconds at most before it
  lets the reactor run and owes the rest (``fanout.SLICE``; ``slice=1`` is one pass in one
  go, as before passes were sliced).
- ``entry=X``: newcomers' input is handled for X seconds a reactor turn at most
  (``entry.ENTRY_BUDGET``; ``entry=1``: no pacing, as before it existed).
- ``idle-entry=X``: the same while no fan-out has lines on their way (``entry.IDLE_BUDGET``;
  ``idle-entry=1000``: unbounded, as before 2026-12-06).
- ``outbox``: the line fan-out writes to each member's outbox, as on 88097cf, instead of
  through ``ChatLineProtocol.send`` and ``Fanout.reply`` (two calls per member per pass
  that only matter for replies queued behind a pass).
- ``trace=FILE``: where a line's milliseconds go inside the server. loadgen's lines carry
  their send time (``#L sid seq ns``, CLOCK_MONOTONIC, the clock of ``time.monotonic_ns``),
  so the server can time each line at three points: when its bytes are read, when the
  fan-out pass that carries it starts and when it ends; plus every garbage collection's
  pause and how late each reactor turn's timed calls ran. Percentiles go to FILE (JSON)
  at shutdown. (A pass cut into slices ends, for this, with its first slice.)
- ``gcfreeze``: ``gc.freeze()`` once the reactor runs, so the objects of start-up never
  go through a collection again.
- ``switch=X``: ``sys.setswitchinterval(X)``, the longest the reactor waits for the GIL
  while another thread (history's writer) holds it.
- ``fanout=FILE``: the line front end's fan-out is the ``Fanout`` of FILE, another version
  of ``chatroom/lines/fanout.py`` (e.g. ``git show 753bd16:chatroom/lines/fanout.py``, from
  before the fan-out counted its deliveries for ``--metrics``): what that counting costs.
"""

from __future__ import annotations

import re
import sys
import time
from collections.abc import Callable
from pathlib import Path


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


def patch_fanout_setting(name: str, value: str) -> None:
    """Every ``Fanout`` made from now on gets ``name=value`` (``rest``, ``slice``), and the
    module's default (``REST``, ``SLICE``) is that value too."""
    from chatroom.lines import fanout

    setattr(fanout, name.upper(), float(value))
    original = fanout.Fanout.__init__

    def __init__(self: fanout.Fanout, *args: object, **kwargs: object) -> None:
        kwargs.setdefault(name, float(value))
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


_TRACE_MARK = re.compile(rb"#L \d+ \d+ (\d+)")


def patch_trace(path: str) -> None:
    """Per-line timestamps inside the server, for loadgen's lines (see the module doc)."""
    import gc
    import json

    from twisted.internet import reactor

    from chatroom.lines.fanout import Fanout
    from chatroom.lines.protocol import ChatLineProtocol

    found: dict[str, list[float]] = {"read": [], "pass_start": [], "pass_end": [],
                                     "pass_ms": [], "gc_ms": [], "gc2_ms": [], "late_ms": []}
    clock = time.monotonic_ns

    def sent_at(data: bytes) -> list[int]:
        return [int(m) for m in _TRACE_MARK.findall(data)]

    received = ChatLineProtocol.dataReceived

    def dataReceived(self: ChatLineProtocol, data: bytes) -> None:
        now = clock()
        found["read"].extend((now - ts) / 1e6 for ts in sent_at(data))
        received(self, data)

    ChatLineProtocol.dataReceived = dataReceived  # type: ignore[method-assign]

    def timed(
        original: Callable[..., None], items: Callable[..., list[bytes]]
    ) -> Callable[..., None]:
        def wrapper(self: Fanout, *args: object) -> None:
            marks = [ts for data in items(self, *args) for ts in sent_at(data)]
            start = clock()
            original(self, *args)
            end = clock()
            if marks:
                found["pass_start"].extend((start - ts) / 1e6 for ts in marks)
                found["pass_end"].extend((end - ts) / 1e6 for ts in marks)
                found["pass_ms"].append((end - start) / 1e6)
        return wrapper

    def pass_items(self: Fanout, *_: object) -> list[bytes]:
        if len(self._pending) == 1 and not self._late and not self._echo:
            return []  # a lone line goes through _send_room, which times it
        return [item[4] for item in self._pending]

    Fanout._flush = timed(Fanout._flush, pass_items)  # type: ignore[method-assign]
    Fanout._send_room = timed(  # type: ignore[method-assign]
        Fanout._send_room, lambda self, key, room, sender, data, *_: [data])

    gc_start = [0]

    def on_gc(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            gc_start[0] = clock()
        else:
            ms = (clock() - gc_start[0]) / 1e6
            found["gc2_ms" if info["generation"] == 2 else "gc_ms"].append(ms)

    gc.callbacks.append(on_gc)

    def tick() -> None:
        # a call due every 5 ms: how late it runs is how long the reactor was busy or
        # off the CPU (another process, or the GIL) when it should have run
        due = clock() + 5_000_000

        def check() -> None:
            found["late_ms"].append((clock() - due) / 1e6)
            tick()
        reactor.callLater(0.005, check)  # type: ignore[attr-defined]

    reactor.callWhenRunning(tick)  # type: ignore[attr-defined]

    def dump() -> None:
        def pct(values: list[float]) -> dict[str, float]:
            if not values:
                return {"n": 0}
            v = sorted(values)
            at = lambda p: round(v[min(len(v) - 1, int(p * len(v)))], 3)  # noqa: E731
            return {"n": len(v), "p50": at(0.5), "p90": at(0.9), "p99": at(0.99),
                    "p999": at(0.999), "max": round(v[-1], 3), "sum": round(sum(v), 3)}

        Path(path).write_text(json.dumps({k: pct(v) for k, v in found.items()}, indent=1))

    reactor.addSystemEventTrigger("before", "shutdown", dump)  # type: ignore[attr-defined]


def patch_gcfreeze() -> None:
    import gc

    from twisted.internet import reactor

    reactor.callWhenRunning(gc.freeze)  # type: ignore[attr-defined]


PATCHES: dict[str, Callable[[], None]] = {"nodelay": patch_nodelay, "queued": patch_queued,
                                      "nostore": patch_nostore, "outbox": patch_outbox,
                                      "gcfreeze": patch_gcfreeze}


def main() -> None:
    if len(sys.argv) < 2:
        known = ", ".join(sorted(PATCHES))
        sys.exit(f"usage: {sys.argv[0]} PATCH[,PATCH...] TWISTD-ARGS... (patches: {known})")
    for name in filter(None, sys.argv[1].split(",")):
        if name.startswith(("rest=", "slice=")):
            patch_fanout_setting(*name.split("=", 1))
        elif name.startswith("busy="):
            from chatroom.lines import fanout

            fanout.BUSY = float(name.partition("=")[2])
        elif name.startswith("entry="):
            from chatroom import entry

            budget = float(name.partition("=")[2])
            entry.EntryPacer.__init__.__defaults__ = (budget, max(budget, entry.IDLE_BUDGET))
        elif name.startswith("idle-entry="):
            from chatroom import entry

            entry.EntryPacer.__init__.__defaults__ = (
                entry.ENTRY_BUDGET, float(name.partition("=")[2]))
        elif name.startswith("trace="):
            patch_trace(name.partition("=")[2])
        elif name.startswith("switch="):
            sys.setswitchinterval(float(name.partition("=")[2]))
        elif name.startswith("fanout="):
            patch_fanout(name.partition("=")[2])
        else:
            PATCHES[name]()
    sys.argv = ["twistd", *sys.argv[2:]]
    from twisted.scripts.twistd import run

    run()  # type: ignore[no-untyped-call]


if __name__ == "__main__":
    main()
