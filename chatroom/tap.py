"""``twistd chatroom``: the wiring of chat, hub, history, front ends and listeners.

The options are in ``chatroom.options``, the services other than the chat in
``chatroom.services``. This is the one module that picks the reactor; everything it builds
takes the reactor (or just a clock) as an argument.
"""

from __future__ import annotations

import sys
from typing import Any

from twisted.application.service import IService, MultiService
from twisted.internet.interfaces import IProtocolFactory, IReactorCore
from twisted.internet.threads import deferToThreadPool
from twisted.logger import Logger

from chatroom.accounts.opers import OperatorsFileError, load_operators
from chatroom.accounts.statedb import StateError, StateStore
from chatroom.admission import Admission, descriptors_in_use, open_files_limit
from chatroom.commands import Commands
from chatroom.domain.chat import Chat, RoomRules
from chatroom.history import (
    HistoryError,
    HistoryService,
    IHistory,
    Record,
    SqliteHistory,
    open_history_blocking,
)
from chatroom.history.fold import parse_joins
from chatroom.history.recent import RecentRecords
from chatroom.hubs.local import LocalHub, LocalNicknames
from chatroom.limits import Limits
from chatroom.lines.factory import ChatFactory
from chatroom.listeners import Listeners, label, listener_specs
from chatroom.logconfig import Logged, LogOutput, twistd_log_file
from chatroom.logs import RateLimitedLog
from chatroom.metrics import ServerCollector, reloaded
from chatroom.options import Options
from chatroom.ports import IHub, INicknames
from chatroom.reload import HangupService, Reloader
from chatroom.services import (
    FrontEnd,
    InOrder,
    ListeningService,
    ShutdownService,
    raise_open_files_limit,
)
from chatroom.session import Services

__all__ = ["InOrder", "ListeningService", "Options", "ShutdownService", "build_service",
           "makeService"]

_log = Logger()


def build_service(options: Options, reactor: Any, log_output: LogOutput | None = None
                  ) -> MultiService:
    """Everything the server is, as one service: room, front end, listeners; and the
    reload on SIGHUP (which sets ``log_output``'s level, if given)."""
    limits: Limits = options["limits"]
    soft, hard = raise_open_files_limit()
    _log.info("open files limit: {soft} (hard {hard})", soft=soft, hard=hard)
    top = InOrder()
    hub: IHub
    names: INicknames
    redis_hub = None
    if options["redis"]:
        from chatroom.hubs.redis import RedisHub

        redis_hub = RedisHub(options["redis"], options["room"], reactor,
                             lease=options["redis-lease"])
        redis_hub.setServiceParent(top)  # the first child: started first, stopped last
        hub, names = redis_hub, redis_hub
    else:
        hub, names = LocalHub(), LocalNicknames()
    rules = RoomRules(
        max_rooms=limits.max_rooms,
        max_rooms_per_member=limits.max_rooms_per_member,
        max_name=limits.max_room_name,
        max_topic=limits.max_topic,
    )
    chat = Chat(hub, names, reactor, default_room=options["room"], rules=rules)
    try:
        history = open_history_blocking(
            options["history"], reactor, reactor,
            retention=options["history-retention"], flush_ms=options["history-flush-ms"],
            search_ms=options["history-search-ms"], search_words=options["history-search-words"],
            readers=options["history-readers"],
        )
    except HistoryError as e:
        # Said once, on stderr: under twistd this runs before logging starts, when a
        # critical event would be printed there too.
        raise SystemExit(f"chatroom: cannot start: {e}") from None
    recent: RecentRecords | None = None
    if history is not None:
        _log.info("history in {spec}, keeping {keep}", spec=options["history"],
                  keep=options["history-retention"])
        recent = RecentRecords(max(limits.history_replay, limits.history_max),
                               history=history, joins=parse_joins(options["history-joins"]),
                               exists=chat.directory.find)
        default = chat.default_room
        recent.seed(default, _blocking_last(history, limits.history_max, default, reactor))
        hub.subscribe(recent)
        HistoryService(hub, history).setServiceParent(top)
    # One count of connections for every front end, once the store's files are open.
    admission = Admission(limits, reactor, open_files_limit(), descriptors_in_use())
    if limits.max_clients and admission.max_clients < limits.max_clients:
        _log.warn("--max-clients {max_clients} is above what {soft} open files allow: {cap}",
                  max_clients=limits.max_clients, soft=soft, cap=admission.describe())
    else:
        _log.info("serving {cap}", cap=admission.describe())
    metrics = ServerCollector(reactor, chat, admission, history, redis_hub)
    services = Services(
        chat, limits, reactor, Commands(chat, limits, history, recent),
        RateLimitedLog(_log, reactor), history, recent, admission,
        operators=_operators(options["opers"]), password_cost=options["password-cost"],
        state=_open_state(options["state-path"], reactor), motd=options["motd-lines"],
    )
    if services.motd is not None:
        _log.info("message of the day from {path}: {count} lines", path=options["motd"],
                  count=len(services.motd))
    factory = ChatFactory(services)
    front_ends: list[FrontEnd] = [factory]
    factories: dict[str, IProtocolFactory] = {"line": factory}
    metrics.add_front_end("line", factory.registry, factory.fanout)
    if options["web-endpoint"] is not None:
        from chatroom.web.site import build_web_site

        site = build_web_site(services, options["web-origin"])
        front_ends.append(site)
        factories["web"] = site
        metrics.add_front_end("web", site.chat.registry, site.chat.fanout)
    if options["irc-endpoint"] is not None:
        from chatroom.irc.factory import IRCFactory

        irc = IRCFactory(services, options["irc-name"], options["irc-ping"])
        front_ends.append(irc)
        factories["irc"] = irc
        metrics.add_front_end("irc", irc.registry, irc.fanout)
    if options["metrics-endpoint"] is not None:  # listens last: stops listening first
        from chatroom.health import Readiness, build_metrics_site, readiness_checks
        from chatroom.metrics import build_registry

        factories["metrics"] = build_metrics_site(
            build_registry(metrics),
            Readiness(reactor, readiness_checks(history, redis_hub)), reactor)
    # Stopped in reverse: listeners, then the goodbyes, then history and hub.
    ShutdownService(front_ends, services.entry).setServiceParent(top)
    listeners = Listeners(top, reactor, factories, admission)
    services.reloader = Reloader(
        options, services, listeners,
        lambda call: deferToThreadPool(reactor, reactor.getThreadPool(), call), log_output,
    )
    services.reloader.observers.append(lambda outcome: reloaded() if outcome.applied else None)
    HangupService(services.reloader, reactor).setServiceParent(top)
    for spec in listener_specs(options):
        try:
            listener = listeners.add(spec)
        except Exception as e:  # a certificate that cannot be read, a bad endpoint
            raise SystemExit(f"chatroom: cannot start: {label(spec)}: {e}") from None
        listener.setServiceParent(top)
    return top


def _operators(path: str | None) -> dict[str, str]:
    """The server operators of ``--opers``, read before the reactor runs."""
    if path is None:
        return {}
    try:
        operators = load_operators(path)
    except OperatorsFileError as e:
        raise SystemExit(f"chatroom: cannot start: --opers: {e}") from None
    _log.info("{count} server operators from {path}", count=len(operators), path=path)
    return operators


def _open_state(spec: str, reactor: Any) -> StateStore | None:
    """The state file, read before the reactor runs; ``none``: nothing kept."""
    if spec.lower() == "none":
        return None
    try:
        store = StateStore(spec, reactor)
    except StateError as e:
        raise SystemExit(f"chatroom: cannot start: {e}") from None
    _log.info("state in {spec}: {accounts} accounts, {rooms} registered rooms, {bans} server "
              "bans", spec=spec, accounts=len(store.accounts), rooms=len(store.rooms),
              bans=len(store.server_bans))
    return store


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
    out = sys.stdout if options.parent is None else twistd_log_file(options.parent, reactor)
    if out is None:
        _log.warn("twistd's --logger or --syslog chooses the log: --log-format and "
                  "--log-level do not apply")
        return build_service(options, reactor)
    output = LogOutput(out, options["log-format"], options["log-level"])
    return Logged(build_service(options, reactor, output), output)
