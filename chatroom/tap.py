"""``twistd chatroom``: the options, and the wiring of room, hub, front end and listeners.

This is the one module that picks the reactor; everything it builds takes the reactor (or
just a clock) as an argument.
"""

from __future__ import annotations

import resource
from collections.abc import Callable
from typing import Any, Protocol

from twisted.application.service import IService, MultiService, Service
from twisted.internet.defer import Deferred, DeferredList, ensureDeferred, maybeDeferred
from twisted.internet.endpoints import serverFromString
from twisted.internet.interfaces import (
    IListeningPort,
    IProtocolFactory,
    IReactorCore,
    IStreamServerEndpoint,
)
from twisted.logger import Logger
from twisted.python import usage

from chatroom.admission import Admission, descriptors_in_use, open_files_limit
from chatroom.domain.room import Room
from chatroom.history import (
    DEFAULT_KEEP,
    DEFAULT_PATH,
    HistoryError,
    HistoryService,
    IHistory,
    Record,
    SqliteHistory,
    open_history_blocking,
    parse_retention,
)
from chatroom.history.recent import RecentRecords
from chatroom.hubs.local import LocalHub
from chatroom.limits import DEFAULTS, MAX_LINE, MIN_LINE, Limits
from chatroom.lines.factory import ChatFactory
from chatroom.ports import IHub

_log = Logger()


def _ranged(kind: Callable[[str], Any], low: float, high: float | None, doc: str) -> Any:
    def coerce(value: str) -> Any:
        try:
            number = kind(value)
        except ValueError:
            raise ValueError(f"{value!r} is not a number") from None
        if number < low or (high is not None and number > high):
            bounds = f"from {low:g} to {high:g}" if high is not None else f"at least {low:g}"
            raise ValueError(f"{value} is out of range: it must be {bounds}")
        return number

    coerce.coerceDoc = doc  # type: ignore[attr-defined]
    return coerce


def _redis_url(value: str) -> str:
    from chatroom.hubs.redis_resp import parse_url  # light: no Redis I/O at import

    parse_url(value)  # raises ValueError with a sentence
    return value


_redis_url.coerceDoc = (  # type: ignore[attr-defined]
    "redis://[[USER]:PASSWORD@]HOST[:PORT][/DB], rediss://... (TLS, ?ca=FILE) "
    "or unix:///PATH[?db=N]."
)


def _origins(value: str) -> list[str]:
    from chatroom.web.origins import parse_origins

    return parse_origins(value)


_origins.coerceDoc = "e.g. https://chat.example.org,https://example.org"  # type: ignore[attr-defined]


def _port(value: str) -> int:
    return int(_ranged(int, 0, 65535, "")(value))


class Options(usage.Options):
    """Command-line options of ``twistd chatroom`` and ``chatroom-server``."""

    synopsis = "[options]"
    longdesc = (
        "Serve one chat room that telnet, nc and chatroom-client users join over TCP. "
        "Every limit below is per connection unless it says otherwise."
    )
    optParameters = [
        ["interface", "i", "127.0.0.1", "Address to listen on with --port (:: for all IPv6)."],
        ["room", None, "lobby", "Name of the room (shown in logs and stored with history)."],
        ["max-line", None, DEFAULTS.max_line,
         "Longest line a client may send, in bytes.",
         _ranged(int, MIN_LINE, MAX_LINE, f"Must be from {MIN_LINE} to {MAX_LINE}.")],
        ["rate", None, DEFAULTS.rate,
         "Lines per second a connection may send over time (flood control).",
         _ranged(float, 0.1, None, "Must be at least 0.1.")],
        ["burst", None, DEFAULTS.burst,
         "Lines a connection may send at once before --rate applies.",
         _ranged(int, 1, None, "Must be at least 1.")],
        ["max-out", None, DEFAULTS.max_out,
         "Bytes of unsent output a reader may keep queued for a second (or 16 times as "
         "much at once) before it is dropped as a slow reader.",
         _ranged(int, 4096, None, "Must be at least 4096.")],
        ["max-clients", None, DEFAULTS.max_clients,
         "Connections served at once, in all, on every port (plain HTTP ones too); also "
         "capped by the open files limit less --fd-reserve.",
         _ranged(int, 1, None, "Must be at least 1.")],
        ["max-per-ip", None, DEFAULTS.max_per_ip,
         "Connections served at once from one address, on every port.",
         _ranged(int, 1, None, "Must be at least 1.")],
        ["fd-reserve", None, DEFAULTS.fd_reserve,
         "File descriptors never given to connections (history, Redis, logs, refusals); "
         "accepting pauses when half of them are left.",
         _ranged(int, 16, None, "Must be at least 16.")],
        ["nick-timeout", None, DEFAULTS.nick_timeout,
         "Seconds a new connection has to choose a nickname (0: no limit).",
         _ranged(float, 0, None, "Must be at least 0.")],
        ["idle-timeout", None, DEFAULTS.idle_timeout,
         "Seconds a member may stay silent before being disconnected (0: off).",
         _ranged(float, 0, None, "Must be at least 0.")],
        ["history", None, DEFAULT_PATH,
         "Where to keep the room's history: an SQLite file (created with its directories), "
         ":memory:, or none to keep no history."],
        ["history-keep", None, DEFAULT_KEEP,
         "How much history to keep: a count (100000), an age (30d, 12h), both (100000,30d) "
         "or forever."],
        ["history-flush-ms", None, 200,
         "Milliseconds new lines wait in memory before being written; a crash (SIGKILL) "
         "loses at most this much.",
         _ranged(int, 1, 60000, "Must be from 1 to 60000.")],
        ["history-replay", None, DEFAULTS.history_replay,
         "History lines shown to a member on joining (0: none).",
         _ranged(int, 0, 200, "Must be from 0 to 200.")],
        ["web", None, None,
         "Also serve the web page and its WebSocket on this endpoint: a port (8081, on "
         "--interface) or an endpoint string (tcp:8081, ssl:8443:...). Off unless given."],
        ["web-header-timeout", None, DEFAULTS.web_header_timeout,
         "Seconds an HTTP client has to send a whole request (slow bytes do not extend it).",
         _ranged(float, 1, 3600, "Must be from 1 to 3600.")],
        ["web-max-body", None, DEFAULTS.web_max_body,
         "Largest HTTP request body read, in bytes; the page sends none.",
         _ranged(int, 0, 65536, "Must be from 0 to 65536.")],
        ["web-origin", None, None,
         "Pages allowed to open the WebSocket: origins separated by commas, or *. "
         "Default: the same host and port as the page.",
         _origins],
        ["redis", None, None,
         "Share the room with every server that uses this Redis (default: this process only).",
         _redis_url],
        ["redis-lease", None, 15.0,
         "Seconds after which the members of a vanished server are announced left and "
         "their nicknames freed (with --redis).",
         _ranged(float, 1, 300, "Must be from 1 to 300.")],
    ]

    def __init__(self) -> None:
        super().__init__()
        self["listen"] = []
        self["port"] = 8080
        self._port_given = False

    def opt_listen(self, endpoint: str) -> None:
        """Also listen on this Twisted server endpoint (repeatable), e.g. tcp6:8080, unix:/run/chat.sock or ssl:8443:privateKey=key.pem; with --listen, --port is used only if given too."""  # noqa: E501
        self["listen"].append(endpoint)

    def opt_port(self, value: str) -> None:
        """TCP port to listen on, on --interface [default: 8080]."""
        try:
            self["port"] = _port(value)
        except ValueError as e:
            raise usage.UsageError(f"--port: {e}") from None
        self._port_given = True

    opt_p = opt_port

    def postOptions(self) -> None:
        endpoints = list(self["listen"])
        interface = self["interface"].replace(":", r"\:")
        if self._port_given or not endpoints:
            # A deep backlog: on a reconnect storm the kernel must not drop handshakes, since
            # the server speaks first and a client whose SYN was dropped would just wait.
            endpoints.insert(0, f"tcp:{self['port']}:interface={interface}:backlog=1024")
        self["endpoints"] = endpoints
        web = self["web"]
        if web is not None and web.isdigit():
            web = f"tcp:{_port(web)}:interface={interface}:backlog=1024"
        self["web-endpoint"] = web
        try:
            self["history-retention"] = parse_retention(self["history-keep"])
        except ValueError as e:
            raise usage.UsageError(f"--history-keep: {e}") from None
        self["limits"] = Limits(
            history_replay=self["history-replay"],
            max_line=self["max-line"],
            rate=self["rate"],
            burst=self["burst"],
            max_out=self["max-out"],
            max_clients=self["max-clients"],
            max_per_ip=self["max-per-ip"],
            nick_timeout=self["nick-timeout"],
            idle_timeout=self["idle-timeout"],
            fd_reserve=self["fd-reserve"],
            web_header_timeout=self["web-header-timeout"],
            web_max_body=self["web-max-body"],
        )


class ListeningService(Service):
    """Listens on one endpoint while running, and says where it listens."""

    def __init__(
        self,
        description: str,
        endpoint: IStreamServerEndpoint,
        factory: IProtocolFactory,
        admission: Admission | None = None,
    ) -> None:
        """``admission`` pauses accepting on this port when descriptors run short."""
        self.description = description
        self.endpoint = endpoint
        self.factory = factory
        self.admission = admission
        self.port: IListeningPort | None = None

    def privilegedStartService(self) -> None:
        # Listen before dropping privileges (ports below 1024), and fail at start, not
        # later, so a port that is taken stops the server with a clear error.
        self._listen()
        super().privilegedStartService()

    def startService(self) -> None:
        if self.port is None:
            self._listen()
        super().startService()

    def _listen(self) -> None:
        failures: list[Any] = []
        self.endpoint.listen(self.factory).addCallbacks(self._listening, failures.append)
        if failures:
            # A clear sentence for the operator rather than a traceback, and a failed start.
            reason = failures[0].getErrorMessage()
            _log.critical("cannot listen on {description}: {reason}",
                          description=self.description, reason=reason)
            raise SystemExit(1)

    def _listening(self, port: IListeningPort) -> None:
        self.port = port
        if self.admission is not None:
            self.admission.watch(port)
        address = port.getHost()
        _log.info(
            "chatroom listening on {description} ({address})",
            description=self.description,
            address=address,
            host=getattr(address, "host", None),
            port=getattr(address, "port", None),
        )

    def stopService(self) -> Deferred[None] | None:
        super().stopService()
        if self.port is None:
            return None
        if self.admission is not None:
            self.admission.unwatch(self.port)
        stopped: Deferred[None] | None = self.port.stopListening()
        return stopped


class InOrder(MultiService):
    """Starts its children in order, and stops them in reverse order, each only once the
    one after it has finished stopping: the goodbyes are said (and their leaves recorded
    and sent to other servers) before the history store and the hub close."""

    def stopService(self) -> Deferred[None]:
        Service.stopService(self)
        return ensureDeferred(self._stop_children())

    async def _stop_children(self) -> None:
        for service in reversed(list(self)):
            try:
                await maybeDeferred(service.stopService)
            except Exception:
                _log.failure("stopping {service}", service=service)


class FrontEnd(Protocol):
    def shutdown(self) -> Deferred[object]: ...


class ShutdownService(Service):
    """On stop, says goodbye to every connection of every front end and waits for them.

    All front ends close in the same turn, so nobody hears everybody else leave."""

    def __init__(self, front_ends: list[FrontEnd]) -> None:
        self.front_ends = front_ends

    def stopService(self) -> Deferred[Any]:
        super().stopService()
        return DeferredList([front_end.shutdown() for front_end in self.front_ends])


def raise_open_files_limit() -> tuple[int, int]:
    """Raise the soft limit on open files to the hard limit: every client is one."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or soft < hard:
        target = hard if hard != resource.RLIM_INFINITY else max(soft, 1 << 20)
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            _log.info("raised the open files limit from {soft} to {target}",
                      soft=soft, target=target)
            soft = target
        except (ValueError, OSError):
            pass
    return soft, hard


def build_service(options: Options, reactor: Any) -> MultiService:
    """Everything the server is, as one service: room, front end, listeners."""
    limits: Limits = options["limits"]
    soft, hard = raise_open_files_limit()
    _log.info("open files limit: {soft} (hard {hard})", soft=soft, hard=hard)
    top = InOrder()
    hub: IHub
    if options["redis"]:
        from chatroom.hubs.redis import RedisHub

        redis_hub = RedisHub(options["redis"], options["room"], reactor,
                             lease=options["redis-lease"])
        redis_hub.setServiceParent(top)  # the first child: started first, stopped last
        hub = redis_hub
    else:
        hub = LocalHub()
    room = Room(options["room"], hub, reactor)
    try:
        history = open_history_blocking(
            options["history"], reactor, reactor,
            retention=options["history-retention"], flush_ms=options["history-flush-ms"],
        )
    except HistoryError as e:
        _log.critical("cannot start: {error}", error=str(e))
        raise SystemExit(f"chatroom: cannot start: {e}") from None
    recent: RecentRecords | None = None
    if history is not None:
        _log.info("history in {spec}, keeping {keep}", spec=options["history"],
                  keep=options["history-retention"])
        recent = RecentRecords(room.name, max(limits.history_replay, limits.history_max))
        recent.seed(_blocking_last(history, limits.history_max, room.name, reactor))
        hub.subscribe(recent)
        HistoryService(hub, history).setServiceParent(top)
    # One count of connections for every front end, once the store's files are open.
    admission = Admission(limits, reactor, open_files_limit(), descriptors_in_use())
    if admission.max_clients < limits.max_clients:
        _log.warn("--max-clients {max_clients} is above what {soft} open files allow: {cap}",
                  max_clients=limits.max_clients, soft=soft, cap=admission.describe())
    else:
        _log.info("serving {cap}", cap=admission.describe())
    factory = ChatFactory(room, limits, reactor, history=history, recent=recent,
                          admission=admission)
    front_ends: list[FrontEnd] = [factory]
    listeners: list[tuple[str, IProtocolFactory]] = [
        (description, factory) for description in options["endpoints"]
    ]
    if options["web-endpoint"] is not None:
        from chatroom.web.site import build_web_site

        site = build_web_site(room, limits, reactor, options["web-origin"],
                              history=history, recent=recent, admission=admission)
        front_ends.append(site)
        listeners.append((f"web {options['web-endpoint']}", site))
    # Stopped in reverse: listeners, then the goodbyes, then history and hub.
    ShutdownService(front_ends).setServiceParent(top)
    for description, front_end in listeners:
        endpoint = serverFromString(reactor, description.removeprefix("web "))
        ListeningService(description, endpoint, front_end, admission).setServiceParent(top)
    return top


def _blocking_last(history: IHistory, n: int, room: str, reactor: Any) -> list[Record]:
    """The store's newest records, read before the reactor runs (at start only)."""
    if isinstance(history, SqliteHistory):
        return history.last_blocking(n, room)
    result: list[list[Record]] = []
    history.last(n, room).addCallback(result.append)
    return result[0] if result else []


def makeService(options: Options) -> IService:
    from twisted.internet import reactor

    assert IReactorCore.providedBy(reactor)
    return build_service(options, reactor)
