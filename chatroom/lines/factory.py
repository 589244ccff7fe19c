"""The line front end's factory: the registry of connections, and the chat's door.

It admits or refuses each new connection (by the server's shared ``Admission``), keeps
every live connection so a shutdown can reach them all, and subscribes the hub's events
to its ``Fanout`` so every broadcast is rendered once for all of them.
"""

from __future__ import annotations

from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IAddress
from twisted.internet.protocol import Factory
from twisted.internet.protocol import Protocol as BaseProtocol
from twisted.logger import Logger

from chatroom.limits import Limits
from chatroom.lines import render
from chatroom.lines.fanout import Fanout
from chatroom.lines.protocol import ChatLineProtocol
from chatroom.registry import ConnectionRegistry
from chatroom.session import Services


def prefixed(room: str, data: bytes) -> bytes:
    """Lines of a room that is not the reader's current one: ``#dev alice: hi``, each."""
    tag = room.encode("utf-8") + b" "
    return tag + data[:-2].replace(b"\r\n", b"\r\n" + tag) + b"\r\n"


class ChatFactory(Factory):
    _log = Logger()
    noisy = False

    def __init__(self, services: Services) -> None:
        self.services = services
        self.chat = services.chat
        self.clock = services.clock
        self.warnings = services.warnings
        self.fanout = Fanout(services.clock, prefix=prefixed, notice=render.notice,
                             storms=self._storm_settings)
        self.registry: ConnectionRegistry[ChatLineProtocol] = ConnectionRegistry(
            services.limits, services.clock, admission=services.admission
        )
        self._unsubscribe = services.chat.hub.subscribe(self.fanout.deliver)
        if services.entry is not None:
            services.entry.watch(lambda: self.fanout.busy)

    def _storm_settings(self) -> tuple[int, int]:
        limits = self.services.limits  # read each time: a reload may change them
        return limits.storm_members, limits.storm_rate

    @property
    def limits(self) -> Limits:
        """The server's, as they are now (a reload changes them)."""
        return self.services.limits

    @property
    def connections(self) -> set[ChatLineProtocol]:
        return self.registry.connections

    @property
    def stopping(self) -> bool:
        return self.registry.stopping

    def buildProtocol(self, addr: IAddress | None) -> BaseProtocol:
        return self.registry.admit(
            addr, lambda: ChatLineProtocol(self, addr), render.error, self.warnings.warn
        )

    def forget(self, protocol: ChatLineProtocol) -> None:
        """``protocol``'s connection is gone."""
        self.registry.forget(protocol)

    def shutdown(self) -> Deferred[object]:
        """Tell every connection the server is stopping, close them all, and fire when they
        are gone (cutting those still there after ``shutdown_grace``)."""
        self._unsubscribe()
        self.fanout.flush()  # what was said this turn still goes out, before the goodbye
        self.fanout.close()  # nobody needs to hear that everybody else left
        return self.registry.close_all()
