"""The WebSocket handshake's Origin rules: same host by default, or the --web-origin list."""

import pytest

from chatroom.web import origins


@pytest.mark.parametrize(
    ("origin", "host"),
    [
        ("http://chat.example:8081", "chat.example:8081"),
        ("https://chat.example", "chat.example"),
        ("http://chat.example", "chat.example:80"),
        ("https://chat.example", "chat.example:443"),
        ("HTTP://Chat.Example:8081", "chat.example:8081"),
        ("http://127.0.0.1:8081", "127.0.0.1:8081"),
        ("http://[::1]:8081", "[::1]:8081"),
    ],
)
def test_by_default_a_page_from_the_same_host_and_port_is_allowed(origin, host):
    assert origins.allowed(origin, host, None)


@pytest.mark.parametrize(
    ("origin", "host"),
    [
        ("http://evil.example", "chat.example:8081"),
        ("http://chat.example:9999", "chat.example:8081"),
        ("http://chat.example", "chat.example:8081"),
        ("http://chat.example.evil.example:8081", "chat.example:8081"),
        ("null", "chat.example:8081"),
        ("file://", "chat.example:8081"),
        ("ftp://chat.example:8081", "chat.example:8081"),
        ("http://chat.example:8081", None),
        ("http://chat.example:8081", "chat.example:bad"),
        ("not an origin", "chat.example:8081"),
        ("http://[::1]:8081", "[::1"),
    ],
)
def test_by_default_other_pages_are_refused(origin, host):
    assert not origins.allowed(origin, host, None)


def test_a_handshake_without_origin_comes_from_a_program_and_is_allowed():
    assert origins.allowed(None, "chat.example:8081", None)
    assert origins.allowed(None, None, ["https://chat.example"])


def test_an_allow_list_replaces_the_same_host_rule():
    allow = origins.parse_origins("https://chat.example, http://localhost:8081")
    assert origins.allowed("https://chat.example", "10.0.0.5:8081", allow)
    assert origins.allowed("https://CHAT.example:443", "anything", allow)
    assert origins.allowed("http://localhost:8081", "localhost:8081", allow)
    # same host as the request, but not on the list: refused (defeats DNS rebinding)
    assert not origins.allowed("http://rebound.example:8081", "rebound.example:8081", allow)
    assert not origins.allowed("null", "chat.example", allow)


def test_a_star_allows_every_origin():
    allow = origins.parse_origins("*")
    assert origins.allowed("http://anything.example:1234", "chat.example", allow)
    assert origins.allowed("null", "chat.example", allow)


def test_null_can_be_listed_on_purpose():
    assert origins.allowed("null", "chat.example", origins.parse_origins("null"))


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("https://Chat.Example", ["https://chat.example"]),
        ("https://chat.example:443/", ["https://chat.example"]),
        ("http://a.example:8080 http://b.example", ["http://a.example:8080", "http://b.example"]),
        ("http://[::1]:8081", ["http://[::1]:8081"]),
    ],
)
def test_origins_are_normalised(value, expected):
    assert origins.parse_origins(value) == expected


@pytest.mark.parametrize(
    "value",
    ["", " , ", "chat.example", "ftp://chat.example", "https://chat.example/path",
     "https://chat.example:99999", "https://user@chat.example", "https://"],
)
def test_nonsense_origins_are_rejected(value):
    with pytest.raises(ValueError):
        origins.parse_origins(value)
