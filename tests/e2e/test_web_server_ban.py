"""A server-banned page stops knocking and says why (issue 15 leftovers, point 3).

The page was refused with close code 1013, "try again later", and retried with backoff for
ever. A server ban now closes with 1008: the page shows the line and waits for the person.
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import BROWSER_MISSING, RawClient, ServerProcess
from tests.integration.serverproc import BIN

if BROWSER_MISSING:
    pytest.skip(BROWSER_MISSING, allow_module_level=True)
pytest.importorskip("selenium")

from tests.e2e.test_web_browser import Page

BANNED = "you are banned from this server"


@pytest.fixture
def opered_server(tmp_path: Path) -> Iterator[ServerProcess]:
    hashed = subprocess.run(
        [str(BIN / "chatroom-passwd"), "--time-cost", "1", "--memory-kib", "64",
         "--parallelism", "1"],
        input="root pass\n", capture_output=True, text=True, timeout=30, check=True,
    ).stdout.strip()
    opers = tmp_path / "opers.txt"
    opers.write_text(f"root {hashed}\n")
    process = ServerProcess(tmp_path, 0, "--opers", str(opers))
    yield process
    process.stop()


def test_a_server_banned_page_shows_why_and_does_not_reconnect(
    opered_server: ServerProcess, browsers: Callable[..., Any],
) -> None:
    page = Page(browsers(), opered_server.url)
    page.join("alice")
    oper = RawClient(opered_server.line_port, source="127.0.0.2")
    try:
        oper.wait_for("nickname")
        oper.send("root")
        oper.wait_for("welcome, root!")
        oper.send("/oper root root pass")
        oper.wait_for("now a server operator")
        oper.send("/gban 127.0.0.1 1h testing")
        oper.wait_for("alice left")
    finally:
        oper.close()

    def stopped(_: Any) -> bool:
        return (page.status()[0] == "offline" and page.element("join").is_displayed()
                and page.element("join-note").text == BANNED)

    page.wait(stopped)
    page.choose("alice")  # the person tries again: refused at the door this time
    page.wait(lambda d: page.element("join-note").text == BANNED
              and page.status()[0] == "offline" and not page.element("reconnect").is_displayed())
    assert "reconnecting" not in page.status()[1]
    refused = re.findall(r"refused web connection from 127\.0\.0\.1:\d+", opered_server.log())
    assert len(refused) == 1  # the person's own try, nothing by itself
