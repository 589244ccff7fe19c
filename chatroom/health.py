"""The metrics endpoint (``--metrics``): ``/metrics``, ``/healthz`` and ``/readyz``.

- ``/metrics``: Prometheus text, from the server's own registry (``chatroom.metrics``), by
  prometheus_client's WSGI app on a thread of the reactor's pool: what its Twisted resource
  (``prometheus_client.twisted.MetricsResource``) does, on the reactor given here rather
  than the global one.
- ``/healthz``: ``200 ok`` whenever the reactor answers: a server that does not answer is
  not alive. It checks nothing else, so an orchestrator restarts only a stuck process.
- ``/readyz``: ``200 ready`` when the server can serve the room, ``503`` with one line per
  reason otherwise: the history store can be written (its writes do not fail, it is not
  dropping events, and its writer thread takes the database's write lock within
  ``PROBE_TIMEOUT``), and, with ``--redis``, the node is in step with the room in Redis. A
  load balancer sends newcomers elsewhere meanwhile; members already here stay.

The endpoint is its own ``twisted.web`` site on its own port, for operators and their
monitoring: it is not counted by the chat's ``Admission`` and logs no access lines.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

from prometheus_client import CollectorRegistry, make_wsgi_app
from twisted.internet import defer
from twisted.internet.defer import Deferred, ensureDeferred
from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger
from twisted.python.failure import Failure
from twisted.web import http
from twisted.web.resource import Resource
from twisted.web.server import NOT_DONE_YET, Request, Site
from twisted.web.wsgi import WSGIResource

PROBE_TIMEOUT = 2.0
"""Seconds the history's writer thread has to answer a readiness probe."""


class Check(Protocol):
    """Something the server needs to serve the room: says what is wrong, if anything."""

    def problem(self) -> str | None: ...


class Probe(Check, Protocol):
    """A check that can also ask its thread (the history store's writer)."""

    def probe(self) -> Deferred[None]: ...


class Readiness:
    """The checks of ``/readyz``. Probes already under way are shared, so requests that come
    together (or a flood of them) make one probe at a time."""

    def __init__(self, clock: IReactorTime, checks: Sequence[Check],
                 timeout: float = PROBE_TIMEOUT) -> None:
        self._clock = clock
        self.checks = list(checks)
        self._timeout = timeout
        self._probing: dict[int, list[Deferred[str | None]]] = {}

    async def problems(self) -> list[str]:
        """Why the server is not ready, one sentence each; empty when it is."""
        found = [problem for check in self.checks if (problem := check.problem()) is not None]
        if found:
            return found
        for index, check in enumerate(self.checks):
            probe = getattr(check, "probe", None)
            if probe is not None:
                problem = await self._probe(index, probe)
                if problem is not None:
                    found.append(problem)
        return found

    def _probe(self, index: int, probe: Any) -> Deferred[str | None]:
        waiting: Deferred[str | None] = Deferred()
        if index in self._probing:
            self._probing[index].append(waiting)
            return waiting
        self._probing[index] = [waiting]
        asked: Deferred[None] = probe()
        asked.addTimeout(self._timeout, self._clock)

        def answered(result: Failure | None) -> None:
            problem = None
            if isinstance(result, Failure):
                problem = (f"history writer did not answer in {self._timeout:g} s"
                           if result.check(defer.TimeoutError)
                           else f"history not writable: {result.getErrorMessage()}")
            for waiter in self._probing.pop(index):
                waiter.callback(problem)

        asked.addBoth(answered)
        return waiting


class Healthz(Resource):
    """``200 ok``: the reactor answered."""

    isLeaf = True

    def render_GET(self, request: Request) -> bytes:
        _plain(request)
        return b"ok\n"


class Readyz(Resource):
    """``200 ready``, or ``503`` and why."""

    isLeaf = True
    _log = Logger()

    def __init__(self, readiness: Readiness) -> None:
        super().__init__()
        self.readiness = readiness

    def render_GET(self, request: Request) -> object:
        gone: list[bool] = []
        request.notifyFinish().addErrback(lambda _: gone.append(True))

        def answer(problems: list[str]) -> None:
            if gone:
                return
            _plain(request)
            if problems:
                request.setResponseCode(503)
                request.write("".join(f"{p}\n" for p in problems).encode("utf-8"))
            else:
                request.write(b"ready\n")
            request.finish()

        def failed(failure: Failure) -> None:
            self._log.failure("checking readiness", failure)
            answer(["readiness check failed: " + failure.getErrorMessage()])

        ensureDeferred(self.readiness.problems()).addCallbacks(answer, failed)
        return NOT_DONE_YET


class Index(Resource):
    """``/``: what is served here; anything else is a 404."""

    def render_GET(self, request: Request) -> bytes:
        _plain(request)
        return b"chatroom: /metrics (Prometheus), /healthz, /readyz\n"

    def getChild(self, path: bytes, request: Request) -> Resource:
        if path == b"":
            return self
        return _NotFound()


class _NotFound(Resource):
    isLeaf = True

    def render(self, request: Request) -> bytes:
        request.setResponseCode(404)
        _plain(request)
        return b"not found\n"


class MetricsSite(Site):
    """The metrics endpoint's site: no access log (a scrape every few seconds is not news)."""

    noisy = False

    def log(self, request: http.Request) -> None:
        pass


def build_metrics_site(registry: CollectorRegistry, readiness: Readiness,
                       reactor: Any) -> MetricsSite:
    """``/metrics``, ``/healthz`` and ``/readyz``; listen on it with any server endpoint."""
    root = Index()
    root.putChild(b"metrics",
                  WSGIResource(reactor, reactor.getThreadPool(), make_wsgi_app(registry)))
    root.putChild(b"healthz", Healthz())
    root.putChild(b"readyz", Readyz(readiness))
    return MetricsSite(root, reactor=reactor)


def readiness_checks(history: object, redis: Check | None) -> list[Check]:
    """What ``/readyz`` checks: the SQLite history store (the others cannot fail), and the
    Redis hub when there is one."""
    from chatroom.history.sqlite import SqliteHistory

    checks: list[Check] = [history] if isinstance(history, SqliteHistory) else []
    return checks if redis is None else [*checks, redis]


def _plain(request: Request) -> None:
    request.setHeader(b"content-type", b"text/plain; charset=utf-8")
    request.setHeader(b"cache-control", b"no-store")
