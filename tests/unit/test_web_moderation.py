"""Moderation on the WebSocket: the page gets each moderation event as a message of its own
(it shows its own, having no local echo), the kicked member learns who did it, and an
invitation reaches only the invitee."""

from __future__ import annotations

from typing import Any

from twisted.internet.task import Clock

from tests.unit.test_web_harness import FakeBrowser, make_site


def step(clock: Clock, *browsers: FakeBrowser) -> list[list[dict[str, Any]]]:
    clock.advance(0)
    clock.advance(0)
    return [browser.received() for browser in browsers]


def test_moderation_events_as_messages_and_no_confirmation_notices() -> None:
    clock = Clock()
    site = make_site(clock)
    alice, bob, dora = (FakeBrowser(site, port) for port in (50001, 50002, 50003))
    for browser, nick in ((alice, "alice"), (bob, "bob"), (dora, "dora")):
        browser.join(nick, clock)
    alice.say("/join #dev")
    step(clock, alice)
    bob.say("/join #dev")
    step(clock, alice, bob, dora)

    alice.say("/mode +m")
    alice.say("/voice bob")
    alice.say("/invite dora")
    [mine, his, hers] = step(clock, alice, bob, dora)
    assert [(m["type"], m.get("change")) for m in mine] == [
        ("mode", "+m"), ("role", "+v"), ("invited", None), ("notice", None)]
    assert mine[-1]["text"] == "you invited dora to #dev"  # its own: not in the room
    assert [m["text"] for m in his] == ["alice set mode +m", "alice gave voice to bob"]
    assert his[1]["target"] == "bob" and his[1]["room"] == "#dev"
    assert [(m["type"], m["room"], m["nick"]) for m in hers] == [("invited", "#dev", "alice")]

    alice.say("/kick bob enough")
    [mine, his] = step(clock, alice, bob)
    kicked = {"type": "left", "room": "#dev", "nick": "bob", "by": "alice", "how": "kicked",
              "text": "enough"}
    assert [{k: m[k] for k in kicked} for m in mine] == [kicked]
    assert [{k: m[k] for k in kicked} for m in his] == [kicked]

    alice.say("/ban bob")
    [mine] = step(clock, alice)
    assert [(m["type"], m["change"], m["mask"]) for m in mine] == [("mask", "+b", "bob")]
    bob.say("/join #dev")
    [his] = step(clock, bob)
    assert [(m["type"], m["text"]) for m in his] == [("error", "you are banned from #dev")]
