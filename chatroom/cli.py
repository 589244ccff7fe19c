"""What the command line shows a newcomer: one-line usage errors, chatroom's version, a tidy
``--help``, and start-up errors that are printed once.

``CommandOptions`` is the base of ``chatroom.options.Options``: whatever options are added there
get the same treatment without code of their own.
"""

from __future__ import annotations

import sys
from importlib.metadata import PackageNotFoundError, version
from typing import Any, NoReturn

from twisted.copyright import version as twisted_version
from twisted.python import usage

PROGRAM = "chatroom"
USAGE_ERROR = 2  # the usual exit status of a command-line mistake (argparse, getopt tools)


def chatroom_version() -> str:
    """The installed distribution's version: setup.cfg is its one source."""
    try:
        return version("chatroom")
    except PackageNotFoundError:  # a source tree that was never installed
        return "unknown (not installed)"


def usage_exit(error: usage.UsageError, program: str = PROGRAM) -> NoReturn:
    """One line on stderr and the usage-error status, instead of the whole ``--help``."""
    sys.stderr.write(f"{program}: {error}\n")
    raise SystemExit(USAGE_ERROR)


class CannotStart(SystemExit, Exception):
    """The server cannot start (a port taken, ...); the reason has already been logged.

    Exits with status 1 and prints nothing more, so the reason appears once. It is also an
    ``Exception`` because a daemonising ``twistd`` (no ``-n``) reports only those to the
    waiting parent: a bare ``SystemExit`` left the parent waiting for ever.
    """

    def __init__(self, reason: str) -> None:
        super().__init__(1)
        self.reason = reason

    def __str__(self) -> str:
        return self.reason


class _NamedCoerce(usage.CoerceParameter):
    """Names the option and the value in a refusal: ``--max-line 10: must be from 512 to
    65536``, where Twisted says ``Parameter type enforcement failed: ...``."""

    def dispatch(self, parameterName: str, value: str | None) -> None:
        if value is None:
            raise usage.UsageError(f"--{parameterName} needs a value")
        try:
            self.options.opts[parameterName] = self.coerce(value)
        except ValueError as e:
            raise usage.UsageError(f"--{parameterName} {value}: {e}") from None
        given: set[str] | None = getattr(self.options, "given", None)
        if given is not None:
            given.add(parameterName)


def _noting(given: set[str], handler: Any) -> Any:
    """``handler`` (an ``opt_`` method or flag), noting that its option was given."""

    def dispatch(name: str, value: str | None) -> None:
        handler(name, value)
        given.add(name)

    return dispatch


class CommandOptions(usage.Options):
    """``usage.Options`` as a newcomer should meet them (see the module's docstring)."""

    def __init__(self) -> None:
        super().__init__()
        self.given: set[str] = set()
        """The options given so far (by their long names): a config file sets only the
        others, so the command line overrides it."""
        self.argv: list[str] = []
        """The arguments parsed: a reload parses them again, with the file as it is then."""
        dispatch: dict[str, Any] = self._dispatch
        for name, handler in dispatch.items():
            if isinstance(handler, usage.CoerceParameter):
                dispatch[name] = _NamedCoerce(self, handler.coerce)
                if handler.doc:
                    # --help joins the help and the coercer's doc with ". ": no "..".
                    self.docs[name] = self.docs[name].rstrip().rstrip(".")
            else:
                dispatch[name] = _noting(self.given, handler)

    def parseOptions(self, options: list[str] | None = None) -> None:
        self.argv = list(sys.argv[1:] if options is None else options)
        try:
            super().parseOptions(options)
        except usage.UsageError as e:
            if self.parent is None:
                raise  # chatroom-server and the tests report it their own way
            # A twistd sub-command: twistd would print its whole usage, then the error.
            usage_exit(e)

    def opt_version(self) -> NoReturn:
        """Display chatroom's version and exit."""
        print(f"{PROGRAM} {chatroom_version()} (Twisted {twisted_version})")
        raise SystemExit(0)
