"""Rooms on the page, in a real browser: a room list with unread counts, switching, joining
and leaving from the page and by /join, the current room's members, and a link to a room."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from tests.e2e.conftest import BROWSER_MISSING, RawClient, ServerProcess

if BROWSER_MISSING:
    pytest.skip(BROWSER_MISSING, allow_module_level=True)
pytest.importorskip("selenium")

from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys

from tests.e2e.test_web_browser import Page


class RoomsPage(Page):
    def rooms(self) -> list[str]:
        """The room list as shown: ``#name`` and, after a space, an unread count if any."""
        return [
            str(text).strip() for text in self.driver.execute_script(
                "return Array.from(document.querySelectorAll('#rooms .room'),"
                " e => e.textContent.replace(/^(#\\S+?)(\\d+)$/, '$1 $2'));"
            )
        ]

    def wait_rooms(self, expected: list[str]) -> None:
        try:
            self.wait(lambda d: self.rooms() == expected)
        except Exception as e:
            raise AssertionError(f"rooms {self.rooms()!r}, wanted {expected!r}") from e

    def current(self) -> str:
        return str(self.element("room-title").text)

    def click_room(self, name: str) -> None:
        for button in self.driver.find_elements(By.CSS_SELECTOR, "#rooms .room"):
            if button.text.startswith(name):
                button.click()
                return
        raise AssertionError(f"no room {name} in {self.rooms()!r}")

    def leave_room(self, name: str) -> None:
        self.driver.find_element(By.CSS_SELECTOR, f"#rooms .part[title='Leave {name}']").click()

    def join_room(self, name: str) -> None:
        field = self.element("room-name")
        field.clear()
        field.send_keys(name, Keys.ENTER)


def test_rooms_on_the_page(
    server: ServerProcess, browsers: Callable[..., Any],
    raw_clients: Callable[[int], RawClient],
) -> None:
    alice = RoomsPage(browsers(), server.url)
    alice.join("alice")
    alice.wait_rooms(["#lobby"])
    assert alice.current() == "#lobby"

    carol = raw_clients(server.line_port)
    carol.wait_for("nickname")
    carol.send("carol")
    carol.wait_for(r"welcome, carol!")
    alice.wait_members(["alice", "carol"])

    # joining from the page: the new room is current, its members are the list
    alice.join_room("dev")
    alice.wait_rooms(["#lobby", "#dev"])
    alice.wait(lambda d: alice.current() == "#dev")
    alice.wait_members(["alice"])
    assert alice.driver.current_url.endswith("#dev")  # the URL names the room

    # lines of the room not shown count as unread; switching shows them
    carol.send("in the lobby")
    carol.send("still in the lobby")
    alice.wait_rooms(["#lobby 2", "#dev"])
    assert alice.lines()[-1] != "carol: still in the lobby"
    alice.click_room("#lobby")
    alice.wait(lambda d: alice.current() == "#lobby")
    alice.wait_line(r"^carol: still in the lobby$")
    alice.wait_rooms(["#lobby", "#dev"])
    alice.wait_members(["alice", "carol"])
    alice.say("typed in the lobby")  # the page made #lobby current on the server too
    carol.wait_for(r"^alice: typed in the lobby$")

    # /join typed in the box, and a telnet user in the same room
    carol.send("/join #dev")
    carol.wait_for("you joined #dev")
    alice.say("/join #dev")
    alice.wait(lambda d: alice.current() == "#dev")
    alice.wait_members(["alice", "carol"])
    carol.send("hello dev")
    alice.wait_line(r"^carol: hello dev$")

    # leaving from the page
    alice.leave_room("#dev")
    alice.wait_rooms(["#lobby"])
    alice.wait(lambda d: alice.current() == "#lobby")
    carol.wait_for(r"^\*\*\* alice left$")

    # a link to a room opens it
    bob = RoomsPage(browsers(), server.url + "#ops")
    bob.join("bob")
    bob.wait(lambda d: bob.current() == "#ops")
    bob.wait_rooms(["#lobby", "#ops"])
    bob.wait_members(["bob"])
