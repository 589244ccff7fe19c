"""Every kind of event renders in every front end: a new event type fails here until each
adapter can show it (the line front end's ``render``, the web's ``messages.render``)."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable

import pytest

from chatroom.domain import events
from chatroom.domain.events import Event
from chatroom.lines import render as lines
from chatroom.lines.factory import prefixed
from chatroom.web import messages

KINDS = sorted(
    (
        value for value in vars(events).values()
        if isinstance(value, type) and issubclass(value, Event) and value is not Event
        and value not in events.VIEW_EVENTS
    ),
    key=lambda kind: kind.__name__,
)
"""Every event type the domain defines but the view events, which no front end shows (a
new one joins this list by itself)."""


def example(kind: type[Event]) -> Event:
    """An instance with every field filled: strings with a word, tuples with a room."""
    values: dict[str, object] = {}
    for field in dataclasses.fields(kind):
        if field.name == "time":
            values["time"] = 1.5
        elif field.name == "rooms":
            values["rooms"] = ("#dev",)
        else:
            values[field.name] = f"{field.name}1" if field.name != "room" else "#dev"
    return kind(**values)  # type: ignore[arg-type]


def test_every_event_type_is_here() -> None:
    assert {kind.__name__ for kind in KINDS} >= {
        "Joined", "Left", "Renamed", "Said", "Acted", "Whispered", "Notice", "TopicSet"
    }


@pytest.mark.parametrize("kind", KINDS, ids=lambda kind: kind.__name__)
def test_the_line_front_end_renders_every_event(kind: type[Event]) -> None:
    data = lines.render(example(kind))
    assert data.endswith(b"\r\n") and data.count(b"\r\n") == 1
    text = data.decode("utf-8")
    assert "nick1" in text or "text1" in text
    assert prefixed("#dev", data) == b"#dev " + data


@pytest.mark.parametrize("kind", KINDS, ids=lambda kind: kind.__name__)
def test_the_web_front_end_renders_every_event(kind: type[Event]) -> None:
    frame = messages.render(example(kind))
    payload = frame[2:] if frame[1] < 126 else frame[4:]
    message = json.loads(payload)
    assert isinstance(message["type"], str) and message["time"] == 1.5


@pytest.mark.parametrize("render", [lines.render, messages.render])
def test_an_unknown_event_is_an_error_not_silence(render: Callable[[Event], bytes]) -> None:
    @dataclasses.dataclass(frozen=True, slots=True)
    class Unheard(Event):
        pass

    with pytest.raises(TypeError):
        render(Unheard("#dev", 0.0, "m", "n"))


@pytest.mark.parametrize("kind", KINDS, ids=lambda kind: kind.__name__)
def test_the_irc_front_end_renders_every_event(kind: type[Event]) -> None:
    from chatroom.irc.render import Renderer

    data = Renderer("irc.test")(example(kind))
    assert data.endswith(b"\r\n") and b"\r\n" not in data[:-2]
    assert b"#dev" in data or b"nick1" in data or b"text1" in data


def test_a_kick_is_an_irc_kick_by_its_operator() -> None:
    from chatroom.domain.events import Left
    from chatroom.irc.render import Renderer

    data = Renderer("irc.test")(Left("#dev", 1.5, "m2", "bob", "kicked", "flood", "alice"))
    assert data.split(b" ", 1)[1] == b":alice!alice@chatroom KICK #dev bob :flood\r\n"
