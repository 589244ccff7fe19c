"""InputGate: the holds both front ends put on a connection's input."""

from __future__ import annotations

from twisted.internet.defer import Deferred, succeed
from twisted.internet.task import Clock

from chatroom.entry import EntryPacer
from chatroom.gate import InputGate


class Recorder:
    """A reader that writes down what the gate asks of it."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    def pause_reading(self) -> None:
        self.calls.append("pause")

    def resume_reading(self) -> None:
        self.calls.append("resume")

    def flooding(self, rate: float) -> None:
        self.calls.append(f"flood {rate:g}")


def make(rate: float = 4.0, burst: int = 2) -> tuple[Clock, InputGate, list[str]]:
    clock = Clock()
    reader = Recorder()
    gate = InputGate(rate, burst, clock, reader)
    return clock, gate, reader.calls


def test_over_the_allowance_pauses_then_resumes_when_a_token_is_due() -> None:
    clock, gate, calls = make()
    assert gate.admit() and gate.admit()
    assert not gate.admit()
    assert gate.held and calls == ["pause", "flood 4"]
    clock.advance(0.25)
    assert not gate.held and calls[-1] == "resume"
    assert gate.admit()


def test_waiting_holds_only_while_the_result_is_pending() -> None:
    _, gate, calls = make()
    gate.wait_for(succeed(None), lambda failure: None)
    assert calls == [] and not gate.held  # already fired: never paused
    pending: Deferred[None] = Deferred()
    gate.wait_for(pending, lambda failure: None)
    assert gate.held and calls == ["pause"]
    pending.callback(None)
    assert not gate.held and calls == ["pause", "resume"]


def test_two_holds_resume_once_both_are_released() -> None:
    clock, gate, calls = make(burst=1)
    pending: Deferred[None] = Deferred()
    gate.wait_for(pending, lambda failure: None)
    assert gate.admit()
    assert not gate.admit()
    clock.advance(1)
    assert gate.held and calls == ["pause", "flood 4"]
    pending.callback(None)
    assert calls[-1] == "resume"


def test_a_closed_gate_neither_resumes_nor_keeps_a_timer() -> None:
    clock, gate, calls = make(burst=1)
    gate.admit()
    gate.admit()
    gate.close()
    assert clock.getDelayedCalls() == []
    clock.advance(10)
    assert "resume" not in calls


def test_a_gate_released_keeps_no_set_of_its_own() -> None:
    """Every newcomer of a storm is held once: its gate must not keep an empty set (216
    bytes) afterwards."""
    _, gate, _ = make()
    other_gate = make()[1]
    gate.hold("entry")
    gate.release("entry")
    assert gate._holds is other_gate._holds


def test_a_newcomer_waits_for_the_entry_pacer_and_is_let_through_on_its_turn() -> None:
    clock = Clock()
    pacer = EntryPacer(clock, budget=0.001)
    pacer.watch(lambda: True)  # lines on their way: newcomers past the budget wait
    readers = [Recorder() for _ in range(2)]
    gates = [InputGate(4.0, 2, clock, reader, pacer) for reader in readers]
    assert gates[0].admit()
    clock.rightNow += 0.002  # the first newcomer's sign-in took the turn's budget
    assert not gates[1].admit()
    assert gates[1].held and readers[1].calls == ["pause"]
    clock.advance(0)  # the next turn
    assert not gates[1].held and readers[1].calls == ["pause", "resume"]
    gates[1].entered()
    clock.rightNow += 0.002
    assert gates[1].admit()  # signed in: no more waiting for newcomers' turns
