"""The server's Prometheus metrics: read from what the server already keeps, when scraped.

Nothing here runs per line. ``ServerCollector.collect`` reads, at scrape time, the state the
server keeps anyway (connections of each front end's registry, members of each fan-out,
rooms of the directory, the shared ``Admission``, the history store, the Redis hub) and the
plain counts of ``chatroom.stats`` (each front end's ``Tally``: lines in, deliveries, bytes,
refusals, slow readers). docs/metrics.md lists every metric.

A front end is counted once it is added with ``add_front_end(name, registry, fanout)``:
every front end has a connection registry and a fan-out (its sessions need one), so a new
front end takes one line in ``tap``, and no change here.

prometheus_client's Twisted resource formats the text on a thread of the reactor's pool;
the collector takes its snapshot on the reactor thread (``callFromThread``, bounded by
``SNAPSHOT_TIMEOUT``), where the state it reads changes, so a scrape never sees a set
change size under it. A reactor that does not answer in time makes the scrape fail (500).

``reloaded()`` counts a configuration reload (``chatroom_reloads_total``), for whatever
applies one (SIGHUP, ``/rehash``).
"""

from __future__ import annotations

import queue
import sys
import threading
from collections import Counter
from collections.abc import Callable, Iterable, Sized
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from prometheus_client import CollectorRegistry
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    InfoMetricFamily,
    StateSetMetricFamily,
)
from prometheus_client.gc_collector import GCCollector
from prometheus_client.metrics_core import Metric
from prometheus_client.platform_collector import PlatformCollector
from prometheus_client.process_collector import ProcessCollector
from twisted.copyright import version as twisted_version
from twisted.internet.interfaces import IReactorFromThreads
from twisted.python.failure import Failure

from chatroom.admission import SERVER_FULL, TOO_MANY_FROM_HOST, Admission
from chatroom.cli import chatroom_version
from chatroom.domain.chat import Chat
from chatroom.history.sqlite import SqliteHistory
from chatroom.history.store import IHistory
from chatroom.lines.fanout import Fanout
from chatroom.registry import SHUTTING_DOWN

if TYPE_CHECKING:
    from chatroom.hubs.redis import RedisHub  # imports the reactor: only for types here

T = TypeVar("T")

SNAPSHOT_TIMEOUT = 5.0
"""Seconds a scrape waits for the reactor thread to take the snapshot."""

INPUT_REASONS = {
    "line": "too_long",  # a line over --max-line (line front end)
    "text": "too_long",  # a web message's text over --max-line
    "message": "bad_message",  # a web frame that is not our JSON, binary, too large
    "nick": "nickname",  # a nickname invalid or taken
    "state": "not_joined",  # chat before choosing a nickname
}
"""``Session.refuse``'s ``what`` -> the ``reason`` label; others (``flood``, ``command``,
``room``) are their own label."""

KNOWN_INPUT_REASONS = ("flood", "too_long", "bad_message", "nickname", "command", "room",
                       "not_joined")
"""Shown at 0 before the first of each, so a dashboard's series exist from the start."""

CONNECTION_REASONS = {
    SERVER_FULL: "server_full",
    TOO_MANY_FROM_HOST: "per_address",
    SHUTTING_DOWN: "shutting_down",
}

_reloads = 0


def reloaded() -> None:
    """A configuration reload took effect (SIGHUP, ``/rehash``): ``chatroom_reloads_total``.
    Call it on the reactor thread."""
    global _reloads
    _reloads += 1


def reloads() -> int:
    """Reloads counted since the process started."""
    return _reloads


class Registry(Protocol):
    """What a front end's connection registry shows: its live, admitted connections."""

    @property
    def connections(self) -> Sized: ...


@dataclass(frozen=True)
class FrontEnd:
    name: str
    registry: Registry
    fanout: Fanout


class ServerCollector:
    """Every chatroom metric, read from the server's state at scrape time."""

    def __init__(
        self,
        reactor: IReactorFromThreads,
        chat: Chat,
        admission: Admission,
        history: IHistory | None = None,
        redis: RedisHub | None = None,
    ) -> None:
        """Make it on the reactor thread: a ``collect`` from any other thread takes its
        snapshot there through ``reactor.callFromThread``."""
        self._reactor = reactor
        self._home = threading.get_ident()
        self.chat = chat
        self.admission = admission
        self.history = history
        self.redis = redis
        self.front_ends: list[FrontEnd] = []

    def add_front_end(self, name: str, registry: Registry, fanout: Fanout) -> None:
        """Count this front end's connections, members and ``fanout.tally`` under the label
        ``front_end=name``."""
        self.front_ends.append(FrontEnd(name, registry, fanout))

    def collect(self) -> Iterable[Metric]:
        if threading.get_ident() == self._home:
            return self.snapshot()
        return on_reactor(self._reactor, self.snapshot, SNAPSHOT_TIMEOUT)

    def snapshot(self) -> list[Metric]:
        """Every metric family, as the server is now (on the reactor thread)."""
        return [
            _build_info(),
            *self._front_end_families(),
            *self._admission_families(),
            GaugeMetricFamily("chatroom_rooms", "Rooms that exist now, on every node.",
                              value=len(self.chat.directory)),
            CounterMetricFamily("chatroom_reloads",
                                "Configuration reloads that took effect.", value=reloads()),
            *self._history_families(),
            *self._redis_families(),
        ]

    def _front_end_families(self) -> list[Metric]:
        label = ["front_end"]
        connections = GaugeMetricFamily(
            "chatroom_connections", "Connections open and admitted, by front end.",
            labels=label)
        members = GaugeMetricFamily(
            "chatroom_members", "Members signed in (nickname chosen), by front end.",
            labels=label)
        lines = CounterMetricFamily(
            "chatroom_lines_in", "Lines (web: messages) received and handled, by front end.",
            labels=label)
        deliveries = CounterMetricFamily(
            "chatroom_deliveries",
            "Room events, private lines and notices handed to members' connections, one "
            "per member each (with the replies that waited behind them).",
            labels=label)
        sent = CounterMetricFamily(
            "chatroom_bytes_out", "Bytes of those deliveries, by front end.", labels=label)
        slow = CounterMetricFamily(
            "chatroom_slow_readers",
            "Connections cut because they did not read their output (--max-out).",
            labels=label)
        refused = CounterMetricFamily(
            "chatroom_input_refused",
            "Input refused with an error to the sender, by front end and reason; "
            "reason=flood counts each time a connection was slowed to --rate.",
            labels=["front_end", "reason"])
        for front_end in self.front_ends:
            name, tally = [front_end.name], front_end.fanout.tally
            connections.add_metric(name, len(front_end.registry.connections))
            members.add_metric(name, len(front_end.fanout))
            lines.add_metric(name, tally.lines_in)
            deliveries.add_metric(name, tally.deliveries)
            sent.add_metric(name, tally.bytes_out)
            slow.add_metric(name, tally.slow_readers)
            reasons: Counter[str] = Counter(dict.fromkeys(KNOWN_INPUT_REASONS, 0))
            for what, count in tally.refused.items():
                reasons[INPUT_REASONS.get(what, what)] += count
            for reason, count in sorted(reasons.items()):
                refused.add_metric([front_end.name, reason], count)
        return [connections, members, lines, deliveries, sent, slow, refused]

    def _admission_families(self) -> list[Metric]:
        admission = self.admission
        refused = CounterMetricFamily(
            "chatroom_connections_refused",
            "Connections refused at accept, by reason (every front end).", labels=["reason"])
        reasons: Counter[str] = Counter(dict.fromkeys(CONNECTION_REASONS.values(), 0))
        for why, count in admission.refused.items():
            reasons[CONNECTION_REASONS.get(why, "other")] += count
        for reason, count in sorted(reasons.items()):
            refused.add_metric([reason], count)
        return [
            GaugeMetricFamily(
                "chatroom_sockets_open",
                "Accepted sockets not yet closed, on every port (refused ones being told "
                "why included).", value=admission.open),
            GaugeMetricFamily(
                "chatroom_connections_max",
                "The cap on connections in force (--max-clients, or less: open files).",
                value=admission.max_clients),
            GaugeMetricFamily(
                "chatroom_accepting_paused",
                "1 while accepting is paused because file descriptors run short.",
                value=int(admission.paused)),
            refused,
        ]

    def _history_families(self) -> list[Metric]:
        history = self.history
        if not isinstance(history, SqliteHistory):
            return []
        latency = history.write_latency
        return [
            GaugeMetricFamily(
                "chatroom_history_queue",
                "History events recorded and not yet stored (queued, or being written).",
                value=history.pending),
            CounterMetricFamily("chatroom_history_written", "History events stored.",
                                value=history.written),
            CounterMetricFamily(
                "chatroom_history_dropped",
                "History events dropped because the store fell too far behind.",
                value=history.dropped),
            HistogramMetricFamily(
                "chatroom_history_write_seconds",
                "Seconds from handing a batch of history to the writer thread to its "
                "being stored.",
                buckets=latency.cumulative(), sum_value=latency.total),
            GaugeMetricFamily(
                "chatroom_history_write_failing",
                "1 while writes to the history store fail (they are retried).",
                value=int(history.last_error is not None)),
            GaugeMetricFamily(
                "chatroom_history_unindexed",
                "Stored history events not yet in the search index.",
                value=history.unindexed),
        ]

    def _redis_families(self) -> list[Metric]:
        redis = self.redis
        if redis is None:
            return []
        state = redis.state
        states = StateSetMetricFamily(
            "chatroom_redis_state", "The Redis hub's state (connected: in step).",
            value={s.name.lower(): s is state for s in type(state)})
        return [
            GaugeMetricFamily(
                "chatroom_redis_up", "1 while this node is in step with the room in Redis.",
                value=int(redis.problem() is None)),
            states,
            CounterMetricFamily(
                "chatroom_redis_splits",
                "Times this node lost Redis while in step (the room split).",
                value=redis.splits),
            GaugeMetricFamily(
                "chatroom_redis_read_lag_seconds",
                "From Redis storing the newest entry read to this node reading it, at the "
                "last read that brought entries (Redis's clock against this host's).",
                value=redis.read_lag),
            GaugeMetricFamily(
                "chatroom_redis_unconfirmed_events",
                "Events of this node not yet confirmed stored by Redis.",
                value=redis.unconfirmed),
        ]


def _build_info() -> Metric:
    return InfoMetricFamily(
        "chatroom_build", "The running chatroom's version, and Twisted's and Python's.",
        value={"version": chatroom_version(), "twisted": twisted_version,
               "python": sys.version.split()[0]})


def build_registry(collector: ServerCollector) -> CollectorRegistry:
    """A registry of ``collector`` and prometheus_client's process, platform and garbage
    collector metrics (``process_*``, ``python_*``): a server's own, not the global one."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(collector)
    ProcessCollector(registry=registry)
    PlatformCollector(registry=registry)
    GCCollector(registry=registry)
    return registry


def on_reactor(reactor: IReactorFromThreads, f: Callable[[], T], timeout: float) -> T:
    """``f()``, called on the reactor thread from another thread; raises
    ``TimeoutError`` if it has not answered in ``timeout`` seconds (a stopped reactor),
    rather than waiting for ever as ``blockingCallFromThread`` would."""
    answer: queue.Queue[Any] = queue.Queue(maxsize=1)

    def call() -> None:
        try:
            answer.put(f())
        except BaseException:
            answer.put(Failure())

    reactor.callFromThread(call)
    try:
        result = answer.get(timeout=timeout)
    except queue.Empty:
        raise TimeoutError(f"the reactor did not answer in {timeout:g} s") from None
    if isinstance(result, Failure):
        result.raiseException()
    value: T = result
    return value
