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

    max_clients: int = 5000
    """Connections the server holds at once; more get ``! server full`` and are closed."""

    max_per_ip: int = 16
    """Connections one address may hold at once; more are refused with a line."""

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

    shutdown_grace: float = 2.0
    """Seconds to let clients read the shutdown line before their connections are cut."""


MIN_LINE = 512
MAX_LINE = 64 * 1024
DEFAULTS = Limits()
