"""The session with no wire at all: a recording ``Port`` and a Clock. Whatever a front end
is, this is what it gets told and when."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from twisted.internet.defer import Deferred
from twisted.internet.task import Clock
from twisted.python.failure import Failure

from chatroom.domain.chat import Member
from chatroom.domain.directory import RoomState
from chatroom.limits import Limits
from chatroom.lines.fanout import Fanout
from chatroom.session import Services, Session


@dataclass
class RecordingPort:
    """Every call a session makes on its front end, as ``(name, args)``."""

    calls: list[tuple[str, tuple[Any, ...]]] = field(default_factory=list)
    open: bool = True
    session: Session | None = None
    sent: list[bytes] = field(default_factory=list)

    def __getattr__(self, name: str) -> Any:
        if name.startswith(("show_", "cmd_", "close_", "pause_", "resume_", "abort")):
            def record(*args: Any) -> None:
                self.calls.append((name, args))
                if name == "cmd_quit" and self.session is not None:
                    self.session.quit(args[0])
            return record
        raise AttributeError(name)

    def still_open(self) -> bool:
        return self.open

    def wait_for(self, result: Deferred[Any]) -> None:
        assert self.session is not None
        self.session.wait_for(result)

    def send(self, data: bytes) -> None:
        self.sent.append(data)

    def names(self) -> list[str]:
        names = [name for name, _ in self.calls]
        self.calls.clear()
        return names


def make(**limits: Any) -> tuple[Clock, Services, RecordingPort, Session]:
    clock = Clock()
    services = Services.create(clock, Limits(**limits))
    fanout = Fanout(clock)
    services.chat.hub.subscribe(fanout.deliver)
    port = RecordingPort()
    session = Session(services, port, fanout, port, "peer")
    port.session = session
    session.start()
    return clock, services, port, session


def test_a_nickname_then_a_welcome_in_the_default_room() -> None:
    _, services, port, session = make()
    session.text("alice")
    (name, (member, room, replay)), = port.calls
    assert name == "show_welcome" and isinstance(member, Member) and member.nick == "alice"
    assert isinstance(room, RoomState) and room.name == "#lobby" and replay == []
    assert services.chat.members() == ["alice"] and session.joined


def test_a_refused_nickname_gets_an_error_and_the_prompt_again() -> None:
    _, _, port, session = make()
    session.text("_bad")
    assert port.names() == ["show_error", "show_prompt"]
    session.text("/dance")
    assert port.names() == ["show_error", "show_prompt"]
    session.text("/help")
    assert port.names() == ["show_help", "show_prompt"]


def test_the_nickname_timer_closes_with_an_error() -> None:
    clock, _, port, session = make(nick_timeout=5.0)
    clock.advance(4.9)
    assert port.calls == []
    clock.advance(0.2)
    assert port.calls == [("close_with_error",
                           ("no nickname chosen in 5 seconds; goodbye", "nickname timeout"))]
    assert session.closing


def test_a_member_who_goes_away_leaves_with_the_reason() -> None:
    clock, services, port, session = make(idle_timeout=10.0)
    session.text("alice")
    port.names()
    clock.advance(10)
    assert port.names() == ["close_with_error"]
    assert services.chat.members() == [] and not session.joined


def test_quit_says_goodbye_and_the_connection_closing_first_means_no_join() -> None:
    _, services, port, session = make()
    session.text("alice")
    port.names()
    session.text("/quit")
    assert port.calls == [("cmd_quit", (session.member,)), ("close_normally", ("goodbye, alice",))]
    assert services.chat.members() == []
    _, services, port, other = make()
    port.open = False  # closed while the claim was in flight
    other.text("bob")
    assert services.chat.members() == [] and other.member is None


def test_a_bug_drops_only_this_connection_and_is_logged(
    logged_failures: list[dict[str, Any]],
) -> None:
    _, _, port, session = make()
    session.bug(Failure(ZeroDivisionError()))
    assert port.names() == ["abort"] and session.leave_reason == "server error"
    assert len(logged_failures) == 1
    logged_failures.clear()


def test_a_lost_connection_leaving_writes_nobody_elses_lines_early() -> None:
    # A reset storm (issue 17): 5000 departures among 10 000 members made a pass over the
    # room each when every departure flushed the fan-out. What was on its way to the others
    # goes in the turn's own pass, with the departure after it.
    clock = Clock()
    services = Services.create(clock, Limits())
    fanout = Fanout(clock)
    services.chat.hub.subscribe(fanout.deliver)
    ports, sessions = [], []
    for nick in ("alice", "bob", "carol"):
        port = RecordingPort()
        session = Session(services, port, fanout, port, nick)
        port.session = session
        session.start()
        session.text(nick)
        ports.append(port)
        sessions.append(session)
    clock.advance(0)
    alice = ports[0]
    alice.sent.clear()
    sessions[1].text("hello")
    sessions[2].lost("connection reset")
    assert alice.sent == []  # nothing written before the turn's pass
    clock.advance(0)
    assert alice.sent == [b"bob: hello\r\n*** carol left\r\n"]
    assert services.chat.members() == ["alice", "bob"]
