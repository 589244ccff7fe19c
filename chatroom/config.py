"""``--config FILE``: every option of the command line, set in a TOML file instead.

A key is an option's long name and its value what would follow it on the command line
(``max-line = 4096``, ``interface = "::"``, ``listen = ["tcp6:8080"]``). The file is read
once the command line has been, and sets only the options the command line left out: a
flag always wins. Each value goes through the option's own parser, so a bad one is
refused with the same sentence as on the command line, naming the file and the key; so is
a key that is no option. Nothing here knows the options: one added to ``Options`` can be
set in the file at once.
"""

from __future__ import annotations

import difflib
import os
import tomllib
from typing import Any

from twisted.python import usage

from chatroom.cli import CommandOptions
from chatroom.files import open_regular

NOT_IN_FILE = frozenset({"config", "help", "version"})
"""Options a file cannot set: which file to read, and those that only print."""


def config_path(value: str) -> str:
    """``--config``'s value, made absolute: a reload reads the same file wherever the
    server's working directory is by then."""
    return os.path.abspath(os.path.expanduser(value))



def settable(options: CommandOptions) -> dict[str, bool]:
    """Every option a file may set, by long name, and whether it takes a value."""
    names = {}
    for spelling in options.longOpt:
        name = spelling.removesuffix("=")
        if name not in NOT_IN_FILE:
            names[name] = spelling.endswith("=")
    return names


def read(path: str) -> dict[str, Any]:
    """The file's table; ``UsageError`` in one sentence if it cannot be read or parsed."""
    try:
        with open_regular(path) as file:
            return tomllib.load(file)
    except OSError as e:
        raise usage.UsageError(f"--config {path}: {e.strerror or e}") from None
    except tomllib.TOMLDecodeError as e:
        raise usage.UsageError(f"--config {path}: not valid TOML: {e}") from None
    except UnicodeDecodeError as e:  # tomllib decodes the whole file first
        raise usage.UsageError(
            f"--config {path}: not UTF-8 text (byte {e.start + 1}: {e.object[e.start]:#04x})"
        ) from None


def apply(options: CommandOptions, path: str) -> None:
    """Set every option ``path`` names that the command line did not."""
    table = read(path)
    names = settable(options)
    given = set(options.given)
    for key, value in table.items():
        if key not in names:
            raise usage.UsageError(f"{path}: {_unknown(key, names)}")
        if key in given:
            continue
        try:
            _set(options, key, value, takes_value=names[key])
        except usage.UsageError as e:
            raise usage.UsageError(f"{path}: {key} = {_show(value)}: {_reason(e, key)}") from None


def _set(options: CommandOptions, key: str, value: Any, takes_value: bool) -> None:
    dispatch: Any = options._dispatch[key]
    call = dispatch.dispatch if isinstance(dispatch, usage.CoerceParameter) else dispatch
    if not takes_value:
        if not isinstance(value, bool):
            raise usage.UsageError("must be true or false")
        if value:
            call(key, None)
        return
    repeatable: frozenset[str] = getattr(options, "repeatable", frozenset())
    if isinstance(value, list):
        if key not in repeatable:
            raise usage.UsageError("takes one value, not a list")
        for item in value:
            call(key, _text(item))
    else:
        call(key, _text(value))


def _text(value: Any) -> str:
    """A TOML value as it would be typed after the option."""
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise usage.UsageError("must be a string or a number")
    return str(value)


def _show(value: Any) -> str:
    if isinstance(value, str):
        return f'"{value}"'
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _reason(error: usage.UsageError, key: str) -> str:
    """The option's own sentence, without the ``--max-line 10: `` it starts with."""
    text = str(error)
    prefix = f"--{key} "
    if text.startswith(prefix) and ": " in text:
        return text.split(": ", 1)[1]
    return text


def _unknown(key: str, names: dict[str, bool]) -> str:
    close = difflib.get_close_matches(key, list(names), n=1)
    hint = f" (did you mean {close[0]}?)" if close else ""
    if key in NOT_IN_FILE:
        return f"{key} cannot be set in a config file"
    return f"unknown option {key!r}{hint}"
