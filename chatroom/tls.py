"""TLS for every front end, through Twisted's endpoint strings, with certificates that a
reload reads again.

Any listener given as ``ssl:PORT:privateKey=KEY[:certKey=CERT][:extraCertChain=CHAIN]``
(``--listen``, ``--web``, or a front end added later) serves TLS. Twisted reads the files
once, when it parses the string; here the listener's TLS settings sit behind a
``ReloadableTLS``, which hands each *new* connection the settings of the moment. A reload
parses the same string again (reading the files as they are now) and swaps the settings:
connections already open keep the session they negotiated, new ones get the new
certificate, and the port is never closed.
"""

from __future__ import annotations

from typing import Any

from OpenSSL import SSL
from twisted.internet.endpoints import SSL4ServerEndpoint, serverFromString
from twisted.internet.interfaces import IOpenSSLServerConnectionCreator, IStreamServerEndpoint
from twisted.internet.ssl import CertificateOptions
from zope.interface import implementer


@implementer(IOpenSSLServerConnectionCreator)
class ReloadableTLS:
    """The TLS settings of one ``ssl:`` listener, replaceable while it listens."""

    def __init__(self, description: str, options: CertificateOptions) -> None:
        self.description = description
        self.options = options

    def serverConnectionForTLS(self, tlsProtocol: Any) -> SSL.Connection:
        """A new connection: it gets the settings installed now (``install``)."""
        connection: SSL.Connection = self.options.serverConnectionForTLS(tlsProtocol)
        return connection

    def getContext(self) -> SSL.Context:
        """For code that asks an old-style context factory."""
        context: SSL.Context = self.options.getContext()
        return context

    def install(self, options: CertificateOptions) -> bool:
        """Serve ``options`` to new connections; say whether the certificate changed."""
        changed = fingerprint(options) != fingerprint(self.options)
        self.options = options
        return changed


def listen_endpoint(reactor: Any, description: str) -> tuple[IStreamServerEndpoint,
                                                             ReloadableTLS | None]:
    """``serverFromString``, with an ``ssl:`` endpoint's settings made replaceable.

    Reads the certificate files of an ``ssl:`` endpoint (call it off the reactor thread
    once the server runs) and checks that key and certificate go together; raises
    ``ValueError`` (or ``OSError``, ``SSL.Error``) for a bad description or file.
    """
    endpoint = serverFromString(reactor, description)
    if not isinstance(endpoint, SSL4ServerEndpoint):
        return endpoint, None
    options = endpoint._sslContextFactory
    if not isinstance(options, CertificateOptions):
        return endpoint, None  # not Twisted's parser's: leave it alone
    options.getContext()  # builds the context now: a key that does not fit fails here
    tls = ReloadableTLS(description, options)
    endpoint._sslContextFactory = tls
    return endpoint, tls


def fingerprint(options: CertificateOptions) -> str:
    certificate = options.certificate
    return "" if certificate is None else certificate.digest("sha256").decode("ascii")


def describe(options: CertificateOptions) -> str:
    """The certificate, as an operator checks it: subject, expiry, fingerprint."""
    certificate = options.certificate
    if certificate is None:
        return "no certificate"
    subject = ", ".join(
        f"{key.decode()}={value.decode()}"
        for key, value in certificate.get_subject().get_components()
    )
    expiry = (certificate.get_notAfter() or b"?").decode("ascii")
    return f"{subject}, valid until {expiry}, sha256 {fingerprint(options)}"
