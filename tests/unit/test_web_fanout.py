"""The web fan-out: one encoding per event, one write per browser per turn, the sender echoed."""

from twisted.internet.task import Clock

from chatroom.domain.chat import Member
from chatroom.domain.events import Event, Joined, Said, Whispered
from chatroom.lines.fanout import Fanout


class Tab:
    def __init__(self):
        self.writes: list[bytes] = []

    def send(self, data: bytes) -> None:
        self.writes.append(data)


def said(member, text):
    return Said("lobby", 0.0, member, member, text)


def enter(fanout, member, tab):
    """``member`` signs in and joins the room, as a session does (the others hear of it)."""
    fanout.add(Member(member, member, current="lobby"), tab)
    fanout.deliver(Joined("lobby", 0.0, member, member))


def settle(clock, rendered, *tabs):
    """Let the joins go out, and forget them."""
    clock.advance(0)
    rendered.clear()
    for tab in tabs:
        tab.writes.clear()


def make():
    rendered: list[Event] = []

    def render(event):
        rendered.append(event)
        return f"<{event.nick}:{getattr(event, 'text', '')}>".encode()

    clock = Clock()
    return clock, Fanout(clock, render, echo=True), rendered


def test_every_event_is_rendered_once_and_everyone_gets_the_same_bytes():
    clock, fanout, rendered = make()
    tabs = {m: Tab() for m in ("a", "b", "c")}
    for member, tab in tabs.items():
        enter(fanout, member, tab)
    settle(clock, rendered, *tabs.values())
    fanout.deliver(said("a", "one"))
    fanout.deliver(said("b", "two"))
    assert all(not tab.writes for tab in tabs.values())  # nothing before the turn ends
    clock.advance(0)
    assert len(rendered) == 2
    writes = [tab.writes for tab in tabs.values()]
    assert writes[0] == [b"<a:one><b:two>"]
    assert all(w == writes[0] for w in writes)
    assert writes[0][0] is writes[1][0]  # the very same object, not a copy per browser


def test_the_sender_gets_its_own_line_back_in_room_order():
    clock, fanout, rendered = make()
    alice, bob = Tab(), Tab()
    enter(fanout, "a", alice)
    enter(fanout, "b", bob)
    settle(clock, rendered, alice, bob)
    fanout.deliver(said("b", "before"))
    fanout.deliver(said("a", "mine"))
    fanout.deliver(said("b", "after"))
    clock.advance(0)
    assert alice.writes == [b"<b:before><a:mine><b:after>"]


def test_a_private_message_reaches_its_addressee_and_its_sender_only():
    clock, fanout, rendered = make()
    tabs = {m: Tab() for m in ("a", "b", "c")}
    for member, tab in tabs.items():
        enter(fanout, member, tab)
    settle(clock, rendered, *tabs.values())
    fanout.deliver(said("c", "public"))
    fanout.deliver(Whispered("lobby", 0.0, "a", "a", "psst", "b", "b"))
    clock.advance(0)
    assert tabs["a"].writes == [b"<c:public><a:psst>"]
    assert tabs["b"].writes == [b"<c:public><a:psst>"]
    assert tabs["c"].writes == [b"<c:public>"]


def test_a_private_message_to_oneself_arrives_once():
    clock, fanout, _ = make()
    alice = Tab()
    enter(fanout, "a", alice)
    clock.advance(0)
    fanout.deliver(Whispered("lobby", 0.0, "a", "a", "note", "a", "a"))
    clock.advance(0)
    assert alice.writes == [b"<a:note>"]


def test_a_browser_that_joins_mid_turn_gets_only_what_came_after():
    clock, fanout, _ = make()
    alice, bob = Tab(), Tab()
    enter(fanout, "a", alice)
    clock.advance(0)
    alice.writes.clear()
    fanout.deliver(said("a", "early"))
    enter(fanout, "b", bob)
    fanout.deliver(said("a", "late"))
    clock.advance(0)
    assert bob.writes == [b"<a:late>"]
    assert alice.writes == [b"<a:early><b:><a:late>"]


def test_a_removed_browser_gets_nothing_more_and_close_stops_everything():
    clock, fanout, rendered = make()
    alice, bob = Tab(), Tab()
    enter(fanout, "a", alice)
    enter(fanout, "b", bob)
    settle(clock, rendered, alice, bob)
    fanout.remove("b")
    fanout.deliver(said("a", "one"))
    clock.advance(0)
    assert bob.writes == [] and alice.writes == [b"<a:one>"]
    fanout.deliver(said("a", "two"))
    fanout.close()
    fanout.deliver(said("a", "three"))
    clock.advance(0)
    assert alice.writes == [b"<a:one>"]
    assert not clock.getDelayedCalls()


def test_a_browser_dropped_during_a_flush_does_not_stop_the_others():
    clock, fanout, _ = make()
    tabs = {m: Tab() for m in ("a", "b", "c")}

    class Dropper(Tab):
        armed = False

        def send(self, data):
            super().send(data)
            if self.armed:
                fanout.remove("b")  # e.g. an outbox overflow makes the protocol leave
                fanout.remove("c")

    dropper = Dropper()
    enter(fanout, "x", dropper)
    for member, tab in tabs.items():
        enter(fanout, member, tab)
    clock.advance(0)
    for tab in (dropper, *tabs.values()):
        tab.writes.clear()
    dropper.armed = True
    fanout.deliver(said("a", "hi"))
    clock.advance(0)
    assert dropper.writes == [b"<a:hi>"] and tabs["a"].writes == [b"<a:hi>"]
    assert len(fanout) == 2
