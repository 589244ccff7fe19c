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


class ModeratorPage(Page):
    def marked(self) -> list[str]:
        """The member list as marked: ``@alice``, ``+bob``, ``carol``."""
        return list(self.driver.execute_script(
            "return Array.from(document.querySelectorAll('#members li'), e =>"
            " (e.querySelector('.role') ? e.querySelector('.role').textContent : '')"
            " + e.querySelector('.nick').textContent);"))

    def wait_marked(self, expected: list[str]) -> None:
        try:
            self.wait(lambda d: self.marked() == expected)
        except Exception as e:
            raise AssertionError(f"members {self.marked()!r}, wanted {expected!r}") from e

    def actions(self, nick: str) -> list[str]:
        return list(self.driver.execute_script(
            "return Array.from(document.querySelectorAll('#members li'))"
            ".filter(e => e.querySelector('.nick').textContent === arguments[0])"
            ".flatMap(e => Array.from(e.querySelectorAll('.action'), b => b.textContent));",
            nick))

    def act(self, nick: str, action: str) -> None:
        self.driver.execute_script(
            "Array.from(document.querySelectorAll('#members li'))"
            ".filter(e => e.querySelector('.nick').textContent === arguments[0])"
            ".forEach(e => e.querySelector('.action-' + arguments[1]).click());", nick, action)


def test_the_page_marks_operators_and_voiced_members_and_gives_operators_actions(
    server: ServerProcess, browsers: Callable[..., Any],
    raw_clients: Callable[[int], RawClient],
) -> None:
    alice = ModeratorPage(browsers(), server.url)
    alice.join("alice")
    alice.say("/join #dev")
    alice.wait_marked(["@alice"])
    bob = raw_clients(server.line_port)
    bob.wait_for("nickname")
    bob.send("bob")
    bob.wait_for("welcome, bob!")
    bob.send("/join #dev")
    bob.wait_for("you joined")
    alice.wait_marked(["@alice", "bob"])
    assert alice.actions("bob") == ["op", "voice", "mute", "kick", "ban"]
    assert alice.actions("alice") == []  # not on oneself

    alice.act("bob", "voice")
    bob.wait_for(r"alice gave voice to bob")
    alice.wait_marked(["@alice", "+bob"])
    assert alice.actions("bob") == ["op", "devoice", "mute", "kick", "ban"]
    alice.act("bob", "op")
    alice.wait_marked(["@alice", "@bob"])

    carol = ModeratorPage(browsers(), server.url)  # not an operator: marks, no actions
    carol.join("carol")
    carol.say("/join #dev")
    carol.wait_marked(["@alice", "@bob", "carol"])
    assert carol.actions("bob") == [] and carol.actions("alice") == []

    bob.send("/deop alice")
    carol.wait_marked(["alice", "@bob", "carol"])
    alice.wait(lambda d: alice.actions("carol") == [])  # alice runs #dev no more

    bob.send("/kick carol")
    carol.wait_line(r"you were kicked from #dev by bob")
    carol.wait(lambda d: carol.element("room-title").text == "#lobby")
