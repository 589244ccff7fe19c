"""The options of ``twistd chatroom`` and ``chatroom-server``: every setting, its default,
the range it must be in, and the ``Limits`` they make."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from twisted.python import usage

from chatroom import config, motd
from chatroom.accounts.passwords import DEFAULT_COST, Cost
from chatroom.accounts.statedb import default_state
from chatroom.admission import LISTEN_BACKLOG
from chatroom.cli import CommandOptions
from chatroom.domain.roomnames import normalize as normalize_room
from chatroom.history import DEFAULT_KEEP, DEFAULT_PATH, parse_retention
from chatroom.history.fold import parse_joins
from chatroom.history.readers import READERS, SEARCH_MS
from chatroom.history.store import MAX_TERMS
from chatroom.limits import DEFAULTS, MAX_LINE, MIN_LINE, Limits
from chatroom.logconfig import parse_format, parse_level


def _ranged(kind: Callable[[str], Any], low: float, high: float | None, doc: str) -> Any:
    def coerce(value: str) -> Any:
        try:
            number = kind(value)
        except ValueError:
            raise ValueError("not a number") from None
        if number < low or (high is not None and number > high):
            bounds = f"from {low:g} to {high:g}" if high is not None else f"at least {low:g}"
            raise ValueError(f"must be {bounds}")
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


def _room(value: str) -> str:
    from chatroom.domain.errors import ChatError

    try:
        return normalize_room(value)
    except ChatError as e:
        raise ValueError(str(e)) from None


_room.coerceDoc = "A name such as #lobby (the # may be left out)."  # type: ignore[attr-defined]


def _keep(value: str) -> str:
    parse_retention(value)  # raises ValueError with a sentence; postOptions parses it again
    return value


def _port(value: str) -> int:
    return int(_ranged(int, 0, 65535, "")(value))


_BACKLOG = f":backlog={LISTEN_BACKLOG}"
"""Of the TCP listeners made from ``--port``, ``--web`` and ``--irc`` ports."""


def _endpoint(name: str, value: str | None, interface: str, extra: str = "") -> str | None:
    """An endpoint option's value: a bare port listens on ``--interface``."""
    if value is None or not value.isdigit():
        return value
    try:
        return f"tcp:{_port(value)}:interface={interface}{extra}"
    except ValueError as e:
        raise usage.UsageError(f"--{name} {value}: {e}") from None


class Options(CommandOptions):
    """Command-line options of ``twistd chatroom`` and ``chatroom-server``."""

    longdesc = (
        "Serve chat rooms that telnet, nc and chatroom-client users (and, with --web and --irc, "
        "browsers and IRC clients) join over TCP. "
        "Every limit below is per connection unless it says otherwise."
    )
    optParameters = [
        ["interface", "i", "127.0.0.1", "Address to listen on with --port (:: for all IPv6)."],
        ["room", None, "#lobby",
         "The default room: everyone who chooses a nickname is in it at first.", _room],
        ["max-rooms", None, DEFAULTS.max_rooms,
         "Rooms the server holds at once (an empty room is forgotten).",
         _ranged(int, 1, None, "Must be at least 1.")],
        ["max-rooms-per-member", None, DEFAULTS.max_rooms_per_member,
         "Rooms one member may be in at once.",
         _ranged(int, 1, None, "Must be at least 1.")],
        ["max-room-name", None, DEFAULTS.max_room_name,
         "Characters a room name may have after its #.",
         _ranged(int, 1, 32, "Must be from 1 to 32.")],
        ["max-topic", None, DEFAULTS.max_topic,
         "Characters a room's topic may have.",
         _ranged(int, 1, 1000, "Must be from 1 to 1000.")],
        ["max-bans", None, DEFAULTS.max_bans,
         "Bans one room may hold (and as many mutes); the server as many server bans.",
         _ranged(int, 1, 100000, "Must be from 1 to 100000.")],
        ["max-mode-changes", None, DEFAULTS.max_mode_changes,
         "Changes one /mode (or IRC MODE) line may make; a /mode asking more is refused, "
         "an IRC MODE's are ignored past it.",
         _ranged(int, 1, 100, "Must be from 1 to 100.")],
        ["max-guess-delay", None, DEFAULTS.max_guess_delay,
         "Seconds a password guess waits at most: each wrong password for a name, or from "
         "an address, doubles the next one's wait, from 1 second.",
         _ranged(float, 1, 3600, "Must be from 1 to 3600.")],
        ["state", None, None,
         "Where to keep accounts, registered rooms and server bans: an SQLite file "
         "(created with its directories), :memory:, or none to keep nothing. Default: "
         "chatroom-state.sqlite3 beside the --history file (in memory if --history is "
         "none or :memory:)."],
        ["opers", None, None,
         "Server operators: a file of NAME ARGON2ID-HASH lines (chatroom-passwd prints a "
         "hash), read at start and on every reload. None unless given."],
        ["motd", None, None,
         "A message of the day: a text file whose lines (at most 50, each cut to 400 "
         "characters) every member sees after choosing a nickname; read again on SIGHUP "
         "and /rehash. Off unless given.",
         motd.motd_path],
        ["password-time-cost", None, DEFAULT_COST.time_cost,
         "Argon2id passes for new password hashes.",
         _ranged(int, 1, 100, "Must be from 1 to 100.")],
        ["password-memory-kib", None, DEFAULT_COST.memory_kib,
         "Argon2id memory for new password hashes, in KiB (each check holds that much).",
         _ranged(int, 64, 4 * 1024 * 1024, "Must be from 64 to 4194304.")],
        ["storm-rate", None, DEFAULTS.storm_rate,
         "Joins and leaves in a second of one room past which the rest of that second's "
         "are told as one summary line (0: never).",
         _ranged(int, 0, None, "Must be at least 0.")],
        ["storm-members", None, DEFAULTS.storm_members,
         "Members a room must have (on one front end) for a storm of joins and leaves to be "
         "summarised.",
         _ranged(int, 1, None, "Must be at least 1.")],
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
         "Connections served at once, in all, on every port (plain HTTP ones too); 0: as "
         "many as the open files limit allows. The open files limit less --fd-reserve "
         "caps it in any case.",
         _ranged(int, 0, None, "Must be 0 (no cap of its own) or more.")],
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
         "Where to keep the rooms' history: an SQLite file (created with its directories), "
         ":memory:, or none to keep no history."],
        ["history-keep", None, DEFAULT_KEEP,
         "How much history to keep: a count (100000), an age (30d, 12h), both (100000,30d) "
         "or forever.",
         _keep],
        ["history-flush-ms", None, 200,
         "Milliseconds new lines wait in memory before being written; a crash (SIGKILL) "
         "loses at most this much.",
         _ranged(int, 1, 60000, "Must be from 1 to 60000.")],
        ["history-replay", None, DEFAULTS.history_replay,
         "History lines shown to a member on joining (0: none).",
         _ranged(int, 0, 200, "Must be from 0 to 200.")],
        ["history-joins", None, "fold",
         "How the replay on joining and /history show joins and leaves: fold (each run "
         "of them one line), show (each as it was) or hide.",
         parse_joins],
        ["history-search-ms", None, SEARCH_MS,
         "Milliseconds one /search may take, waiting for a reader included; a longer one "
         "is stopped and the member told so.",
         _ranged(int, 10, 60000, "Must be from 10 to 60000.")],
        ["history-search-words", None, MAX_TERMS,
         "Most words one /search may have, each part of a-b-c counting as one.",
         _ranged(int, 1, 1000, "Must be from 1 to 1000.")],
        ["history-readers", None, READERS,
         "Threads answering /search, each with its own connection, apart from the one "
         "that writes.",
         _ranged(int, 1, 16, "Must be from 1 to 16.")],
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
        ["irc", None, None,
         "Also serve IRC clients on this endpoint: a port (6667, on --interface) or an "
         "endpoint string (tcp6:6667, ssl:6697:privateKey=...). Off unless given."],
        ["irc-name", None, None,
         "The server's name in IRC replies (default: this host's name)."],
        ["irc-ping", None, 120.0,
         "Seconds an IRC client may stay silent before it is sent a PING; one that stays "
         "silent as long again is disconnected (ping timeout).",
         _ranged(float, 5, 3600, "Must be from 5 to 3600.")],
        ["redis", None, None,
         "Share the rooms with every server that uses this Redis (default: this process only).",
         _redis_url],
        ["redis-lease", None, 15.0,
         "Seconds after which the members of a vanished server are announced left and "
         "their nicknames freed (with --redis).",
         _ranged(float, 1, 300, "Must be from 1 to 300.")],
        ["config", None, None,
         "Read options from this TOML file, each under its long name (max-line = 4096); "
         "options given here win. SIGHUP reads it again.",
         config.config_path],
        ["log-format", None, "text",
         "How to write the log: text, or json (one object per line, every field kept)",
         parse_format],
        ["log-level", None, "info",
         "The least important events logged: debug, info, warn, error or critical",
         parse_level],
        ["metrics", None, None,
         "Serve Prometheus metrics (/metrics) and health checks (/healthz, /readyz) on "
         "this endpoint: a port (9100, on --interface) or an endpoint string "
         "(tcp:9100:interface=10.0.0.5). Off unless given."],
    ]
    repeatable = frozenset({"listen"})
    """Options a config file may give as a list, as the command line may repeat them."""

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
            raise usage.UsageError(f"--port {value}: {e}") from None
        self._port_given = True

    opt_p = opt_port

    def postOptions(self) -> None:
        if self["config"] is not None:
            config.apply(self, self["config"])
        endpoints = list(self["listen"])
        interface = self["interface"].replace(":", r"\:")
        if self._port_given or not endpoints:
            # A deep backlog: on a reconnect storm the kernel must not drop handshakes, since
            # the server speaks first and a client whose SYN was dropped would just wait.
            endpoints.insert(0, f"tcp:{self['port']}:interface={interface}{_BACKLOG}")
        self["endpoints"] = endpoints
        self["web-endpoint"] = _endpoint("web", self["web"], interface, _BACKLOG)
        self["metrics-endpoint"] = _endpoint("metrics", self["metrics"], interface)
        self["irc-endpoint"] = _endpoint("irc", self["irc"], interface, _BACKLOG)
        try:
            self["history-retention"] = parse_retention(self["history-keep"])
        except ValueError as e:
            raise usage.UsageError(f"--history-keep {self['history-keep']}: {e}") from None
        self["motd-lines"] = None
        if self["motd"] is not None:
            try:
                self["motd-lines"] = motd.load(self["motd"])
            except motd.MotdError as e:
                raise usage.UsageError(f"--motd {self['motd']}: {e}") from None
        state = self["state"]
        self["state-path"] = default_state(self["history"]) if state is None else state
        self["password-cost"] = Cost(self["password-time-cost"], self["password-memory-kib"],
                                     DEFAULT_COST.parallelism)
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
            max_rooms=self["max-rooms"],
            max_rooms_per_member=self["max-rooms-per-member"],
            max_room_name=self["max-room-name"],
            max_topic=self["max-topic"],
            max_bans=self["max-bans"],
            max_mode_changes=self["max-mode-changes"],
            max_guess_delay=self["max-guess-delay"],
            storm_rate=self["storm-rate"],
            storm_members=self["storm-members"],
            fd_reserve=self["fd-reserve"],
            web_header_timeout=self["web-header-timeout"],
            web_max_body=self["web-max-body"],
        )
