"""Accounts and moderation on the page, in a real browser: the page asks for a registered
nickname's password, and shows operators and voiced members and their actions."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import BROWSER_MISSING, RawClient, ServerProcess

if BROWSER_MISSING:
    pytest.skip(BROWSER_MISSING, allow_module_level=True)
pytest.importorskip("selenium")

from tests.e2e.test_web_browser import Page


@pytest.fixture
def cheap_server(tmp_path: Path) -> Iterator[ServerProcess]:
    process = ServerProcess(tmp_path, 0, "--cheap-passwords")
    yield process
    process.stop()


def test_the_page_asks_for_a_registered_nicknames_password(
    cheap_server: ServerProcess, browsers: Callable[..., Any],
    raw_clients: Callable[[int], RawClient],
) -> None:
    owner = raw_clients(cheap_server.line_port)
    owner.wait_for("nickname")
    owner.send("alice")
    owner.wait_for("welcome, alice!")
    owner.send("/register page-pass")
    owner.wait_for("is registered to you")
    owner.send("/quit")
    owner.wait_for("goodbye")

    page = Page(browsers(), cheap_server.url)
    page.choose("alice")
    page.wait(lambda d: page.element("password").is_displayed())
    assert page.element("join-note").text == "alice is a registered nickname: type its password"
    assert page.element("password").get_attribute("type") == "password"
    page.element("password").send_keys("not-the-one\n")
    page.wait(lambda d: page.element("nick-error").is_displayed())
    assert page.element("nick-error").text == "wrong password for alice"
    assert not page.element("password").is_displayed()
    page.choose("alice")
    page.wait(lambda d: page.element("password").is_displayed())
    page.element("password").send_keys("page-pass\n")
    page.wait(lambda d: not page.element("join").is_displayed()
              and page.element("me").text == "alice", timeout=20)
