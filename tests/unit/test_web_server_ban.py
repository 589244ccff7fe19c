"""A server-banned page is told why and closed with a code that stops its retries (issue 15
leftovers, point 3). It was closed with 1013, "try again later": the page retried for ever.
"""

from __future__ import annotations

import re

from twisted.internet.task import Clock

from chatroom.domain.moderation import SERVER_BANNED
from chatroom.limits import Limits
from chatroom.web.protocol import CLOSE_POLICY, CLOSE_TRY_LATER
from chatroom.web.site import load_assets
from tests.unit.test_web_harness import FakeBrowser, make_site


def test_a_server_banned_browser_is_closed_with_1008() -> None:
    site = make_site(Clock())
    site.admission.screen = lambda host: SERVER_BANNED if host == "127.0.0.1" else None
    browser = FakeBrowser(site, 1)
    (error,) = browser.received()
    assert error == {"type": "error", "time": error["time"], "text": SERVER_BANNED,
                     "about": "server"}
    assert browser.closes == [(CLOSE_POLICY, SERVER_BANNED)]


def test_a_full_server_still_says_try_again_later() -> None:
    site = make_site(Clock(), Limits(max_clients=2))
    FakeBrowser(site, 1)
    FakeBrowser(site, 2)
    third = FakeBrowser(site, 3)
    assert [m["text"] for m in third.received()] == ["server full"]
    assert third.closes == [(CLOSE_TRY_LATER, "server full")]



def test_the_page_stops_on_1008_and_retries_on_1013() -> None:
    js = load_assets()["app.js"].body.decode()
    found = re.search(r"const NO_RECONNECT = new Set\(\[([0-9, ]+)\]\)", js)
    assert found is not None, "app.js's NO_RECONNECT moved or changed its shape"
    codes = {int(code) for code in found.group(1).split(",")}
    assert CLOSE_POLICY in codes
    assert CLOSE_TRY_LATER not in codes
