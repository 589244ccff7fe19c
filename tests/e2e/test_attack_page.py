"""Holes in the page's rooms found by attacking main in headless Chromium (review/attack).

Each failed before its fix in ``chatroom/web/static/app.js``.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import BROWSER_MISSING, RawClient, ServerProcess

if BROWSER_MISSING:
    pytest.skip(BROWSER_MISSING, allow_module_level=True)
pytest.importorskip("selenium")

from tests.e2e.test_web_rooms import RoomsPage


def _raw(raw_clients: Callable[[int], RawClient], port: int, nick: str) -> RawClient:
    client = raw_clients(port)
    client.wait_for("nickname")
    client.send(nick)
    client.wait_for(rf"welcome, {nick}!")
    return client


def test_who_in_a_room_with_an_operator_leaves_no_ghost_in_the_member_list(
    server: ServerProcess, browsers: Callable[..., Any],
    raw_clients: Callable[[int], RawClient],
) -> None:
    bob = _raw(raw_clients, server.line_port, "bob")
    bob.send("/join #dev")  # bob made #dev: he is its operator
    bob.wait_for("you joined")
    pat = RoomsPage(browsers(), server.url)
    pat.join("pat")
    pat.say("/join #dev")
    pat.wait(lambda d: pat.current() == "#dev")
    pat.wait_members(["bob", "pat"])
    pat.say("/who")
    pat.wait_line(r"^2 in the room: @bob, pat$")
    bob.send("/quit")
    pat.wait_line(r"^bob left$")
    pat.wait_members(["pat"])


def test_a_link_with_a_bad_percent_escape_still_joins(
    server: ServerProcess, browsers: Callable[..., Any],
) -> None:
    page = RoomsPage(browsers(), server.url + "#%E0%A4%A")
    page.join("hashy")
    assert page.current() == "#lobby"


def test_after_a_restart_the_page_is_back_in_the_room_it_showed(
    tmp_path: Path, browsers: Callable[..., Any], raw_clients: Callable[[int], RawClient],
) -> None:
    store = str(tmp_path / "history.sqlite3")
    server = ServerProcess(tmp_path, 0, "--history", store)
    try:
        page = RoomsPage(browsers(), server.url)
        page.join("alice")
        page.join_room("dev")
        page.wait(lambda d: page.current() == "#dev")
        assert page.driver.current_url.endswith("#dev")
    finally:
        assert server.stop() == 0
    page.wait_line(r"^the server is restarting$")
    again = ServerProcess(tmp_path, server.web_port, "--history", store)
    try:
        page.wait(lambda d: page.status()[0] == "online", timeout=30)
        page.wait_rooms(["#lobby", "#dev"])
        bob = _raw(raw_clients, again.line_port, "bob")
        bob.send("/join #dev")
        page.wait_line(r"^bob joined$")  # in #dev: shown only if #dev is what the page shows
        assert page.current() == "#dev"
        assert page.driver.current_url.endswith("#dev")
    finally:
        again.stop()
