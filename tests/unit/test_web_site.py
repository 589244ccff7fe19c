"""The HTTP side: the page and its assets, security headers, and the /ws door."""

from __future__ import annotations

import re
from typing import Any, cast

import pytest
from twisted.internet.address import IPv4Address
from twisted.internet.testing import StringTransport

from chatroom.limits import Limits
from chatroom.web.site import WebSite, content_security_policy, load_assets
from tests.unit.test_web_harness import HOST, FakeBrowser, make_site


class Response:
    def __init__(self, raw: bytes) -> None:
        head, _, self.body = raw.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        self.status = int(lines[0].split(" ", 2)[1])
        self.headers: dict[str, str] = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            self.headers[name.strip().lower()] = value.strip()


def request(
    site: WebSite, path: str, method: str = "GET", headers: dict[str, str | None] | None = None
) -> Response:
    transport = StringTransport(peerAddress=IPv4Address("TCP", "127.0.0.1", 40000))
    channel = site.buildProtocol(transport.getPeer())
    cast(Any, transport).protocol = channel
    channel.makeConnection(transport)
    lines = [f"{method} {path} HTTP/1.1"]
    for name, value in {"Host": HOST, **(headers or {})}.items():
        if value is not None:
            lines.append(f"{name}: {value}")
    channel.dataReceived(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
    return Response(transport.value())


@pytest.fixture
def site(clock):
    return make_site(clock)


@pytest.mark.parametrize(
    ("path", "content_type", "marker"),
    [
        ("/", "text/html; charset=utf-8", b'<script src="app.js" defer></script>'),
        ("/index.html", "text/html; charset=utf-8", b"<title>chatroom</title>"),
        ("/app.js", "text/javascript; charset=utf-8", b'"use strict";'),
        ("/app.css", "text/css; charset=utf-8", b":root"),
        ("/favicon.svg", "image/svg+xml", b"<svg"),
    ],
)
def test_the_page_and_its_assets_are_served_from_the_package(site, path, content_type, marker):
    response = request(site, path)
    assert response.status == 200
    assert response.headers["content-type"] == content_type
    assert marker in response.body
    assert response.headers["cache-control"] == "no-cache"


def test_every_response_carries_the_security_headers(site):
    for path in ("/", "/app.js", "/nope", "/ws"):
        headers = request(site, path).headers
        csp = headers["content-security-policy"]
        assert "default-src 'self'" in csp and "script-src 'self'" in csp
        assert "unsafe-inline" not in csp and "unsafe-eval" not in csp
        assert "frame-ancestors 'none'" in csp and "object-src 'none'" in csp
        assert f"ws://{HOST}" in csp
        assert headers["x-content-type-options"] == "nosniff"
        assert headers["x-frame-options"] == "DENY"
        assert headers["referrer-policy"] == "no-referrer"


@pytest.mark.parametrize("host", ["evil.example; script-src *", "a b", "x'y", None])
def test_a_strange_host_header_is_not_echoed_into_the_policy(host):
    policy = content_security_policy(host).decode()
    assert "connect-src 'self';" in policy
    assert "script-src 'self';" in policy and "*" not in policy


def test_the_browser_revalidates_with_the_etag(site):
    etag = request(site, "/app.js").headers["etag"]
    assert re.fullmatch(r'"[0-9a-f]{20}"', etag)
    again = request(site, "/app.js", headers={"If-None-Match": etag})
    assert again.status == 304 and again.body == b""


def test_head_has_the_length_and_no_body(site):
    response = request(site, "/", method="HEAD")
    assert response.status == 200 and response.body == b""
    assert int(response.headers["content-length"]) == len(load_assets()["index.html"].body)


def test_unknown_paths_and_methods_are_refused_plainly(site):
    missing = request(site, "/../../etc/passwd")
    assert missing.status == 404 and missing.body == b"not found\n"
    assert request(site, "/static/app.js").status == 404
    assert request(site, "/", method="POST", headers={"Content-Length": "0"}).status == 405


def test_a_plain_get_of_the_socket_path_is_told_to_upgrade(site):
    response = request(site, "/ws")
    assert response.status == 426
    assert response.headers["upgrade"] == "websocket"


def test_after_the_upgrade_the_http_timeout_no_longer_applies(clock):
    site = make_site(clock, Limits(nick_timeout=0))
    browser = FakeBrowser(site)
    browser.join("alice", clock)
    clock.advance(13 * 3600)  # past any HTTP channel timeout
    assert not browser.transport.disconnecting
    browser.say("still here")
    clock.advance(0)
    assert browser.received()[0]["text"] == "still here"


def test_the_page_has_no_inline_script_style_or_remote_resource():
    assets = load_assets()
    html = assets["index.html"].body.decode()
    for script in re.findall(r"<script\b[^>]*>(.*?)</script>", html, re.S):
        assert script.strip() == ""  # every script comes from a file (CSP: no inline)
    assert "style=" not in html and "<style" not in html and " on" not in html.replace(
        " one", ""
    )
    for name in ("index.html", "app.js", "app.css"):
        text = assets[name].body.decode()
        assert "http://" not in text and "https://" not in text, name  # no CDN, no network


def test_the_script_never_turns_text_into_html():
    js = load_assets()["app.js"].body.decode()
    for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(",
                 "new Function"):
        assert sink not in js
    assert "textContent" in js
