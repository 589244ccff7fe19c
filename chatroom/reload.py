"""Live reload: SIGHUP (and ``/rehash`` of server operators) reads the options
again, the command line as given and the ``--config`` file as it is now, and applies what
can change while the server runs, without dropping a connection.

A reload is all or nothing. It is refused, with one logged line per reason and the running
configuration untouched, when the file cannot be read or holds a bad value, when an option
changed that is read only at start (the history path, Redis, the default room, ...), when
a certificate cannot be read or a new port cannot be opened. Otherwise it applies:

- the limits (``Limits``): every session, front end, the room rules and the admission
  count read the new ones; per-connection caps (line length, output, flood control) change
  for connections already open too;
- listeners: new endpoints are opened, dropped ones closed (their connections stay), the
  metrics endpoint among them, and every ``ssl:`` listener's certificate files are read
  again;
- what a front end keeps of its own (its factory's ``reconfigure(options)``: IRC's PING
  interval, for open connections too, and its ISUPPORT);
- history retention and the replay's way with joins; the log level;
- the server operators (``--opers``): the file is read again on every reload, for the
  ``/oper`` sign-ins to come;
- the message of the day (``--motd``): its file is read again on every reload ("MOTD
  changed" when its lines did); a file that cannot be read refuses the reload.

``Reloader.reloads`` and ``refusals`` count the outcomes, and ``observers`` are told each
one: the hook for metrics, and for ``/rehash`` to answer the operator who asked.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable
from dataclasses import dataclass, field, fields, replace
from typing import Any, TypeVar

from twisted.application.service import Service
from twisted.internet.defer import Deferred, DeferredLock, ensureDeferred
from twisted.logger import Logger
from twisted.python import usage

from chatroom.accounts.opers import OperatorsFileError, load_operators
from chatroom.config import settable
from chatroom.history.fold import parse_joins
from chatroom.limits import Limits
from chatroom.listeners import Listeners, Prepared, listener_specs
from chatroom.logconfig import LogOutput
from chatroom.options import Options
from chatroom.session import Services

T = TypeVar("T")
Blocking = Callable[[Callable[[], T]], Deferred[T]]
"""Runs a blocking call off the reactor thread (reading the file and the certificates)."""

LIMITS = frozenset(f.name.replace("_", "-") for f in fields(Limits))
LISTENING = frozenset({"port", "interface", "listen", "web", "irc", "metrics"})
LIVE = LIMITS | LISTENING | {"history-keep", "history-joins", "log-level", "motd", "irc-ping",
                             "opers"}
"""Options a reload applies while the server runs; a change to any other is refused."""

WHY_NOT = {
    "history": "the history store stays open where it is",
    "redis": "the hub keeps the Redis it is connected to",
    "room": "members are in the default room",
    "log-format": "the log keeps its format",
}
"""Why some options need a restart, for the refusal's line."""


@dataclass
class Outcome:
    """What one reload did: ``changes`` applied, or ``refusals`` (and nothing applied)."""

    trigger: str
    changes: list[str] = field(default_factory=list)
    refusals: list[str] = field(default_factory=list)

    @property
    def applied(self) -> bool:
        return not self.refusals


class Refused(Exception):
    """A reason the reload cannot go on."""


def changed_options(old: Options, new: Options) -> dict[str, tuple[Any, Any]]:
    """Every option whose value differs, by long name: ``{name: (old, new)}``."""
    return {name: (old.get(name), new.get(name)) for name in settable(old)
            if old.get(name) != new.get(name)}


def apply_limits(services: Services, limits: Limits) -> None:
    """Make ``limits`` the server's: for the sessions there now and those to come."""
    before = services.limits
    services.limits = limits
    services.commands.limits = limits
    services.chat.rules = replace(
        services.chat.rules, max_rooms=limits.max_rooms,
        max_rooms_per_member=limits.max_rooms_per_member, max_name=limits.max_room_name,
        max_topic=limits.max_topic,
    )
    if services.admission is not None:
        services.admission.update(limits)
    if services.moderation is not None:
        services.moderation.rules = replace(services.moderation.rules, max_bans=limits.max_bans,
                                            max_mode_changes=limits.max_mode_changes)
    if services.accounts is not None:
        services.accounts.guesses.longest = limits.max_guess_delay
    for session in list(services.sessions):
        session.apply_limits(limits, before)


class Reloader:
    """Reads the options again and applies them (see the module's docstring)."""

    _log = Logger()

    def __init__(
        self,
        options: Options,
        services: Services,
        listeners: Listeners,
        blocking: Blocking[Any],
        log_output: LogOutput | None = None,
    ) -> None:
        self.options = options
        self.services = services
        self.listeners = listeners
        self.blocking = blocking
        self.log_output = log_output
        self.reloads = 0
        """Reloads applied (those that changed nothing included)."""
        self.refusals = 0
        """Reloads refused."""
        self.observers: list[Callable[[Outcome], object]] = []
        """Told every outcome, applied or refused."""
        self._lock = DeferredLock()

    def reload(self, trigger: str) -> Deferred[Outcome]:
        """Read the options again and apply them; ``trigger`` says who asked, for the log.
        Reloads run one after the other."""
        return self._lock.run(lambda: ensureDeferred(self._reload(trigger)))

    async def _reload(self, trigger: str) -> Outcome:
        outcome = Outcome(trigger)
        self._log.info("reloading the configuration ({trigger})", trigger=trigger)
        try:
            new, prepared = await self.blocking(self._read)
            outcome.changes = await self._apply(new, prepared)
        except Refused as e:
            outcome.refusals = list(e.args)
            self.refusals += 1
            self._log.warn(
                "reload ({trigger}) refused, the running configuration is unchanged: "
                "{reasons}", trigger=trigger, reasons="; ".join(outcome.refusals),
                refusals=outcome.refusals,
            )
        except Exception as e:  # a bug: the operator who asked is told, never cut off
            outcome.refusals = [f"the reload failed: {e.__class__.__name__}: {e}"
                                " (a bug: see the server's log)"]
            self.refusals += 1
            self._log.failure("reload ({trigger}) failed", trigger=trigger)
        else:
            self.reloads += 1
            self._log.info("reload ({trigger}) applied: {summary}", trigger=trigger,
                           summary="; ".join(outcome.changes) or "nothing changed",
                           changes=outcome.changes)
            output = self.log_output
            if output is not None and output.level != self.options["log-level"]:
                output.set_level(self.options["log-level"])  # the line above shows first
        for observer in list(self.observers):
            try:
                observer(outcome)
            except Exception:
                self._log.failure("telling {observer} of a reload", observer=observer)
        return outcome

    def _read(self) -> tuple[Options, Prepared]:
        """The options as they are now, and their listeners' endpoints (files read)."""
        new = Options()
        try:
            new.parseOptions(self.options.argv)
        except usage.UsageError as e:
            raise Refused(str(e)) from None
        try:
            new["operators"] = load_operators(new["opers"]) if new["opers"] else {}
        except OperatorsFileError as e:
            raise Refused(f"--opers: {e}") from None
        try:
            return new, self.listeners.prepare(listener_specs(new))
        except ValueError as e:
            raise Refused(str(e)) from None

    async def _apply(self, new: Options, prepared: Prepared) -> list[str]:
        old = self.options
        changed = changed_options(old, new)
        refusals = [
            f"{name}: {_show(before)} -> {_show(after)} needs a restart"
            f" ({WHY_NOT.get(name, 'it is read only at start')})"
            for name, (before, after) in changed.items() if name not in LIVE
        ]
        refusals += self.listeners.unknown(list(prepared.endpoints))
        if refusals:
            raise Refused(*refusals)
        try:
            opened = await self.listeners.open_new(prepared)
        except ValueError as e:
            raise Refused(str(e)) from None
        # From here on nothing fails: the whole new configuration is applied.
        changes = [f"{name} {_show(before)} -> {_show(after)}"
                   for name, (before, after) in changed.items() if name not in LISTENING]
        if new["limits"] != old["limits"]:
            apply_limits(self.services, new["limits"])
        history = self.services.history
        if "history-keep" in changed and history is not None:
            set_retention = getattr(history, "set_retention", None)
            if set_retention is not None:
                set_retention(new["history-retention"])
        recent = self.services.recent
        if "history-joins" in changed and recent is not None:
            recent.joins = parse_joins(new["history-joins"])
        for front_end in self.listeners.factories.values():
            reconfigure = getattr(front_end, "reconfigure", None)
            if reconfigure is not None:
                reconfigure(new)  # what a front end keeps of its own (IRC: ISUPPORT, PING)
        if new["operators"] != self.services.operators:
            self._set_operators(new["operators"])
            changes.append(f"server operators changed ({len(new['operators'])} in the file)")
        if new["motd-lines"] != self.services.motd:
            self.services.motd = new["motd-lines"]
            changes.append("MOTD changed")
        changes += self.listeners.commit(prepared, opened)
        self.options = new
        return changes


    def _set_operators(self, operators: dict[str, str]) -> None:
        """Who may ``/oper`` from now on; those signed in already stay operators until
        they leave (``/kill`` ends that at once)."""
        self.services.operators = operators
        accounts = self.services.accounts
        if accounts is not None:
            accounts.operators = dict(operators)


def _show(value: Any) -> str:
    if isinstance(value, list):
        return "[" + ", ".join(value) + "]"
    return "none" if value is None else str(value)


class HangupService(Service):
    """While the server runs, SIGHUP reloads its configuration.

    Neither twistd nor the reactor handle SIGHUP (left alone, it would end the process).
    The handler only hands the reload to the reactor's thread, as Twisted's own handlers
    do with SIGINT and SIGTERM.
    """

    _log = Logger()

    def __init__(self, reloader: Reloader, reactor: Any) -> None:
        self.reloader = reloader
        self.reactor = reactor
        self._previous: Any = None
        self._installed = False

    def startService(self) -> None:
        super().startService()
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGHUP, self._hangup)
            self._installed = True

    def stopService(self) -> None:
        super().stopService()
        if self._installed:
            signal.signal(signal.SIGHUP, self._previous)
            self._installed = False

    def _hangup(self, signum: int, frame: Any) -> None:
        self.reactor.callFromThread(self._reload)

    def _reload(self) -> None:
        if not self.running:
            return
        self.reloader.reload("SIGHUP").addErrback(
            lambda failure: self._log.failure("reloading on SIGHUP", failure)
        )
