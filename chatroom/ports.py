"""The ports around the domain: what a hub must do, so the room can run on any of them."""

from __future__ import annotations

from collections.abc import Callable

from twisted.internet.defer import Deferred
from zope.interface import Interface

from chatroom.domain.events import Event

Listener = Callable[[Event], None]


class IHub(Interface):
    """Fan-out of one room's events and its room-wide nickname registry.

    The in-process ``LocalHub`` is the default; a hub backed by a shared store lets one
    room span several processes. Every implementation keeps these promises:

    - ``claim`` is atomic room-wide: of two concurrent claims of the same key, exactly
      one fires with ``True``.
    - ``publish`` hands the event to every subscriber of every process, exactly once,
      and events from one member arrive in the order they were published.
    - ``members`` and ``lookup`` answer from this process's view of the roster, without
      waiting, so a command like ``/who`` never blocks on the network.
    """

    def claim(key: str, nick: str, member: str) -> Deferred[bool]:
        """Reserve nickname ``nick`` (whose caseless key is ``key``) for ``member``."""

    def release(key: str, member: str) -> None:
        """Give up ``key`` if ``member`` holds it; a no-op otherwise."""

    def publish(event: Event) -> None:
        """Deliver ``event`` to every subscriber."""

    def subscribe(listener: Listener) -> Callable[[], None]:
        """Call ``listener`` with every event from now on; return a function that stops it."""

    def members() -> list[str]:
        """Every nickname currently claimed in the room."""

    def lookup(key: str) -> tuple[str, str] | None:
        """``(nick, member id)`` of whoever holds ``key``, or ``None``."""
