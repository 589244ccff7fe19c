"""``--motd FILE``: read and cleaned, shown after the welcome on every front end (nothing
new for a server without one), read again by a reload, which refuses a file it cannot read
and keeps the old message."""

from __future__ import annotations

from pathlib import Path

import pytest
from twisted.internet.task import Clock
from twisted.python import usage

from chatroom import motd
from chatroom.options import Options
from tests.unit.irchelpers import both
from tests.unit.test_reload import Running
from tests.unit.test_web_harness import FakeBrowser, make_site


def test_lines_are_cleaned_cut_and_counted() -> None:
    text = ("\n\n  \nhello\x1b[31m red\x07\n\u202eflipped\n" + "x" * 1000 + "\n\n"
            + "\n".join(f"line {i}" for i in range(100)) + "\n\n\n")
    lines = motd.parse(text)
    assert lines[:5] == ["hello red", "flipped", "x" * motd.MAX_CHARS, "", "line 0"]
    assert len(lines) == motd.MAX_LINES
    assert motd.parse("\n \n") == []


def test_irc_formatting_codes_go_whole_with_their_colour_numbers() -> None:
    # MOTDs are written for IRC clients, in colour: the numbers after ^C are part of the
    # code, not text; the control characters alone were removed, "04" stayed.
    text = "\x02Welcome\x02 to \x0304,12chat\x03 \x1dnow\x0f \x0399"
    assert motd.parse(text) == ["Welcome to chat now"]


def test_a_file_is_read_up_to_a_bound(tmp_path: Path) -> None:
    path = tmp_path / "motd.txt"
    path.write_bytes(b"caf\xc3\xa9 \xff\n" + b"y" * (motd.MAX_BYTES * 4))
    lines = motd.load(str(path))
    assert lines[0] == "caf\u00e9 \ufffd" and lines[1] == "y" * motd.MAX_CHARS
    with pytest.raises(motd.MotdError, match="cannot read it: No such file or directory"):
        motd.load(str(tmp_path / "missing.txt"))


def test_the_option_reads_the_file_and_names_itself_when_it_cannot(tmp_path: Path) -> None:
    options = Options()
    options.parseOptions([])
    assert options["motd"] is None and options["motd-lines"] is None
    (tmp_path / "motd.txt").write_text("be nice\n")
    options = Options()
    options.parseOptions(["--motd", str(tmp_path / "motd.txt")])
    assert options["motd-lines"] == ["be nice"]
    missing = tmp_path / "missing.txt"
    with pytest.raises(usage.UsageError) as refused:
        Options().parseOptions(["--motd", str(missing)])
    assert str(refused.value) == (f"--motd {missing}: cannot read it: No such file or "
                                  "directory")


def test_the_line_front_end_shows_it_as_notices_after_the_welcome() -> None:
    with both() as server:
        before = server.connect()
        before.send("alice")
        server.flush()
        assert before.lines()[-1].startswith("*** welcome, alice!")  # v1: nothing after it
        server.services.motd = ["be nice", "", "no spam"]
        bob = server.connect()
        bob.send("bob")
        server.flush()
        assert bob.lines()[-4:] == [
            "*** welcome, bob! 2 people are here; /who lists them, /help lists commands",
            "*** be nice", "*** ", "*** no spam"]


def test_the_page_gets_one_motd_message_after_the_members() -> None:
    clock = Clock()
    site = make_site(clock)
    plain = FakeBrowser(site, 40001)
    assert [m["type"] for m in plain.join("alice", clock)] == ["welcome", "members"]
    site.chat.services.motd = ["be nice"]
    browser = FakeBrowser(site, 40002)
    replies = browser.join("bob", clock)
    assert [m["type"] for m in replies] == ["welcome", "members", "motd"]
    assert replies[-1]["lines"] == ["be nice"]


def test_irc_shows_375_372_376_its_own_lines_or_422_for_an_empty_file() -> None:
    with both() as server:
        alice = server.irc("alice")
        alice.send("MOTD")
        default = alice.lines()
        assert [line.split(" ")[1] for line in default] == ["375", "372", "372", "376"]
        server.services.motd = ["be nice"]
        alice.send("MOTD")
        assert [line.split(" ", 3)[1:] for line in alice.lines()] == [
            ["375", "alice", ":- irc.test Message of the day -"],
            ["372", "alice", ":- be nice"],
            ["376", "alice", ":End of /MOTD command."]]
        server.services.motd = []
        alice.send("MOTD")
        assert [line.split(" ", 3)[1:] for line in alice.lines()] == [
            ["422", "alice", ":MOTD File is missing"]]


def test_a_reload_reads_the_file_again_and_refuses_one_it_cannot_read(
    tmp_path: Path
) -> None:
    text = tmp_path / "motd.txt"
    text.write_text("first\n")
    base = f'history = "none"\nport = 9000\nmotd = "{text}"\n'
    running = Running(tmp_path, base)
    running.services.motd = running.options["motd-lines"]
    assert running.services.motd == ["first"]
    text.write_text("second\n")
    outcome = running.reload(base)
    assert outcome.applied and outcome.changes == ["MOTD changed"]
    assert running.services.motd == ["second"]
    assert running.reload(base).changes == []
    text.unlink()
    outcome = running.reload(base)
    assert outcome.refusals == [f"--motd {text}: cannot read it: No such file or directory"]
    assert running.services.motd == ["second"]
    outcome = running.reload('history = "none"\nport = 9000\n')
    assert outcome.changes == [f"motd {text} -> none", "MOTD changed"]
    assert running.services.motd is None
