"""The Redis hub: one room spread over every server process that uses the same Redis.

How it works (``REDIS-notes.md`` has the reasons):

- Events from this node's members go to its own listeners at once, as with ``LocalHub``,
  and are appended to the room's Redis stream (``XADD``). A reader connection follows the
  stream (``XREAD BLOCK``) and hands other nodes' events to the listeners. A stream, not
  pub/sub: after a lost connection the reader catches up from its last entry id, and
  entries this node sent but saw no reply for are sent again (readers drop the copies).
- Nicknames are claimed with a Lua script (compare-and-set with a time to live, the
  lease); each node renews its claims and its heartbeat every sixth of a lease. A node
  whose heartbeat ran out is reaped by one survivor: a script that writes its members'
  ``Left`` events and frees their nicknames only if no other survivor did, and only once
  Redis has heard the room without a gap for a whole heartbeat (a restarted Redis lost
  every heartbeat; their nodes are on their way back).
- ``members()`` and ``lookup()`` answer from a view of the roster kept up to date from
  the stream, so they never wait for the network.
- Without Redis (stopped, restarted, unreachable) the node goes on like a ``LocalHub``
  for its own members, tells them the room is split, reconnects with backoff, then makes
  the others' view of its members right again and says the room is whole.
- Redis is spoken to through txredisapi (``RedisConnection``), on the default reactor;
  hiredis parses the replies when it is installed.
"""

from __future__ import annotations

import contextlib
import enum
import os
import random
from collections import deque
from collections.abc import Callable
from typing import Any, NamedTuple, cast

# txredisapi imports twisted.internet.reactor when it is imported: this module must be
# imported only once the reactor is installed (tap.py does so in build_service).
import txredisapi
from twisted.application.internet import backoffPolicy
from twisted.application.service import Service
from twisted.internet.defer import (
    CancelledError,
    Deferred,
    DeferredList,
    ensureDeferred,
    fail,
    succeed,
)
from twisted.internet.error import ConnectionClosed
from twisted.internet.interfaces import IReactorTime, IStreamClientEndpoint
from twisted.internet.protocol import Factory
from twisted.internet.task import LoopingCall, deferLater
from twisted.logger import Logger
from twisted.python.failure import Failure
from zope.interface import implementer

from chatroom.domain import nicknames
from chatroom.domain.events import (
    Event,
    Joined,
    Left,
    Notice,
    Present,
    Renamed,
    TopicKnown,
    TopicSet,
    Whispered,
)
from chatroom.hubs import redis_wire as wire
from chatroom.hubs.redis_resp import RedisAddress, parse_url
from chatroom.ports import IHub, INicknames, Listener

SPLIT = "the room is split: lost contact with the other servers"
WHOLE = "the room is whole again"

People = dict[str, tuple[str, tuple[str, ...]]]
"""member id -> (nickname, the rooms it is in, in the order it joined them)."""

DEFAULT_LEASE = 15.0
"""Seconds a dead node's members keep their nicknames at most (their Left comes sooner)."""


def reconnect_policy(lease: float) -> Callable[[int], float]:
    """Seconds before the next attempt to reach Redis: from 0.25 s, doubling, to a sixth of
    the lease at most (5 s at most), plus up to a fifth of that at random. Short next to the
    heartbeat (two thirds of a lease): a node that lost Redis only because Redis went away
    is back and renewing before the others could take it for dead (docs/redis.md)."""
    longest = min(5.0, lease / 6)
    return backoffPolicy(initialDelay=min(0.25, longest), maxDelay=longest, factor=2.0,
                         jitter=lambda: random.random() * longest / 5)


class NotInStep(Exception):
    """This attempt to connect and get in step with the room failed; the next may not."""


# Failures that mean "Redis is out of reach now", not "Redis said no".
_UNREACHABLE = (txredisapi.ConnectionError, ConnectionClosed, CancelledError, NotInStep)


class Holder(NamedTuple):
    nick: str
    member: str
    node: str


class State(enum.Enum):
    IDLE = "not yet connected"
    SYNCING = "connected, catching up"
    CONNECTED = "connected"
    SPLIT = "split"
    STOPPED = "stopped"


class RedisConnection(txredisapi.RedisProtocol):  # type: ignore[misc]  # untyped library
    """txredisapi's protocol (with the hiredis parser when hiredis is installed), as the
    hub uses it: replies stay bytes (no guessing of numbers or text), small commands leave
    at once (TCP_NODELAY), a command on a closed connection fails instead of raising, and
    it knows since when Redis has kept a command waiting, for the hub's hang watchdog."""

    def __init__(self, address: RedisAddress, clock: IReactorTime) -> None:
        super().__init__(
            charset=None, convertNumbers=False, password=address.password,
            username=address.username or None, dbid=address.db or None,
        )
        self._now = clock.seconds
        self.callLater = clock.callLater  # txredisapi's own timers, on the hub's clock
        self.busy_since = clock.seconds()

    def connectionMade(self) -> Any:
        # Small pipelined commands must leave now: Nagle's algorithm would hold them for
        # the server's delayed ACK (tens of milliseconds per hop).
        set_no_delay = getattr(self.transport, "setTcpNoDelay", None)
        if set_no_delay is not None:
            with contextlib.suppress(OSError):
                set_no_delay(True)
        return super().connectionMade()  # AUTH and SELECT, then whenConnected fires

    def execute_command(self, *args: Any, **kwargs: Any) -> Deferred[Any]:
        if not self.replyQueue.waiting:
            self.busy_since = self._now()
        try:
            return cast(Deferred[Any], super().execute_command(*args, **kwargs))
        except txredisapi.ConnectionError as e:
            return fail(e)

    def replyReceived(self, reply: Any) -> None:
        self.busy_since = self._now()
        super().replyReceived(reply)

    # Two of txredisapi's inner steps, done with the same results at a fraction of the
    # CPU (tests compare them with txredisapi's own): they were most of its cost per event.

    def _build_command(self, *args: Any, **kwargs: Any) -> bytes:
        """A command as RESP: txredisapi's encoding of each argument, one join."""
        encode = self._encode_value
        parts = [b"*%d\r\n" % len(args)]
        for arg in args:
            data = arg if type(arg) is bytes else encode(arg)
            parts.append(b"$%d\r\n%s\r\n" % (len(data), data))
        return b"".join(parts)

    def tryConvertData(self, data: Any) -> Any:
        """With ``charset=None`` and ``convertNumbers=False`` txredisapi gives the data
        back as it is, after walking every nested list to find that out."""
        return data

    def stalled(self) -> float:
        """Seconds Redis has answered nothing while a command waited (0 if none waits)."""
        if not self.replyQueue.waiting:
            return 0.0
        return self._now() - self.busy_since

    def abort(self) -> None:
        """Drop the connection now, without waiting for unsent data (a hung server)."""
        transport: Any = self.transport
        if transport is not None:
            transport.abortConnection()


class _Factory(Factory):
    """Builds one connection's protocol; also what txredisapi's protocol calls on its
    factory when AUTH or SELECT fails."""

    noisy = False
    isLazy = False

    def __init__(self, hub: RedisHub) -> None:
        self.hub = hub
        self.refused: str | None = None

    def buildProtocol(self, addr: Any) -> RedisConnection:
        protocol = RedisConnection(self.hub.address, self.hub.clock)
        protocol.factory = self
        return protocol

    def stopTrying(self) -> None:
        """Nothing to stop: the hub keeps trying, with backoff (a password or an ACL may
        be fixed in Redis meanwhile)."""

    def connectionError(self, why: str) -> None:
        self.refused = why


@implementer(IHub, INicknames)
class RedisHub(Service):
    """A hub shared through Redis; a service, so it connects on start and says goodbye on stop."""

    _log = Logger()

    def __init__(
        self,
        address: RedisAddress | str,
        room: str,
        reactor: Any,
        *,
        lease: float = DEFAULT_LEASE,
        timeout: float | None = None,
        backlog: int = 10_000,
        node: str | None = None,
        retry: Callable[[int], float] | None = None,
        endpoint: IStreamClientEndpoint | None = None,
    ) -> None:
        self.address = parse_url(address) if isinstance(address, str) else address
        self.room = room
        self.clock: IReactorTime = reactor
        self.node = node or os.urandom(6).hex()
        self.lease = lease
        self.heartbeat = lease * 2 / 3
        self.interval = lease / 6
        # Longer than this without a renewal from any node, and Redis gives every node a
        # heartbeat to come back before it lets anyone be reaped (redis_wire: heard, settling).
        self.hearing = lease / 4
        self.timeout = timeout if timeout is not None else min(5.0, max(0.5, lease / 3))
        self.block = max(0.05, min(1.0, self.interval))
        self.backlog = backlog
        self.keys = wire.Keys(room)
        self._endpoint = endpoint or self.address.endpoint(reactor)
        self._retry = retry or reconnect_policy(lease)
        self._listeners: list[Listener] = []
        self._view: dict[str, Holder] = {}
        self._mine: dict[str, tuple[str, str]] = {}  # key -> (nick, member) claimed here
        self._unreleased: dict[str, str] = {}  # key -> member released while split
        self._present: People = {}  # this node's members now
        self._announced: People = {}  # this node's members, as the other nodes know them
        self._remote: People = {}  # the other nodes' members, from their events
        self._topics: dict[str, TopicKnown] = {}  # room -> its topic, as last heard
        self.views: list[Callable[[], list[Event]]] = []
        """What else a late node is told (view events): moderation adds every room's state."""
        self.kept: list[Callable[[], list[Event]]] = []
        """What every node keeps in its state file (accounts, server bans, each change with
        its time), as view events: told to a late node with ``views``, and told by a node
        that comes (back) to the others, right after its ``Hello``. Whoever gets one keeps
        the later change (a node that was down learns what changed meanwhile; one that was
        alone teaches the others what changed on it)."""
        self._seq = 0
        self._inflight: deque[tuple[int, bytes]] = deque()  # sent, or to be; not stored yet
        self._batch: list[tuple[int, bytes]] = []  # this reactor turn's entries, unsent
        self._flush_call: Any = None
        self._seen: dict[str, int] = {}  # node -> last sequence number delivered from it
        self._last_id = b"0-0"
        self._suspects: dict[str, int] = {}  # node -> ticks its members outlived its reap
        self.state = State.IDLE
        self.splits = 0
        """Times contact with Redis was lost while in step with the room."""
        self.read_lag = 0.0
        """Seconds from Redis storing the newest stream entry read to this node reading it
        (Redis's clock against this one), as of the last read that brought entries."""
        self._cmd: RedisConnection | None = None
        self._reader: RedisConnection | None = None
        self._whole_waiters: list[Deferred[None]] = []
        self._lost: Deferred[None] | None = None  # fires when this connection pair drops
        self._running: Deferred[None] | None = None  # the reconnect loop
        # The hot path's commands, encoded once (txredisapi passes bytes through as they are).
        stream, node_id, maxlen = self.keys.stream.encode(), self.node.encode(), b"%d" % backlog
        self._xadd = (b"XADD", stream, b"MAXLEN", b"~", maxlen, b"*", b"n", node_id, b"s")
        self._append = (b"EVAL", wire.APPEND.encode(), b"1", stream, maxlen, node_id)
        self._xread = (b"XREAD", b"COUNT", b"512", b"BLOCK", b"%d" % int(self.block * 1000),
                       b"STREAMS", stream)
        self._ticker = LoopingCall(self._tick)
        self._ticker.clock = reactor

    # -- the service ------------------------------------------------------------------

    def startService(self) -> None:
        super().startService()
        self._log.info("joining room {room} through Redis at {address} as node {node}",
                       room=self.room, address=str(self.address), node=self.node)
        self._running = ensureDeferred(self._run())
        self._ticker.start(self.interval, now=False)

    def stopService(self) -> Deferred[None]:
        super().stopService()
        return ensureDeferred(self._stop())

    async def _stop(self) -> None:
        if self._ticker.running:
            self._ticker.stop()
        was, self.state = self.state, State.STOPPED
        cmd = self._cmd
        if was is State.CONNECTED and cmd is not None:
            # Members still here (a front end that did not say goodbye) leave the others' view.
            now = self.clock.seconds()
            for member, (nick, rooms) in list(self._announced.items()):
                for room in rooms:
                    self._send(Left(room, now, member, nick, "server stopped"))
            self._announced.clear()
            self._flush()  # before the releases: the others hear them leave, then the keys go
            for key, (_, member) in list(self._mine.items()):
                cmd.eval(wire.RELEASE, [self.keys.nick(key)], [member]).addErrback(self._ignore)
            done = cmd.execute_command("DEL", self.keys.node(self.node))  # replies in order
            done.addTimeout(self.timeout, self.clock)
            try:
                await done
            except Exception as e:
                self._log.warn("could not say goodbye to Redis: {why}",
                               why=str(e) or type(e).__name__)
        self._drop_connections()
        if self._missed_call is not None and self._missed_call.active():
            self._missed_call.cancel()
        running, self._running = self._running, None
        if running is not None:
            running.cancel()  # a wait before the next attempt, or an attempt under way
            with contextlib.suppress(CancelledError):
                await running
        for waiter in self._whole_waiters:
            waiter.cancel()
        self._whole_waiters = []

    def when_connected(self) -> Deferred[None]:
        """Fires when the hub is (again) connected and in step with the room: for tests."""
        if self.state is State.CONNECTED:
            return succeed(None)
        waiter: Deferred[None] = Deferred()
        self._whole_waiters.append(waiter)
        return waiter

    # -- IHub ------------------------------------------------------------------------

    def claim(self, key: str, nick: str, member: str) -> Deferred[bool]:
        cmd = self._cmd
        if self.state not in (State.CONNECTED, State.SYNCING) or cmd is None:
            return succeed(self._claim_here(key, nick, member))
        value = f"{member}\t{self.node}\t{nick}"
        claimed: Deferred[Any] = cmd.eval(wire.CLAIM, [self.keys.nick(key)],
                                          [member, value, int(self.lease * 1000)])

        def answered(result: object) -> bool:
            if result != 1:
                return False
            self._mine[key] = (nick, member)
            self._unreleased.pop(key, None)
            self._view[key] = Holder(nick, member, self.node)
            return True

        def failed(failure: Failure) -> bool:
            if failure.check(txredisapi.ResponseError):
                self._log.warn("Redis refused a nickname claim: {why}",
                               why=failure.getErrorMessage())
            # Lost contact meanwhile: decide here, as when split; the resync claims it.
            return self._claim_here(key, nick, member)

        return claimed.addCallbacks(answered, failed)

    def _claim_here(self, key: str, nick: str, member: str) -> bool:
        holder = self._view.get(key)
        if holder is not None and holder.member != member:
            return False
        self._mine[key] = (nick, member)
        self._unreleased.pop(key, None)
        self._view[key] = Holder(nick, member, self.node)
        return True

    def release(self, key: str, member: str) -> None:
        mine = self._mine.get(key)
        if mine is None or mine[1] != member:
            return
        del self._mine[key]
        holder = self._view.get(key)
        if holder is not None and holder.member == member:
            del self._view[key]
        cmd = self._cmd
        if self.state in (State.CONNECTED, State.SYNCING) and cmd is not None:
            cmd.eval(wire.RELEASE, [self.keys.nick(key)], [member]).addErrback(self._ignore)
        else:
            self._unreleased[key] = member

    def publish(self, event: Event) -> None:
        self._deliver(event)
        _track(self._present, event)
        if type(event) is TopicSet:
            self._topics[event.room] = _known(event)
        if self.state is not State.CONNECTED:
            return  # split or not yet connected: this node's members only
        if isinstance(event, Whispered) and event.target in self._present:
            return  # the addressee is here: nobody else needs it
        _track(self._announced, event)
        self._send(event)

    def subscribe(self, listener: Listener) -> Callable[[], None]:
        self._listeners.append(listener)

        def unsubscribe() -> None:
            if listener in self._listeners:
                self._listeners.remove(listener)

        return unsubscribe

    def members(self) -> list[str]:
        return [holder.nick for holder in self._view.values()]

    def problem(self) -> str | None:
        """Why this node is not in step with the room through Redis now, or ``None``: for
        readiness checks (a split node serves its own members, not the room)."""
        return None if self.state is State.CONNECTED else f"redis: {self.state.value}"

    @property
    def unconfirmed(self) -> int:
        """Events of this node sent, or waiting to be, that Redis has not confirmed storing."""
        return len(self._inflight)

    def lookup(self, key: str) -> tuple[str, str] | None:
        holder = self._view.get(key)
        return None if holder is None else (holder.nick, holder.member)

    # -- sending -----------------------------------------------------------------------

    def _deliver(self, event: Event) -> None:
        for listener in list(self._listeners):
            try:
                listener(event)
            except Exception:
                self._log.failure("listener {listener!r} failed on {event!r}",
                                  listener=listener, event=event)

    def _send(self, event: Event | bytes) -> None:
        """Append to the stream (at the end of this reactor turn, with the turn's other
        entries), remembering it until Redis says it is stored."""
        payload = event if isinstance(event, bytes) else wire.encode_event(event)
        self._seq += 1
        # Bounded without a cap: entries wait here only while connected, and a Redis that
        # leaves a command unanswered for ``timeout`` seconds is dropped (see _tick).
        self._inflight.append((self._seq, payload))
        if self._cmd is None:
            return  # stays in _inflight, sent again after the reconnect
        self._batch.append((self._seq, payload))
        if self._flush_call is None:
            self._flush_call = self.clock.callLater(0, self._flush)

    def _flush(self) -> None:
        if self._flush_call is not None:
            if self._flush_call.active():
                self._flush_call.cancel()
            self._flush_call = None
        batch, self._batch = self._batch, []
        self._write(batch)

    def _write(self, entries: list[tuple[int, bytes]]) -> None:
        """One XADD for a lone entry; for several (a busy turn, a resend), one script
        call per 256: a command costs far more here than an entry (txredisapi makes
        Deferreds for each), and a reply confirms them all, in order."""
        cmd = self._cmd
        if cmd is None:
            return
        for start in range(0, len(entries), 256):
            chunk = entries[start:start + 256]
            if len(chunk) == 1:
                seq, payload = chunk[0]
                sent = cmd.execute_command(*self._xadd, b"%d" % seq, b"e", payload)
            else:
                # EVAL, not txredisapi's eval(): after a SCRIPT FLUSH its EVALSHA fails
                # and it sends the script again once the error is back, behind later
                # entries; the stream must keep this node's order.
                args: list[bytes] = list(self._append)
                for seq, payload in chunk:
                    args += [b"%d" % seq, payload]
                sent = cmd.execute_command(*args)
            sent.addCallbacks(self._stored, self._not_stored,
                              callbackArgs=(len(chunk),), errbackArgs=(len(chunk),))

    def _stored(self, reply: object, count: int) -> None:
        for _ in range(min(count, len(self._inflight))):
            self._inflight.popleft()

    def _not_stored(self, failure: Failure, count: int) -> None:
        if failure.check(txredisapi.ResponseError):
            self._stored(None, count)
            self._log.warn("Redis refused {count} events: {why}", count=count,
                           why=failure.getErrorMessage())
        # Otherwise the connection is gone: the entries stay in _inflight for the resync.

    def _ignore(self, failure: Failure) -> None:
        if failure.check(txredisapi.ResponseError):
            self._log.warn("Redis refused a command: {why}", why=failure.getErrorMessage())

    # -- connecting and resynchronising -----------------------------------------------

    async def _run(self) -> None:
        """Connect, get in step, stay until the connections drop; then again, with backoff.

        Not ``ClientService``: its ``prepareConnection`` cannot turn a connection down
        (one closed after a failed resync makes it raise ``NoTransition``), and the
        resync needs two connections anyway. Not txredisapi's reconnecting handler
        either: it queues commands while Redis is away, where the hub must know at once
        that the room is split, and must get in step before it sends anything.
        """
        failures = 0
        while not self._stopped():
            try:
                await self._connect()
            except Exception as e:
                if self._stopped():
                    return
                failures += 1
                self._log.warn("could not get in step with Redis at {address}: {why}",
                               address=str(self.address), why=str(e) or type(e).__name__)
            else:
                lost = self._lost
                if lost is not None:
                    await lost
                failures = 1
            if self._stopped():
                return
            await deferLater(self.clock, self._retry(failures), lambda: None)

    def _stopped(self) -> bool:
        """(A method, so that type checkers do not take the state for fixed across awaits.)"""
        return self.state is State.STOPPED

    async def _open(self) -> RedisConnection:
        """One connection, logged in (txredisapi sends AUTH and SELECT itself)."""
        factory = _Factory(self)
        connecting = self._endpoint.connect(factory)
        connecting.addTimeout(10.0, self.clock)
        protocol = cast(RedisConnection, await connecting)
        ready: Deferred[None] = Deferred()

        def up(_: object) -> None:
            if not ready.called:
                ready.callback(None)

        def down(_: object) -> None:
            if not ready.called:
                why = factory.refused or "Redis closed the connection while logging in"
                ready.errback(NotInStep(why))

        protocol.whenConnected().addCallback(up)
        protocol.whenDisconnected().addCallback(down)
        ready.addTimeout(self.timeout, self.clock)
        try:
            await ready
        except BaseException:
            protocol.abort()
            raise
        protocol.whenDisconnected().addCallback(self._connection_lost)
        return protocol

    async def _connect(self) -> None:
        """Two connections (commands; the stream reader), then the resync of REDIS-notes.md."""
        self._lost = Deferred()
        cmd = await self._open()
        if self._stopped():
            cmd.abort()
            raise NotInStep("hub stopped")
        self._cmd = cmd
        self.state = State.SYNCING
        try:
            reader = await self._open()
            if self._cmd is not cmd:
                reader.abort()
                raise NotInStep("lost Redis while connecting")
            self._reader = reader
            if not self._announced_once:
                # The first time: what was said before this node came is not its to hear.
                # After that, always from the last entry read, even "0-0" (the stream was
                # empty then: all of it is news), or a split can hide the other side's
                # Joined entries from this node.
                newest = await cmd.execute_command(
                    "XREVRANGE", self.keys.stream, "+", "-", "COUNT", 1)
                if newest:
                    self._last_id = newest[0][0]
            else:
                kept = await cmd.execute_command("XRANGE", self.keys.stream, self._last_id,
                                                 self._last_id)
                if not kept and self._last_id != b"0-0":
                    self._log.warn("the room's stream in Redis lost entries this node had "
                                   "not read (trimmed, or Redis lost its data)")
            await self._snapshot(cmd)
            await self._renew(cmd, syncing=True)
            for key, member in list(self._unreleased.items()):
                cmd.eval(wire.RELEASE, [self.keys.nick(key)], [member]).addErrback(self._ignore)
            self._unreleased.clear()
            if self._cmd is not cmd or self.state is not State.SYNCING:
                raise NotInStep("lost Redis while getting in step")
        except BaseException:
            if self.state is State.SYNCING:
                self.state = State.SPLIT if self._announced_once else State.IDLE
            self._drop_connections()
            raise
        self._go_live()

    _announced_once = False

    def _go_live(self) -> None:
        """Connected and claims renewed: tell the others what changed, and start reading."""
        cmd = self._cmd
        assert cmd is not None
        # Events sent before the loss but never confirmed: again (readers drop copies).
        self._batch = []
        self._write(list(self._inflight))
        now = self.clock.seconds()
        for event in _changes(self._announced, self._present, now):
            self._send(event)
        self._announced = dict(self._present)
        self._send(wire.HELLO)  # and the others tell this node who is where
        self._send_views(self.kept)  # and this node tells them what it keeps
        was = self.state
        self.state = State.CONNECTED
        self._log.info("in step with the room through Redis at {address}",
                       address=str(self.address))
        if self._announced_once and was is not State.CONNECTED:
            self._deliver(Notice("", now, "", "", WHOLE))
        self._announced_once = True
        self._read()
        waiters, self._whole_waiters = self._whole_waiters, []
        for waiter in waiters:
            waiter.callback(None)

    async def _snapshot(self, cmd: RedisConnection) -> None:
        """Merge the nicknames held in Redis into the view (events keep it current)."""
        cursor = b"0"
        for _ in range(100_000):
            reply = await cmd.execute_command("SCAN", cursor, "MATCH",
                                              self.keys.nick_pattern, "COUNT", 1000)
            cursor, names = reply[0], reply[1]
            if names:
                values = await cmd.execute_command("MGET", *names)
                for name, value in zip(names, values, strict=True):
                    holder = _holder(value)
                    if holder is None or holder.node == self.node:
                        continue
                    key = name.decode("utf-8")[len(self.keys.prefix) + len("nick:"):]
                    if key not in self._mine:
                        self._view[key] = holder
            if cursor == b"0":
                break

    async def _renew(self, cmd: RedisConnection, syncing: bool = False) -> None:
        """Heartbeat and claims: renewed, claimed again, or lost to another node."""
        claims = list(self._mine.items())
        keys = [self.keys.node(self.node), self.keys.reap(self.node), self.keys.heard,
                self.keys.settling]
        keys += [self.keys.nick(key) for key, _ in claims]
        values = [f"{member}\t{self.node}\t{nick}" for _, (nick, member) in claims]
        args: list[Any] = [int(self.heartbeat * 1000), int(self.lease * 1000), self.node,
                           int(self.hearing * 1000), *values]
        reaped, statuses = await cmd.eval(wire.RENEW, keys, args)
        if reaped:
            self._log.warn("this node was taken for dead; announcing its members again")
            self._announced = {}
        lost = [claims[i] for i, status in enumerate(statuses) if status == 2]
        if any(status == 1 for status in statuses) and not reaped and not syncing:
            # Redis forgot our claims (restarted empty): remind the views, quietly.
            now = self.clock.seconds()
            for member, (nick, rooms) in self._announced.items():
                self._send(Present("", now, member, nick, rooms))
        for key, (nick, member) in lost:
            if self._mine.get(key) == (nick, member):
                await self._lose(cmd, key, nick, member)
        if reaped and not syncing and self.state is State.CONNECTED:
            now = self.clock.seconds()
            for event in _changes({}, self._present, now):
                self._send(event)
            self._announced = dict(self._present)

    async def _lose(self, cmd: RedisConnection, key: str, nick: str, member: str) -> None:
        """Another node holds ``nick`` now (both took it while the room was split): Redis
        is the referee, so this node's member gets the first free ``nick-N`` instead."""
        del self._mine[key]
        new = nick
        for attempt in range(2, 12):
            base = nick[: nicknames.MAX_NICK_LENGTH - len(str(attempt)) - 1]
            if attempt == 11:
                base, attempt_text = nick[:20], os.urandom(4).hex()
            else:
                attempt_text = str(attempt)
            candidate = f"{base}-{attempt_text}"
            new_key = nicknames.key(candidate)
            value = f"{member}\t{self.node}\t{candidate}"
            won = await cmd.eval(wire.CLAIM, [self.keys.nick(new_key)],
                                 [member, value, int(self.lease * 1000)])
            if won == 1:
                new = candidate
                self._mine[new_key] = (new, member)
                self._view[new_key] = Holder(new, member, self.node)
                break
        holder = self._view.get(key)
        if holder is not None and holder.member == member:
            del self._view[key]
        winner = _holder(await cmd.execute_command("GET", self.keys.nick(key)))
        if winner is not None and winner.node != self.node and key not in self._mine:
            self._view[key] = winner  # its Joined may be older than this node's last read
        if new == nick or member not in self._present:
            return
        self._log.warn("nickname {nick} was taken on two servers while the room was split; "
                       "this server's {nick} is now {new}", nick=nick, new=new)
        now = self.clock.seconds()
        renamed = Renamed("", now, member, nick, new, self._present[member][1])
        self._deliver(renamed)
        _track(self._present, renamed)
        self._deliver(Notice("", now, "", "",
                             f"{nick} was also taken on another server while the room was "
                             f"split; {nick} here is now known as {new}"))
        if self.state is State.CONNECTED and member in self._announced:
            _track(self._announced, renamed)
            self._send(renamed)

    # -- reading the stream -----------------------------------------------------------

    def _read(self) -> None:
        reader = self._reader
        if reader is None or self.state is not State.CONNECTED:
            return
        reader.execute_command(*self._xread, self._last_id).addCallbacks(
            self._got, self._read_failed, errbackArgs=(reader,))

    def _read_failed(self, failure: Failure, reader: RedisConnection) -> None:
        if reader is not self._reader:
            return  # an old connection's last read, failed as it closed
        if failure.check(txredisapi.ResponseError):
            self._log.warn("Redis refused to read the room's stream: {why}",
                           why=failure.getErrorMessage())
        self._drop_connections()

    def _got(self, reply: Any) -> None:
        # Whatever happens here, the next read must go out: an exception escaping into the
        # Deferred would stop this node hearing the room, silently.
        try:
            if reply:
                entries = cast(list[Any], reply)[0][1]
                for entry_id, fields in entries:
                    self._last_id = entry_id
                    self._entry(fields)
                self.read_lag = self.clock.seconds() - int(self._last_id.split(b"-")[0]) / 1000
        except (TypeError, IndexError, ValueError) as e:
            self._log.warn("unreadable reply from XREAD: {why}", why=str(e))
        except Exception:
            self._log.failure("could not handle the room's stream entries")
        finally:
            self._read()

    def _entry(self, fields: list[bytes]) -> None:
        values: dict[bytes, bytes] = dict(zip(fields[::2], fields[1::2], strict=True))
        node = values.get(b"n", b"").decode("utf-8", "replace")
        if node == self.node:
            return
        owner = values.get(b"o")
        if owner is not None and owner.decode("utf-8", "replace") == self.node:
            return  # a survivor took this node for dead; the resync sets that right
        payload = values.get(b"e", b"")
        try:
            seq = int(values.get(b"s", b"0"))
            event = None if payload == wire.HELLO else wire.decode_event(payload)[1]
        except ValueError as e:
            self._log.warn("skipping an unreadable stream entry from node {node}: {why}",
                           node=node, why=str(e))
            return
        if owner is not None and event is not None:  # a survivor's Left for a dead member
            self._apply(event, node)
            self._deliver(event)
            return
        last = self._seen.get(node, 0)
        if seq <= last:
            return  # sent twice around a reconnect
        if last and seq > last + 1 and self.state is State.CONNECTED:
            self._missed += seq - last - 1
            if self._missed_call is None:
                self._missed_call = self.clock.callLater(1.0, self._report_missed)
        self._seen[node] = seq
        if event is None:
            self._greet()
            return
        self._apply(event, node)
        self._deliver(event)

    def _greet(self) -> None:
        """A node came (or came back): tell it who is here, in which rooms, the topics
        this node knows and what ``views`` add. Views only: nothing is shown or stored."""
        if self.state is not State.CONNECTED:
            return  # the resync announces this node's members anyway
        now = self.clock.seconds()
        for member, (nick, rooms) in self._announced.items():
            self._send(Present("", now, member, nick, rooms))
        for known in self._topics.values():
            self._send(known)
        self._send_views(self.views)
        self._send_views(self.kept)

    def _send_views(self, views: list[Callable[[], list[Event]]]) -> None:
        for view in views:
            for event in view():
                self._send(event)

    _missed = 0
    _missed_call: Any = None

    def _report_missed(self) -> None:
        """At most once a second: entries trimmed from the stream before this node read
        them (it fell more than ``backlog`` entries behind), or a survivor's lost reap."""
        self._missed_call = None
        if self._missed:
            self._log.warn("missed up to {count} events of other nodes: this node fell "
                           "behind the room's stream by more than its backlog",
                           count=self._missed)
            self._missed = 0

    def _apply(self, event: Event, node: str) -> None:
        """Another node's presence event, into this node's view of the roster."""
        kind = type(event)
        if kind is Left and event.member in self._present:
            # One of this node's members taken out of a room by another node's operator
            # (a kick): out of the rooms this node tells others and late nodes about too.
            _track(self._present, event)
            _track(self._announced, event)
            return
        _track(self._remote, event)
        if kind is Joined or kind is Present:
            key = nicknames.key(event.nick)
            if key not in self._mine:
                self._view[key] = Holder(event.nick, event.member, node)
        elif kind is TopicSet or kind is TopicKnown:
            assert isinstance(event, TopicSet | TopicKnown)
            known = self._topics.get(event.room)
            if known is None or known.time <= event.time:
                self._topics[event.room] = _known(event)
        elif kind is Left:
            if event.member not in self._remote:  # in no room now: gone from the server
                self._forget(nicknames.key(event.nick), event.member)
        elif kind is Renamed:
            assert isinstance(event, Renamed)
            self._forget(nicknames.key(event.nick), event.member)
            key = nicknames.key(event.new_nick)
            if key not in self._mine:
                self._view[key] = Holder(event.new_nick, event.member, node)

    def _forget(self, key: str, member: str) -> None:
        holder = self._view.get(key)
        if holder is not None and holder.member == member and key not in self._mine:
            del self._view[key]

    # -- the periodic pass: health, renewal, reaping ------------------------------------

    def _tick(self) -> None:
        """Never returns a Deferred: a pass stuck on a hung Redis must not stop the ticks
        that notice the hang."""
        for protocol, patience in ((self._cmd, self.timeout),
                                   (self._reader, self.block + self.timeout)):
            if protocol is not None and protocol.stalled() > patience:
                self._log.warn("Redis at {address} did not answer in {seconds:g} s",
                               address=str(self.address), seconds=patience)
                self._drop_connections()
                return
        cmd = self._cmd
        if self.state is not State.CONNECTED or cmd is None or self._passing:
            return
        self._passing = True
        ensureDeferred(self._pass(cmd)).addErrback(self._pass_failed)

    _passing = False

    async def _pass(self, cmd: RedisConnection) -> None:
        try:
            await self._renew(cmd)
            await self._reap(cmd)
        finally:
            self._passing = False

    def _pass_failed(self, failure: Failure) -> None:
        if failure.check(txredisapi.ResponseError, *_UNREACHABLE) or (
            self.state is not State.CONNECTED
        ):
            self._log.info("periodic Redis pass cut short: {why}",
                           why=failure.getErrorMessage())
            return
        self._log.failure("periodic Redis pass failed", failure)

    async def _reap(self, cmd: RedisConnection) -> None:
        """Announce the members of nodes whose heartbeat stopped as left, exactly once."""
        by_node: dict[str, list[tuple[str, Holder]]] = {}
        for key, holder in self._view.items():
            if holder.node != self.node and key not in self._mine:
                by_node.setdefault(holder.node, []).append((key, holder))
        if not by_node:
            return
        nodes = list(by_node)
        checks = [cmd.execute_command("EXISTS", self.keys.node(node)) for node in nodes]
        results = await DeferredList(checks, consumeErrors=True)
        for node, (ok, alive) in zip(nodes, results, strict=True):
            if not ok or alive:
                self._suspects.pop(node, None)
                continue
            held = by_node[node]
            members: dict[str, str] = {}
            for _, holder in held:
                members[holder.member] = holder.nick
            now = self.clock.seconds()
            lefts = [
                Left(room, now, member, nick, "lost contact with its server")
                for member, nick in members.items()
                for room in self._remote.get(member, (nick, ()))[1]
            ]
            entries: list[Any] = []
            for left in lefts:  # sequence 0: never sent twice, so never deduplicated
                entries += [0, wire.encode_event(left)]
            keys = [self.keys.node(node), self.keys.reap(node), self.keys.stream,
                    self.keys.heard, self.keys.settling]
            keys += [self.keys.nick(key) for key, _ in held]
            args: list[Any] = [24 * 3600 * 1000, self.backlog, self.node, node,
                               int(self.heartbeat * 1000), int(self.hearing * 1000),
                               len(lefts), *entries]
            args += [holder.member for _, holder in held]
            won = await cmd.eval(wire.REAP, keys, args)
            if won == wire.TOO_EARLY:
                # Redis has not heard the room for a whole heartbeat yet (it restarted,
                # say): the node may be on its way back. Ask again at the next pass.
                continue
            if won == 1:
                self._log.info("node {node} stopped renewing; announced {count} members as left",
                               node=node, count=len(lefts))
                for left in lefts:
                    self._apply(left, node)
                    self._deliver(left)
                self._suspects.pop(node, None)
                continue
            # Someone else reaped it: their Left entries are on their way to the reader.
            # If they still have not come by the next passes, forget quietly.
            ticks = self._suspects.get(node, 0) + 1
            self._suspects[node] = ticks
            if ticks >= 3:
                for key, holder in held:
                    self._forget(key, holder.member)
                self._suspects.pop(node, None)

    # -- losing the connection ----------------------------------------------------------

    def _connection_lost(self, protocol: RedisConnection) -> None:
        if protocol is self._cmd or protocol is self._reader:
            self._drop_connections()

    def _drop_connections(self) -> None:
        """Both connections go together; the reconnect loop (``_run``) makes new ones."""
        cmd, reader = self._cmd, self._reader
        self._cmd = self._reader = None
        self._batch = []  # all in _inflight, for the resync
        if self._flush_call is not None and self._flush_call.active():
            self._flush_call.cancel()
        self._flush_call = None
        for protocol in (cmd, reader):
            if protocol is not None:
                protocol.abort()
        if self.state in (State.CONNECTED, State.SYNCING):
            was = self.state
            self.state = State.SPLIT if self._announced_once else State.IDLE
            if was is State.CONNECTED:
                self.splits += 1
                self._log.warn("lost contact with Redis at {address}; serving this "
                               "server's members alone until it is back",
                               address=str(self.address))
                self._deliver(Notice("", self.clock.seconds(), "", "", SPLIT))
        lost, self._lost = self._lost, None
        if lost is not None and not lost.called:
            lost.callback(None)


def _holder(value: bytes | None) -> Holder | None:
    """Who holds a nickname key, from its value ``member TAB node TAB nick``."""
    if value is None:
        return None
    parts = value.decode("utf-8", "replace").split("\t", 2)
    if len(parts) != 3:
        return None
    member, node, nick = parts
    return Holder(nick, member, node)


def _track(people: People, event: Event) -> None:
    """Keep ``people`` in step with one presence event."""
    kind = type(event)
    member = event.member
    if kind is Joined:
        _, rooms = people.get(member, (event.nick, ()))
        people[member] = (event.nick, rooms if event.room in rooms else (*rooms, event.room))
    elif kind is Left:
        entry = people.get(member)
        if entry is not None:
            rooms = tuple(room for room in entry[1] if room != event.room)
            if rooms:
                people[member] = (entry[0], rooms)
            else:
                del people[member]
    elif kind is Renamed:
        assert isinstance(event, Renamed)
        entry = people.get(member)
        if entry is not None:
            people[member] = (event.new_nick, entry[1])
    elif kind is Present:
        assert isinstance(event, Present)
        if event.rooms:
            people[member] = (event.nick, event.rooms)
        else:
            people.pop(member, None)


def _changes(before: People, after: People, now: float) -> list[Event]:
    """The events that take the others' view of this node's members from ``before`` to
    ``after``: leaves of rooms, renames, joins of rooms."""
    events: list[Event] = []
    for member, (nick, rooms) in before.items():
        still = after.get(member, (nick, ()))[1]
        events += [Left(room, now, member, nick, "left while the room was split")
                   for room in rooms if room not in still]
    for member, (nick, rooms) in after.items():
        old = before.get(member)
        if old is not None and old[0] != nick:
            shared = tuple(room for room in rooms if room in old[1])
            events.append(Renamed("", now, member, old[0], nick, shared))
        had = old[1] if old is not None else ()
        events += [Joined(room, now, member, nick) for room in rooms if room not in had]
    return events


def _known(event: TopicSet | TopicKnown) -> TopicKnown:
    return TopicKnown(event.room, event.time, event.member, event.nick, event.text)
