"""Test-wide fixtures: a clock, and failing any test that logged an unexpected error."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from twisted.internet.task import Clock
from twisted.logger import ILogObserver, LogLevel, globalLogPublisher
from zope.interface import provider


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture(autouse=True)
def logged_failures(request: pytest.FixtureRequest) -> Iterator[list[dict[str, Any]]]:
    """Every failure logged during the test; the test fails if there are any, unless it
    takes this fixture and clears the list (having checked what it expected)."""
    failures: list[dict[str, Any]] = []

    @provider(ILogObserver)
    def observe(event: dict[str, Any]) -> None:
        if "log_failure" in event or event.get("log_level") == LogLevel.critical:
            failures.append(event)

    globalLogPublisher.addObserver(observe)
    try:
        yield failures
    finally:
        globalLogPublisher.removeObserver(observe)
    if failures:
        details = "; ".join(
            str(event.get("log_failure") or event.get("log_format")) for event in failures
        )
        pytest.fail(f"{len(failures)} failure(s) logged: {details}")
