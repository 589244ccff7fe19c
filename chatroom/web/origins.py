"""Which web pages may open the chat WebSocket: the ``Origin`` check of the handshake.

A browser sends ``Origin`` with every WebSocket handshake, and unlike ``fetch`` the
same-origin policy does not stop a page on another site from opening a WebSocket to us
(cross-site WebSocket hijacking). So the server checks it:

- with no allow-list (the default), the origin must name the same host and port as the
  request's ``Host`` header: the page must come from this server;
- with an allow-list (``--web-origin``), the origin must be on it; ``*`` allows any. The list
  replaces the same-host rule, so a server behind a proxy names its public origin, and a
  page served under an unexpected name (DNS rebinding) is refused.

A handshake without ``Origin`` comes from a program, not a browser page, and is allowed: a
program can send any header it likes, so refusing it would protect nothing.
"""

from __future__ import annotations

from urllib.parse import urlsplit

_DEFAULT_PORTS = {"http": 80, "https": 443}


def normalize(origin: str) -> str:
    """``scheme://host[:port]`` in lower case, without a default port; ``ValueError`` if not
    an http(s) origin. ``null`` (sandboxed pages, ``file:``) stays ``null``."""
    origin = origin.strip()
    if origin.lower() == "null":
        return "null"
    scheme, host, port = _split(origin)
    default = _DEFAULT_PORTS[scheme]
    shown = f"[{host}]" if ":" in host else host
    return f"{scheme}://{shown}" if port == default else f"{scheme}://{shown}:{port}"


def parse_origins(value: str) -> list[str]:
    """The ``--web-origin`` value: origins separated by commas or spaces, or ``*``."""
    entries = [entry for entry in value.replace(",", " ").split() if entry]
    if not entries:
        raise ValueError("name at least one origin, e.g. https://chat.example.org, or *")
    return ["*" if entry == "*" else normalize(entry) for entry in entries]


def allowed(origin: str | None, host_header: str | None, allow: list[str] | None) -> bool:
    """May a page from ``origin`` talk to us when it asked for ``host_header``?"""
    if origin is None:
        return True
    try:
        if allow is not None:
            return "*" in allow or normalize(origin) in allow
        if host_header is None or origin.strip().lower() == "null":
            return False
        scheme, host, port = _split(origin)
        want_host, want_port = _split_host(host_header)
    except ValueError:
        return False
    if want_port is None:
        want_port = _DEFAULT_PORTS[scheme]
    return host == want_host and port == want_port


def _split(origin: str) -> tuple[str, str, int]:
    parts = urlsplit(origin)
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS:
        raise ValueError(f"{origin!r} is not an http or https origin")
    if parts.path not in ("", "/") or parts.query or parts.fragment or parts.username:
        raise ValueError(f"{origin!r} is not an origin (scheme://host[:port] only)")
    host = (parts.hostname or "").lower()
    if not host:
        raise ValueError(f"{origin!r} has no host")
    port = parts.port  # raises ValueError when out of range
    return scheme, host, port if port is not None else _DEFAULT_PORTS[scheme]


def _split_host(header: str) -> tuple[str, int | None]:
    """``Host: example.org:8081`` as ``("example.org", 8081)``; IPv6 literals in brackets."""
    header = header.strip().lower()
    if header.startswith("["):
        host, sep, rest = header[1:].partition("]")
        if not sep or (rest and not rest.startswith(":")):
            raise ValueError(f"bad Host header {header!r}")
        port_text = rest[1:]
    else:
        host, _, port_text = header.partition(":")
    if not host:
        raise ValueError("empty Host header")
    if not port_text:
        return host, None
    if not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise ValueError(f"bad port in Host header {header!r}")
    return host, int(port_text)
