"""Every port the server listens on, by front end and endpoint string: opened at start,
and on a reload opened, closed, and their TLS certificates read again.

A listener is a ``(front end, endpoint)`` pair, such as ``("line", "tcp:8080")`` or
``("web", "ssl:8443:privateKey=key.pem")`` (and ``("metrics", "tcp:9100")`` for the
metrics and health checks); ``listener_specs`` lists those the options ask for. A front
end added later adds its pairs there and its factory to the ``Listeners``, and its ports
are reloaded (and served over TLS) like the others.
"""

from __future__ import annotations

from typing import Any

from OpenSSL import SSL
from twisted.application.service import MultiService
from twisted.internet.defer import maybeDeferred
from twisted.internet.interfaces import IProtocolFactory, IStreamServerEndpoint
from twisted.internet.ssl import CertificateOptions
from twisted.logger import Logger

from chatroom.admission import Admission
from chatroom.services import ListeningService
from chatroom.tls import ReloadableTLS, describe, listen_endpoint

UNCOUNTED = frozenset({"metrics"})
"""Listeners that are not a front end: their connections are not chat connections."""

Spec = tuple[str, str]
"""``(front end, endpoint string)``: one listening port."""


def listener_specs(options: Any) -> list[Spec]:
    """The listeners ``options`` (``chatroom.options.Options``) ask for, in order."""
    specs = [("line", endpoint) for endpoint in options["endpoints"]]
    for kind in ("web", "irc", "metrics"):
        if options[f"{kind}-endpoint"] is not None:
            specs.append((kind, options[f"{kind}-endpoint"]))
    return specs


def label(spec: Spec) -> str:
    """How the log names a listener: ``tcp:8080``, ``web tcp:8081``."""
    kind, endpoint = spec
    return endpoint if kind == "line" else f"{kind} {endpoint}"


class Prepared:
    """A reload's endpoints, made (certificates read) off the reactor thread."""

    def __init__(self, endpoints: dict[Spec, tuple[IStreamServerEndpoint, ReloadableTLS | None]]):
        self.endpoints = endpoints


class Listeners:
    """The listening services of one server, under ``parent``."""

    _log = Logger()

    def __init__(
        self,
        parent: MultiService,
        reactor: Any,
        factories: dict[str, IProtocolFactory],
        admission: Admission | None = None,
    ) -> None:
        self.parent = parent
        self.reactor = reactor
        self.factories = factories
        self.admission = admission
        self.open: dict[Spec, tuple[ListeningService, ReloadableTLS | None]] = {}

    def add(self, spec: Spec) -> ListeningService:
        """A listener that starts with the server (its certificates are read now)."""
        endpoint, tls = listen_endpoint(self.reactor, spec[1])
        return self._service(spec, endpoint, tls)

    def _service(self, spec: Spec, endpoint: IStreamServerEndpoint,
                 tls: ReloadableTLS | None) -> ListeningService:
        service = ListeningService(label(spec), endpoint, self.factories[spec[0]],
                                   self._admission(spec))
        self.open[spec] = (service, tls)
        return service

    def _admission(self, spec: Spec) -> Admission | None:
        """What pauses accepting on ``spec`` when descriptors run short: not on the
        metrics port, whose few connections are no chat's."""
        return None if spec[0] in UNCOUNTED else self.admission

    # -- reloading ----------------------------------------------------------------------

    def unknown(self, specs: list[Spec]) -> list[str]:
        """Why some of ``specs`` cannot be served by this server as it runs."""
        return [f"{kind}: the {kind} {'endpoint' if kind in UNCOUNTED else 'front end'} was "
                "off at start; turning it on needs a restart"
                for kind in sorted({kind for kind, _ in specs} - set(self.factories))]

    def prepare(self, specs: list[Spec]) -> Prepared:
        """Parse every endpoint of ``specs``, reading TLS files: blocking, for a thread.
        Raises ``ValueError`` (or ``OSError``, ``OpenSSL.SSL.Error``) naming the endpoint."""
        endpoints = {}
        for spec in specs:
            try:
                endpoints[spec] = listen_endpoint(self.reactor, spec[1])
            except (OSError, SSL.Error) as e:
                raise ValueError(f"{label(spec)}: cannot use its key or certificate: "
                                 f"{describe_error(e)}") from None
            except Exception as e:  # a bad description: parsed at start, but it may change
                raise ValueError(f"{label(spec)}: {describe_error(e)}") from None
        return Prepared(endpoints)

    async def open_new(self, prepared: Prepared) -> dict[Spec, ListeningService]:
        """Listen on every endpoint of ``prepared`` not open yet; if one fails, close
        those just opened and raise ``ValueError`` with the reason."""
        opened: dict[Spec, ListeningService] = {}
        for spec, (endpoint, _) in prepared.endpoints.items():
            if spec in self.open:
                continue
            service = ListeningService(label(spec), endpoint, self.factories[spec[0]],
                                       self._admission(spec))
            try:
                await service.listen()
            except Exception as e:
                for done in opened.values():
                    await maybeDeferred(done.stopService)
                raise ValueError(f"cannot listen on {label(spec)}: {describe_error(e)}") \
                    from None
            opened[spec] = service
        return opened

    def commit(self, prepared: Prepared, opened: dict[Spec, ListeningService]) -> list[str]:
        """Keep the listeners ``opened``, close those ``prepared`` no longer has, and give
        the others their certificates as read now; what changed, in words."""
        changes = []
        for spec, service in opened.items():
            self.open[spec] = (service, prepared.endpoints[spec][1])
            service.setServiceParent(self.parent)  # already listening: it just runs now
            changes.append(f"listening on {label(spec)}")
        for spec in [s for s in self.open if s not in prepared.endpoints]:
            service, _ = self.open.pop(spec)
            service.disownServiceParent()  # stops listening; its connections stay
            self._log.info("stopped listening on {description}: its connections stay",
                           description=label(spec))
            changes.append(f"no longer listening on {label(spec)}")
        for spec, (_, tls) in self.open.items():
            new_tls = prepared.endpoints[spec][1]
            if tls is None or new_tls is None:
                continue
            if tls.install(new_tls.options):
                self._log.info("new TLS certificate for {description}: {certificate}",
                               description=label(spec), certificate=describe(tls.options))
                changes.append(f"new TLS certificate for {label(spec)}")
        return changes

    def certificates(self) -> dict[str, CertificateOptions]:
        """The TLS settings each ``ssl:`` listener serves now, by its label."""
        return {label(spec): tls.options for spec, (_, tls) in self.open.items()
                if tls is not None}


def describe_error(error: BaseException) -> str:
    text = str(error) or type(error).__name__
    return text if len(text) < 300 else text[:300] + "..."
