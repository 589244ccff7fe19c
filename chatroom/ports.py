"""The ports around the domain: what a hub must do, so the room can run on any of them."""

from __future__ import annotations

from collections.abc import Callable

from twisted.internet.defer import Deferred
from zope.interface import Interface

from chatroom.domain.events import Event

Listener = Callable[[Event], None]


class INicknames(Interface):
    """The server-wide registry of nicknames: who holds which, on every front end and node.

    - ``claim`` is atomic server-wide: of two concurrent claims of the same key, exactly
      one fires with ``True``.
    - ``lookup`` answers from this process's view, without waiting, so ``/msg`` never
      blocks on the network.
    """

    def claim(key: str, nick: str, member: str) -> Deferred[bool]:
        """Reserve nickname ``nick`` (whose key is ``key``) for ``member``."""

    def release(key: str, member: str) -> None:
        """Give up ``key`` if ``member`` holds it; a no-op otherwise."""

    def lookup(key: str) -> tuple[str, str] | None:
        """``(nick, member id)`` of whoever holds ``key``, or ``None``."""

    def members() -> list[str]:
        """Every nickname currently claimed on the server."""


class IHub(Interface):
    """Fan-out of every room's events (each event names its room).

    The in-process ``LocalHub`` is the default; a hub backed by a shared store lets the
    rooms span several processes. Every implementation keeps these promises:

    - ``publish`` hands the event to every subscriber of every process, exactly once,
      and events from one member arrive in the order they were published.
    - A node's own events reach its own subscribers at once, inside ``publish``: a front
      end may count on its listeners having seen an event when ``publish`` returns.
    """

    def publish(event: Event) -> None:
        """Deliver ``event`` to every subscriber."""

    def subscribe(listener: Listener) -> Callable[[], None]:
        """Call ``listener`` with every event from now on; return a function that stops it."""
