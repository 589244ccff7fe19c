"""The files a reload reads (``--config``, ``--motd``, ``--opers``) must be regular files.

Opening a FIFO waits for a writer: a reload that opened one (a confused operator's path)
never ended, held every later reload (SIGHUP and ``/rehash`` queue behind it) and the
input of the operator who asked. Such a path is refused in one sentence instead.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from twisted.python import usage

from chatroom import motd
from chatroom.accounts.opers import OperatorsFileError, load_operators
from chatroom.options import Options


@pytest.fixture
def fifo(tmp_path: Path) -> Iterator[str]:
    path = tmp_path / "fifo"
    os.mkfifo(path)
    yield str(path)
    with contextlib.suppress(OSError):  # release a reader left waiting (before the fix)
        os.close(os.open(path, os.O_WRONLY | os.O_NONBLOCK))


def _refusal(read: Callable[[], object]) -> BaseException:
    """What ``read`` raised, or fail if it did not end at once."""
    raised: list[BaseException] = []

    def run() -> None:
        try:
            read()
        except BaseException as e:
            raised.append(e)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(5)
    assert not thread.is_alive(), "reading a FIFO waits for a writer"
    assert raised, "a FIFO was read as a file"
    return raised[0]


def test_a_fifo_as_the_motd_is_refused(fifo: str) -> None:
    e = _refusal(lambda: motd.load(fifo))
    assert isinstance(e, motd.MotdError) and str(e) == "cannot read it: not a regular file"


def test_a_fifo_as_the_config_file_is_refused(fifo: str) -> None:
    e = _refusal(lambda: Options().parseOptions(["--config", fifo]))
    assert isinstance(e, usage.UsageError)
    assert str(e) == f"--config {fifo}: not a regular file"


def test_a_fifo_as_the_operators_file_is_refused(fifo: str) -> None:
    e = _refusal(lambda: load_operators(fifo))
    assert isinstance(e, OperatorsFileError) and "not a regular file" in str(e)


def test_a_regular_file_is_read(tmp_path: Path) -> None:
    path = tmp_path / "motd.txt"
    path.write_text("hello\n")
    assert motd.load(str(path)) == ["hello"]
