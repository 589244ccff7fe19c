"""The link from a room's hub to its history: every public event, recorded as it happens.

The recorder is one more hub subscriber, like the front ends' fan-out, so the room knows
nothing about history and every front end's events are kept the same way.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import cast

from twisted.application.service import MultiService
from twisted.internet.defer import Deferred

from chatroom.domain.events import Acted, Event, Joined, Left, Notice, Renamed, Said, TopicSet
from chatroom.history.store import IHistory, Row, rows_for
from chatroom.ports import IHub

RECORDED: tuple[type[Event], ...] = (Said, Acted, Joined, Left, Renamed, TopicSet)
"""What the recorder keeps: the room's public events. Never ``Whispered``."""

SHUTDOWN = "server shutdown"
"""The reason of the leaves a stopping server makes (``Session.shutdown``)."""


class HistoryRecorder:
    """A hub listener that passes public events to ``history``.

    Server notices (``Notice``: "server shutting down" and the like) are left out unless
    ``notices`` is set: they describe the server, not the conversation. So are the leaves
    of a server stopping (reason ``SHUTDOWN``): nobody saw them (everyone got ``*** server
    shutting down`` instead), and people did not leave, the server did; a replay after a
    restart would be a wall of them. The joins of people coming back are kept: they are
    real, and a replay folds them (``fold.py``). With Redis the other nodes' members do see
    a stopping node's members leave, but no node records those leaves either, just as a
    restarted node's replay does not show them.
    """

    __slots__ = ("_history", "_kinds", "_record_row")

    def __init__(self, history: IHistory, notices: bool = False) -> None:
        self._history = history
        self._kinds = frozenset((*RECORDED, Notice) if notices else RECORDED)
        # A store that takes rows (both of ours do) is given the row, so that the event
        # is turned into a row once, here, on the reactor thread's hot path.
        self._record_row: Callable[[Row], None] | None = getattr(history, "record_row", None)

    def __call__(self, event: Event) -> None:
        kind = type(event)
        if kind in self._kinds:  # exact types: a private subclass is never public
            if kind is Left and cast(Left, event).reason == SHUTDOWN:
                return
            record_row = self._record_row
            if record_row is None:
                self._history.record(event)
                return
            for row in rows_for(event):
                record_row(row)


class HistoryService(MultiService):
    """Records ``hub``'s events into ``history`` while running; closes it on stop.

    On stop it first stops its child services, then closes the store (writing everything
    queued), and returns the Deferred of all that, so twistd waits for it on SIGTERM. Put
    the front ends' shutdown services under it: the leaves of their goodbyes are then still
    recorded. (A plain ``MultiService`` stops its children all at once, so a sibling's
    leaves would come after the close and be lost.)
    """

    def __init__(self, hub: IHub, history: IHistory, notices: bool = False) -> None:
        super().__init__()
        self.hub = hub
        self.history = history
        self.recorder = HistoryRecorder(history, notices)
        self._unsubscribe: Callable[[], None] | None = None

    def startService(self) -> None:
        if self._unsubscribe is None:
            self._unsubscribe = self.hub.subscribe(self.recorder)
        super().startService()

    def stopService(self) -> Deferred[None]:
        children: Deferred[object] = super().stopService()
        return children.addBoth(self._close)

    def _close(self, _: object) -> Deferred[None]:
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
        return self.history.close()
