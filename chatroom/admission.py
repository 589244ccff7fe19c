"""Who may connect: every accepted connection of every front end, counted in one place.

``--max-clients`` and ``--max-per-ip`` are promises about the whole server, and each
connection costs a file descriptor whatever port it came in on: a plain HTTP request on the
web port as much as a member on the line port. So one ``Admission`` per server sees every
accepted socket, from accept to close, and each front end asks it at ``buildProtocol``:

- a *seat* is one accepted socket. It is *admitted* (it counts against ``--max-clients`` and
  ``--max-per-ip``) or *refused* with a reason; a refused one still holds its descriptor
  until its connection has said why and closed, and is counted until then.
- The open-files limit caps the clients too: of ``S`` descriptors, those already in use at
  start and ``--fd-reserve`` more are never given to clients (the history store, Redis, log
  files, and room to tell refused connections why). So the effective cap is
  ``min(--max-clients, S - in use - reserve)``, and it is logged at start.
- When open sockets reach ``S - in use - reserve/2``, accepting *pauses*: the listening
  ports stop being read, new connections wait in the kernel's backlog, and nobody gets a
  reset or an ``EMFILE``; accepting resumes as soon as a socket closes. Twisted accepts in
  batches (``numberAccepts``, which it grows by 20 after each full batch and sets to the
  batch's count otherwise), and a batch goes on after the port stopped being read; so after
  every read of a port, and at every count, the next batch is cut to a quarter of the room
  left, and a batch cannot carry the count past the reserve.
- Whatever the room left, a batch is ``ACCEPT_BATCH`` at most. Twisted's grows without
  end while connections keep coming, and each accept costs a protocol, a session and a
  prompt: in a storm of 5000 newcomers one batch held the reactor for 126 ms, and the
  room's lines with it. So the rest of a storm waits in the kernel's listen queue, which
  must hold it (``LISTEN_BACKLOG``): a handshake that finds the queue full is dropped, and
  one completed by a SYN cookie then is forgotten, its client waiting for a prompt that
  never comes.
"""

from __future__ import annotations

import os
import resource
from collections import Counter
from collections.abc import Callable
from contextlib import suppress
from typing import Any

from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger

from chatroom.limits import Limits
from chatroom.logs import RateLimitedLog

ACCEPT_BATCH = 64
"""Connections one port accepts in a reactor turn, at most."""

LISTEN_BACKLOG = 4096
"""The listen queue of the ports the options make (the kernel caps it at ``somaxconn``).
6000 line clients connecting at once and signing in, 64 accepted a turn: with 1024, 1100
of them were never accepted (in 40 s; 190 with Twisted's unbounded batches); with 4096,
none of 6000 or of 7500."""

SERVER_FULL = "server full"
TOO_MANY_FROM_HOST = "too many connections from your address"
NO_CAP = 2**31 - 1
"""``--max-clients 0`` where the open files limit is not known (only in tests): no cap."""


class Seat:
    """One accepted socket's place in the count, given back once with ``leave``."""

    __slots__ = ("_admission", "admitted", "host", "refusal")

    def __init__(self, admission: Admission, host: str | None, refusal: str | None) -> None:
        self._admission: Admission | None = admission
        self.host = host
        self.refusal = refusal
        self.admitted = refusal is None

    def leave(self) -> None:
        """The socket is closed (or handed to another protocol, which takes a seat of its
        own in the same turn). Safe to call more than once."""
        admission, self._admission = self._admission, None
        if admission is not None:
            admission._left(self)


class Admission:
    """The server-wide count of sockets, the admission rules, and the accept pause."""

    _log = Logger()

    def __init__(
        self,
        limits: Limits,
        clock: IReactorTime,
        open_files: int | None = None,
        in_use: int = 0,
    ) -> None:
        """``open_files`` is the soft limit on open files (``None``: no limit); ``in_use``,
        the descriptors the server holds before it accepts anything."""
        self.limits = limits
        self.open = 0  # accepted sockets not yet closed: admitted or being refused
        self.clients = 0  # admitted ones
        self.refused: Counter[str] = Counter()  # sockets refused since start, by refusal
        self._per_host: Counter[str] = Counter()
        self._ports: list[Any] = []
        self.paused = False
        self.warnings = RateLimitedLog(self._log, clock, rate=1.0, burst=5)
        self.screen: Callable[[str | None], str | None] | None = None
        """Why an address may not connect at all, whatever the count (a server ban)."""
        self._spare = None if open_files is None else open_files - in_use
        self.max_clients = limits.max_clients
        self.pause_at: int | None = None
        self._size(limits)

    def _size(self, limits: Limits) -> None:
        self.limits = limits
        asked = limits.max_clients or NO_CAP
        self.max_clients = asked
        spare = self._spare
        if spare is not None:
            self.max_clients = max(0, min(asked, spare - limits.fd_reserve))
            self.pause_at = max(1, spare - limits.fd_reserve // 2)

    def update(self, limits: Limits) -> None:
        """New limits (a reload): nobody is dropped, new connections are judged by them,
        and accepting pauses or resumes by the new reserve."""
        self._size(limits)
        self._check_descriptors()

    def describe(self) -> str:
        """The effective limits, for the log at start."""
        cap = f"at most {self.max_clients} connections at once"
        if self.pause_at is None:
            return f"{cap} (--max-clients)"
        if not self.limits.max_clients:
            cap += (f" (the open files limit less those in use and --fd-reserve"
                    f" {self.limits.fd_reserve}; --max-clients 0)")
        elif self.max_clients < self.limits.max_clients:
            cap += (f" (--max-clients {self.limits.max_clients}, less than that: the open"
                    f" files limit less those in use and --fd-reserve {self.limits.fd_reserve})")
        else:
            cap += " (--max-clients)"
        return f"{cap}; accepting pauses at {self.pause_at} open sockets"

    # -- the count --------------------------------------------------------------------

    def refusal(self, host: str | None) -> str | None:
        """Why a new connection from ``host`` may not come in now, or ``None``."""
        if self.screen is not None:
            why = self.screen(host)
            if why is not None:
                return why
        if self.clients >= self.max_clients:
            return SERVER_FULL
        if host is not None and self._per_host[host] >= self.limits.max_per_ip:
            return TOO_MANY_FROM_HOST
        return None

    def enter(self, host: str | None, refusal: str | None = None) -> Seat:
        """Count a socket just accepted from ``host``; its seat says whether it may stay.
        ``refusal`` refuses it whatever the count (a front end that is stopping)."""
        seat = Seat(self, host, refusal or self.refusal(host))
        self.open += 1
        if seat.admitted:
            self.clients += 1
            if host is not None:
                self._per_host[host] += 1
        else:
            self.refused[seat.refusal or ""] += 1
        self._check_descriptors()
        return seat

    def _left(self, seat: Seat) -> None:
        self.open -= 1
        if seat.admitted:
            self.clients -= 1
            host = seat.host
            if host is not None:
                self._per_host[host] -= 1
                if self._per_host[host] <= 0:
                    del self._per_host[host]
        self._check_descriptors()

    # -- the accept pause -------------------------------------------------------------

    def watch(self, port: Any) -> None:
        """Pause and resume ``port`` (an ``IListeningPort`` that, like Twisted's TCP and
        UNIX ports, can ``stopReading``/``startReading``) with the count."""
        if not (hasattr(port, "stopReading") and hasattr(port, "startReading")):
            return
        self._ports.append(port)
        read = getattr(port, "doRead", None)
        if read is not None:

            def read_then_size() -> Any:
                try:
                    return read()
                finally:
                    self._size_batches()  # Twisted has just sized the next batch itself

            port.doRead = read_then_size
            self._size_batches()
        if self.paused:
            port.stopReading()

    def unwatch(self, port: Any) -> None:
        """``port`` stops listening: leave it alone from now on."""
        if port in self._ports:
            self._ports.remove(port)
            with suppress(AttributeError):
                del port.doRead  # the class's own again

    def _check_descriptors(self) -> None:
        pause_at = self.pause_at
        if pause_at is None:
            return
        room = pause_at - self.open
        if room <= 0:
            if not self.paused:
                self.paused = True
                for port in self._ports:
                    port.stopReading()
                self.warnings.warn(
                    "{open} sockets open: accepting paused until one closes ({cap})",
                    open=self.open, cap=self.describe(),
                )
            return
        self._size_batches()
        if self.paused:
            self.paused = False
            for port in self._ports:
                if getattr(port, "connected", True):
                    port.startReading()


    def _size_batches(self) -> None:
        """Keep each port's next accept batch well inside the room that is left, and
        within ``ACCEPT_BATCH``."""
        batch = ACCEPT_BATCH
        if self.pause_at is not None:
            batch = max(1, min(batch, (self.pause_at - self.open) // 4))
        for port in self._ports:
            if getattr(port, "numberAccepts", 0) > batch:
                port.numberAccepts = batch


def open_files_limit() -> int | None:
    """The soft limit on open files, or ``None`` if there is none."""
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    return None if soft == resource.RLIM_INFINITY else soft


def descriptors_in_use() -> int:
    """How many file descriptors this process holds now (a generous guess where the
    system does not say)."""
    for folder in ("/proc/self/fd", "/dev/fd"):
        try:
            return max(0, len(os.listdir(folder)) - 1)  # less the one listdir opened
        except OSError:
            continue
    return 64
