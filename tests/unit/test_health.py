"""/healthz and /readyz: what a load balancer or an orchestrator is told, and when."""

from __future__ import annotations

from typing import Any, cast

from twisted.internet.defer import Deferred, ensureDeferred, fail
from twisted.internet.task import Clock
from twisted.web.server import NOT_DONE_YET, Request
from twisted.web.test.requesthelper import DummyRequest

from chatroom.health import Healthz, Index, Readiness, Readyz


class Fixed:
    """A check whose problem the test sets."""

    def __init__(self, problem: str | None = None) -> None:
        self.trouble = problem

    def problem(self) -> str | None:
        return self.trouble


class Probed(Fixed):
    """A check with a probe the test answers."""

    def __init__(self) -> None:
        super().__init__()
        self.asked: list[Deferred[None]] = []

    def probe(self) -> Deferred[None]:
        probing: Deferred[None] = Deferred()
        self.asked.append(probing)
        return probing


def render(resource: Any, path: bytes = b"") -> DummyRequest:
    request = DummyRequest([path])
    result = resource.render(request)
    if result is not NOT_DONE_YET:
        request.write(result)
        request.finish()
    return request


def body(request: DummyRequest) -> str:
    return b"".join(request.written).decode()


def test_healthz_says_ok_whenever_it_is_asked() -> None:
    request = render(Healthz())
    assert request.finished and body(request) == "ok\n"
    assert request.responseCode in (None, 200)
    assert request.responseHeaders.getRawHeaders(b"content-type") == [
        b"text/plain; charset=utf-8"]


def test_ready_when_no_check_has_a_problem(clock: Clock) -> None:
    request = render(Readyz(Readiness(clock, [Fixed(), Fixed()])))
    assert request.finished and body(request) == "ready\n"
    assert request.responseCode in (None, 200)


def test_not_ready_names_every_problem_with_a_503(clock: Clock) -> None:
    readiness = Readiness(clock, [Fixed("redis: split"), Fixed(), Fixed("history store closed")])
    request = render(Readyz(readiness))
    assert request.responseCode == 503
    assert body(request) == "redis: split\nhistory store closed\n"


def test_a_probe_that_answers_in_time_means_ready_and_one_probe_serves_many(
    clock: Clock,
) -> None:
    check = Probed()
    readyz = Readyz(Readiness(clock, [check]))
    first, second = render(readyz), render(readyz)
    assert not first.finished and not second.finished
    assert len(check.asked) == 1, "requests that come together share one probe"
    check.asked[0].callback(None)
    assert body(first) == body(second) == "ready\n"
    render(readyz)
    assert len(check.asked) == 2, "the next request probes again"


def test_a_probe_that_does_not_answer_in_time_means_not_ready(clock: Clock) -> None:
    check = Probed()
    request = render(Readyz(Readiness(clock, [check], timeout=2.0)))
    clock.advance(1.9)
    assert not request.finished
    clock.advance(0.1)
    assert request.responseCode == 503
    assert body(request) == "history writer did not answer in 2 s\n"


def test_a_probe_that_fails_means_not_ready(clock: Clock) -> None:
    class Locked(Fixed):
        def probe(self) -> Deferred[None]:
            return fail(OSError("database is locked"))

    request = render(Readyz(Readiness(clock, [Locked()])))
    assert request.responseCode == 503
    assert body(request) == "history not writable: database is locked\n"
    assert clock.getDelayedCalls() == []  # the timeout went with the answer


def test_no_probe_while_a_check_already_has_a_problem(clock: Clock) -> None:
    class Failing(Fixed):
        def probe(self) -> Deferred[None]:
            raise AssertionError("probed")

    request = render(Readyz(Readiness(clock, [Failing("history writes failing")])))
    assert body(request) == "history writes failing\n"


def test_a_client_gone_before_the_answer_is_not_written_to(clock: Clock) -> None:
    check = Probed()
    request = render(Readyz(Readiness(clock, [check])))
    request.processingFailed(Exception("client went away"))  # fails notifyFinish
    check.asked[0].callback(None)
    assert body(request) == ""


def test_the_index_lists_the_paths_and_others_are_404() -> None:
    root = Index()
    assert "/metrics" in body(render(root))
    missing = render(root.getChild(b"nope", cast(Request, DummyRequest([b"nope"]))))
    assert missing.responseCode == 404


def test_readiness_of_nothing_is_ready(clock: Clock) -> None:
    problems: list[list[str]] = []
    ensureDeferred(Readiness(clock, []).problems()).addCallback(problems.append)
    assert problems == [[]]
