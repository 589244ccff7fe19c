"""Every limit the server enforces, with its default, in one place.

The twistd options, the README's table and the tests all read these defaults, so they
cannot drift apart. The defaults suit a public room: generous enough for a person pasting
a paragraph, tight enough that one bot cannot drown the room or the server's memory.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Limits:
    max_line: int = 2048
    """Longest line a client may send, in bytes without the line ending (512 to 65536)."""

    rate: float = 5.0
    """Lines per second a connection may send over time (its token bucket's refill)."""

    burst: int = 40
    """Lines a connection may send at once before the rate applies (the bucket's size)."""

    max_out: int = 256 * 1024
    """Bytes of unsent output a connection may keep queued for a second (or 16 times as much
    at once) before it is dropped as a slow reader."""

    max_clients: int = 0
    """Connections the server holds at once, on every port together (a plain HTTP request
    counts too); more get ``! server full`` (the web: HTTP 503 or close code 1013) and are
    closed. 0: no cap of its own, as many as the open-files limit allows; that limit less
    ``fd_reserve`` caps any number given here too."""

    max_per_ip: int = 16
    """Connections one address may hold at once, on every port together; more are refused."""

    fd_reserve: int = 128
    """File descriptors never given to connections: for the server's own files (history,
    Redis, logs) and for telling refused connections why. Accepting pauses (new connections
    wait in the kernel's queue) when only half of them are left."""

    nick_timeout: float = 60.0
    """Seconds a new connection has to choose a nickname before it is closed."""

    idle_timeout: float = 0.0
    """Seconds a member may stay silent before being disconnected; 0 turns it off."""

    history_replay: int = 20
    """History lines a member is shown on joining (0: none)."""

    history_max: int = 200
    """Most lines one ``/history`` or ``/search`` answers with."""

    max_rooms: int = 1000
    """Rooms the server holds at once; ``/join`` of one more is refused with a line."""

    max_rooms_per_member: int = 20
    """Rooms one member may be in at once."""

    max_room_name: int = 32
    """Characters a room's name may have after its ``#`` (1 to 32)."""

    max_topic: int = 390
    """Characters a room's topic may have (1 to 1000), on every front end: ``/topic`` of a
    longer one is refused, IRC's TOPIC cuts it there (and says so in ``TOPICLEN``)."""

    max_bans: int = 100
    """Bans one room may hold, and as many mutes; the server as many server bans."""

    max_mode_changes: int = 12  # chatroom.domain.moderation.MAX_MODE_CHANGES
    """Changes one ``/mode`` (or IRC ``MODE``) line may make: each is announced to the
    room, and flood control counts the line once."""

    max_guess_delay: float = 60.0
    """Seconds a password guess waits at most: each wrong password for an account (or an
    operator name), or from an address, doubles the wait of the next, from 1 second."""

    storm_members: int = 200
    """Members of a room (on one front end) from which a storm of joins and leaves is told
    as one line a second instead of a line each."""

    storm_rate: int = 20
    """Joins and leaves in a second of one room past which the rest of that second's are
    told as one summary line (0: never)."""

    shutdown_grace: float = 2.0
    """Seconds to let clients read the shutdown line before their connections are cut."""

    web_header_timeout: float = 10.0
    """Seconds an HTTP client has to send a whole request, counted from when it connected
    or got its previous response; bytes arriving slowly do not extend it."""

    web_max_body: int = 1024
    """Largest request body the web port reads, in bytes. The page sends none: other methods
    than GET and HEAD get 405, and longer bodies 413, at their headers, unread."""


MIN_LINE = 512
MAX_LINE = 64 * 1024
DEFAULTS = Limits()
