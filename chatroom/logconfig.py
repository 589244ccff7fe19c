"""Where the server's log goes: ``--log-format`` (text, or one JSON object per line), fixed
at start, and ``--log-level``, which a reload may change.

Under ``twistd`` the observer is set as the application's ``ILogObserver`` component, the
documented way for an application to choose its logging; it writes where twistd itself
would (``--logfile``, standard output under ``-n``), so twistd's options keep their
meaning. ``chatroom-server`` logs to standard output with the same observer.
"""

from __future__ import annotations

import signal
import sys
from string import Formatter
from typing import IO, Any

from twisted.application.service import IServiceCollection, MultiService
from twisted.logger import (
    FileLogObserver,
    FilteringLogObserver,
    ILogObserver,
    LogLevel,
    LogLevelFilterPredicate,
    eventAsJSON,
    eventAsText,
    formatEventAsClassicLogText,
    formatTime,
)
from twisted.logger._format import _formatSystem
from twisted.python.components import Componentized
from twisted.python.logfile import LogFile

LEVELS = ("debug", "info", "warn", "error", "critical")
FORMATS = ("text", "json")


def parse_level(value: str) -> str:
    level = value.strip().lower()
    if level == "warning":
        level = "warn"
    if level not in LEVELS:
        raise ValueError(f"must be one of {', '.join(LEVELS)}")
    return level



def parse_format(value: str) -> str:
    fmt = value.strip().lower()
    if fmt not in FORMATS:
        raise ValueError("must be text or json")
    return fmt



def json_lines_observer(out: IO[Any]) -> FileLogObserver:
    """``twisted.logger``'s JSON, one event per line and no record separator, with every
    field of the event, plus ``log_text``: the message as the text log would show it."""

    def line(event: dict[str, Any]) -> str:
        text = eventAsText(event, includeTimestamp=False, includeSystem=False)
        return eventAsJSON({**event, "log_text": text}) + "\n"

    return FileLogObserver(out, line)


def text_lines_observer(out: IO[Any]) -> FileLogObserver:
    """``textFileLogObserver``'s lines, each timestamp made once a second: a join storm
    logs two lines a connection, and making a timezone and a ``strftime`` for each was a
    tenth of a join's CPU (issue 17)."""
    made: list[Any] = [None, ""]  # the second, and its text

    def stamp(when: float | None) -> str:
        if when is None:
            return formatTime(when)
        second = int(when)
        if when - second > 0.9999:  # may round up into the next second: made as it is
            return formatTime(when)
        if made[0] != second:
            made[0], made[1] = second, formatTime(second)
        return str(made[1])

    def line(event: dict[str, Any]) -> str | None:
        fmt = event.get("log_format")
        if type(fmt) is str and "log_failure" not in event and "log_flattened" not in event \
                and _plain(fmt):
            try:
                text = fmt.format_map(event)
            except Exception:  # Twisted says why, in its own words
                return formatEventAsClassicLogText(event, formatTime=stamp)
            if not text:
                return None
            line = f"{stamp(event.get('log_time'))} [{_formatSystem(event)}] {text}"
            return line.replace("\n", "\n\t") + "\n"
        return formatEventAsClassicLogText(event, formatTime=stamp)

    return FileLogObserver(out, line)


_PLAIN: dict[str, bool] = {}


def _plain(fmt: str) -> bool:
    """Whether every field of ``fmt`` is a plain name (``{peer}``, ``{n:d}``): then
    ``str.format_map`` makes what Twisted's ``formatEvent`` makes, without the Python
    ``string.Formatter`` that is half of a log line's cost. Calls (``{f()}``), attributes,
    indexes and conversions are left to Twisted."""
    plain = _PLAIN.get(fmt)
    if plain is None:
        try:
            plain = all(name is None or (name.isidentifier() and conversion is None
                                         and "{" not in (spec or ""))
                        for _, name, spec, conversion in Formatter().parse(fmt))
        except ValueError:
            plain = False
        if len(_PLAIN) < 1000:  # formats are the code's literals, and a few made from them
            _PLAIN[fmt] = plain
    return plain


class LogOutput:
    """The server's log observer: its format is fixed, its level can change."""

    def __init__(self, out: IO[Any], fmt: str = "text", level: str = "info") -> None:
        self.format = fmt
        self.level = level
        self.predicate = LogLevelFilterPredicate(LogLevel.levelWithName(level))
        base = json_lines_observer(out) if fmt == "json" else text_lines_observer(out)
        self.observer: ILogObserver = FilteringLogObserver(base, [self.predicate])

    def set_level(self, level: str) -> None:
        """Let events of ``level`` and above through from now on."""
        self.level = level
        self.predicate.setLogLevelForNamespace("", LogLevel.levelWithName(level))


def twistd_log_file(twistd: Any, reactor: Any) -> IO[Any] | None:
    """The file twistd would log to with these options of its own, or ``None`` when they
    choose another observer (``--logger``, ``--syslog``): then twistd's is kept."""
    if twistd.get("logger") or twistd.get("syslog"):
        return None
    path = twistd.get("logfile")
    if path == "-" and not twistd.get("nodaemon"):
        raise SystemExit("Daemons cannot log to stdout, exiting!")  # as twistd says it
    if path == "-" or (not path and twistd.get("nodaemon")):
        return sys.stdout
    log_file: IO[Any] = LogFile.fromFullPath(path or "twistd.log")
    if not signal.getsignal(signal.SIGUSR1):  # twistd's own rule: SIGUSR1 rotates the log

        def rotate(signum: int, frame: Any) -> None:
            reactor.callFromThread(log_file.rotate)  # type: ignore[attr-defined]

        signal.signal(signal.SIGUSR1, rotate)
    return log_file


class Logged(MultiService):
    """Holds the server's service; when twistd adds it to the application, sets the
    application's log observer (which twistd reads before it starts logging)."""

    def __init__(self, service: Any, output: LogOutput) -> None:
        super().__init__()
        self.output = output
        service.setServiceParent(self)

    def setServiceParent(self, parent: IServiceCollection) -> None:
        if isinstance(parent, Componentized):
            parent.setComponent(ILogObserver, self.output.observer)
        super().setServiceParent(parent)
