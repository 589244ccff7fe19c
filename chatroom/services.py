"""The services the server is made of, besides the chat itself: listeners, the order in which
things start and stop, and the goodbye to every connection on shutdown."""

from __future__ import annotations

import resource
from typing import Any, Protocol

from twisted.application.service import MultiService, Service
from twisted.internet.defer import Deferred, DeferredList, ensureDeferred, maybeDeferred
from twisted.internet.interfaces import IListeningPort, IProtocolFactory, IStreamServerEndpoint
from twisted.logger import Logger

from chatroom.admission import Admission
from chatroom.cli import CannotStart
from chatroom.entry import EntryPacer

_log = Logger()


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
        if self.port is None:  # a reload's listener is listening before it is added
            self._listen()
        super().privilegedStartService()

    def startService(self) -> None:
        if self.port is None:
            self._listen()
        super().startService()

    def _listen(self) -> None:
        failures: list[Any] = []
        self.listen().addErrback(failures.append)
        if failures:
            # A clear sentence for the operator rather than a traceback, and a failed start.
            reason = failures[0].getErrorMessage()
            _log.critical("cannot listen on {description}: {reason}",
                          description=self.description, reason=reason)
            raise CannotStart(reason)

    def listen(self) -> Deferred[None]:
        """Listen now; fails with the endpoint's reason (a start stops on it, a reload
        reports it and goes on without this listener)."""
        return self.endpoint.listen(self.factory).addCallback(self._listening)

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

    All front ends close in the same turn, so nobody hears everybody else leave. First, the
    lost connections whose leaving waits its turn (``entry``, in a reset storm) leave: once
    the goodbyes are done, the history and the hub close."""

    def __init__(self, front_ends: list[FrontEnd], entry: EntryPacer | None = None) -> None:
        self.front_ends = front_ends
        self.entry = entry

    def stopService(self) -> Deferred[Any]:
        super().stopService()
        if self.entry is not None:
            self.entry.stop()
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
