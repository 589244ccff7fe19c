"""``--config FILE``: every option in a TOML file, the command line winning, one line for a
mistake; and ``chatroom.example.toml`` lists every option with its default."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any

import pytest
from twisted.python import usage

from chatroom.config import settable
from chatroom.options import Options

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "chatroom.example.toml"
DERIVED = ("endpoints", "web-endpoint", "history-retention", "limits")
READ_WITH_THE_OPTIONS = frozenset({"motd"})
"""Options whose file is read as the options are parsed."""


def parse(*argv: str) -> Options:
    options = Options()
    options.parseOptions(list(argv))
    return options


def with_file(tmp_path: Path, text: str, *argv: str) -> Options:
    path = tmp_path / "chatroom.toml"
    path.write_text(text)
    return parse("--config", str(path), *argv)


def refusal(tmp_path: Path, text: str, *argv: str) -> str:
    with pytest.raises(usage.UsageError) as refused:
        with_file(tmp_path, text, *argv)
    return str(refused.value)


def test_every_option_can_be_set_in_the_file(tmp_path: Path) -> None:
    options = with_file(tmp_path, """
        port = 9000
        interface = "::"
        max-line = 4096
        rate = 2.5
        listen = ["tcp6:8080", "unix:/tmp/chat.sock"]
        web = 8081
        history-keep = "1000,7d"
        log-level = "warn"
    """)
    assert options["limits"].max_line == 4096
    assert options["limits"].rate == 2.5
    assert options["endpoints"] == [r"tcp:9000:interface=\:\::backlog=4096",
                                    "tcp6:8080", "unix:/tmp/chat.sock"]
    assert options["web-endpoint"] == r"tcp:8081:interface=\:\::backlog=4096"
    assert options["history-retention"].max_age == 7 * 86400
    assert options["log-level"] == "warn"


def test_the_command_line_wins_over_the_file(tmp_path: Path) -> None:
    text = 'max-line = 4096\nlisten = ["tcp6:8080"]\nrate = 2\n'
    options = with_file(tmp_path, text, "--max-line", "1024", "--listen", "tcp:9")
    assert options["limits"].max_line == 1024
    assert options["endpoints"] == ["tcp:9"]  # the file's list is replaced, not added to
    assert options["limits"].rate == 2.0  # what the command line left out comes from the file
    # wherever --config stands among the flags
    path = tmp_path / "chatroom.toml"
    assert parse("--max-line", "1024", "--config", str(path))["limits"].max_line == 1024


def test_a_file_path_is_kept_absolute(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "c.toml").write_text("")
    monkeypatch.chdir(tmp_path)
    assert parse("--config", "c.toml")["config"] == str(tmp_path / "c.toml")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("max-line = 10", "max-line = 10: must be from 512 to 65536"),
        ("max-lines = 4096", "unknown option 'max-lines' (did you mean max-line?)"),
        ('port = "x"', 'port = "x": not a number'),
        ("port = 70000", "port = 70000: must be from 0 to 65535"),
        ("rate = [1, 2]", "rate = [1, 2]: takes one value, not a list"),
        ("history-keep = true", "history-keep = true: must be a string or a number"),
        ('history-keep = "lots"', 'history-keep = "lots": \'lots\' is not a retention'),
        ('log-format = "xml"', 'log-format = "xml": must be text or json'),
        ("[web]\nport = 1", "web = {'port': 1}: must be a string or a number"),
        ('config = "other.toml"', "config cannot be set in a config file"),
    ],
)
def test_a_mistake_is_one_line_naming_the_file_and_the_key(
    tmp_path: Path, text: str, message: str
) -> None:
    said = refusal(tmp_path, text)
    assert said.startswith(f"{tmp_path / 'chatroom.toml'}: {message}"), said
    assert "\n" not in said


def test_a_file_that_cannot_be_read_or_parsed_is_one_line(tmp_path: Path) -> None:
    missing = tmp_path / "missing.toml"
    with pytest.raises(usage.UsageError, match=r"^--config .*missing.toml: No such file"):
        parse("--config", str(missing))
    said = refusal(tmp_path, "max-line = ")
    assert said.startswith("--config ") and "not valid TOML" in said and "\n" not in said


def test_a_bad_value_in_the_file_is_refused_even_when_the_flag_is_given(tmp_path: Path) -> None:
    # The flag wins, so the file's value is never used: it is not checked either, as
    # twistd's own options would not be. What is checked is that the key exists.
    assert with_file(tmp_path, "max-line = 10", "--max-line", "1024")["max-line"] == 1024
    assert "unknown option" in refusal(tmp_path, "nope = 1", "--max-line", "1024")


# The example file --------------------------------------------------------------------------

def example_entries() -> dict[str, str]:
    """``{"max-line": "2048", ...}``: every ``# key = value`` line of the example."""
    found: dict[str, str] = {}
    for key, value in re.findall(r"^# ([a-z-]+) = (.+)$", EXAMPLE.read_text(), re.MULTILINE):
        assert key not in found, f"{key} is twice in {EXAMPLE.name}"
        found[key] = value
    return found


def test_the_example_lists_every_option() -> None:
    assert set(example_entries()) == set(settable(Options()))


def test_the_example_values_are_the_defaults(tmp_path: Path) -> None:
    defaults = parse()
    entries = example_entries()
    unset = {key for key in entries if defaults[key] is None}  # off unless given
    text = "\n".join(f"{key} = {value}" for key, value in entries.items() if key not in unset)
    from_file = with_file(tmp_path, text, "--port", "8080")
    for key in [*settable(defaults), *DERIVED]:
        if key not in unset:
            assert from_file[key] == defaults[key], f"{EXAMPLE.name} has {key} = {entries[key]}"
    # An option that is off by default shows an example value, and a valid one.
    for key in unset:
        value: Any = tomllib.loads(f"v = {entries[key]}")["v"]
        assert value is not None
        if key in READ_WITH_THE_OPTIONS:  # an example path: the refusal names the option
            with pytest.raises(usage.UsageError, match=f"--{key} {value}: cannot read it"):
                with_file(tmp_path, f"{key} = {entries[key]}")
            continue
        with_file(tmp_path, f"{key} = {entries[key]}")


def test_every_live_option_is_marked_live_in_the_example() -> None:
    from chatroom.reload import LIVE

    text = EXAMPLE.read_text()
    for key in settable(Options()):
        block = re.search(rf"((?:^#(?! {key} =).*\n)*)^# {key} = ", text, re.MULTILINE)
        assert block is not None
        marked = "[live" in block.group(1)
        assert marked == (key in LIVE), f"{key}: [live] in the example, or not, as reload says"


def test_a_file_that_is_not_utf8_is_one_line(tmp_path: Path) -> None:
    # tomllib decodes the file itself: its UnicodeDecodeError is no TOMLDecodeError, and
    # escaped to /rehash, which then cut the operator's connection as a server error.
    path = tmp_path / "chatroom.toml"
    path.write_bytes(b"max-line = 1024\n# caf\xe9\n")
    with pytest.raises(usage.UsageError) as raised:
        parse("--config", str(path))
    said = str(raised.value)
    assert said.startswith(f"--config {path}: not UTF-8 text"), said
    assert "\n" not in said
