"""The Redis stream's encoding of events: every event type crosses nodes unchanged, and an
entry with a bad field is refused, not half-read."""

from __future__ import annotations

import dataclasses

import pytest

from chatroom.domain import events
from chatroom.domain.events import Event, Left, RoomKnown, ServerBanSet
from chatroom.hubs import redis_wire

KINDS = sorted(
    (value for value in vars(events).values()
     if isinstance(value, type) and issubclass(value, Event) and value is not Event),
    key=lambda kind: kind.__name__,
)


def example(kind: type[Event]) -> Event:
    values: dict[str, object] = {}
    for field in dataclasses.fields(kind):
        if field.name in ("time", "until"):
            values[field.name] = 1.5
        elif field.name in ("limit", "registered"):
            values[field.name] = 7
        elif field.type == "tuple[str, ...]":
            values[field.name] = (f"{field.name}1", f"{field.name}\t2")
        else:
            values[field.name] = f"{field.name}1 ü"
    return kind(**values)  # type: ignore[arg-type]


@pytest.mark.parametrize("kind", KINDS, ids=lambda kind: kind.__name__)
def test_every_event_type_crosses_unchanged(kind: type[Event]) -> None:
    event = example(kind)
    name, copy = redis_wire.decode_event(redis_wire.encode_event(event))
    assert (name, copy) == (kind.__name__, event)


def test_a_left_written_before_kicks_existed_still_reads() -> None:
    old = b'["Left","#dev",1.5,"m1","bob","quit",""]'
    assert redis_wire.decode_event(old)[1] == Left("#dev", 1.5, "m1", "bob", "quit", "", "")


@pytest.mark.parametrize("payload", [
    b'["ServerBanSet","",1.5,"m","alice","+","1.2.3.4","later",""]',  # until: not a number
    b'["RoomKnown","#dev",1.5,"","","m","",7,["a"],["b"],"not a list",[],[]]',
    b'["RoomKnown","#dev",1.5,"","","m","",true,[],[],[],[],[]]',
    b'["ModeSet","#dev",1.5,"m","alice"]',  # too few fields
    b'["Left","#dev",1.5,"m1","bob","quit","","by","more"]',  # too many
])
def test_a_bad_entry_is_refused(payload: bytes) -> None:
    with pytest.raises(redis_wire.BadEntry):
        redis_wire.decode_event(payload)


def test_kinds_cover_the_moderation_events() -> None:
    assert {RoomKnown, ServerBanSet} <= set(KINDS)
