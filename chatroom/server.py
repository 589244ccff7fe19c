"""``chatroom-server``: the same server as ``twistd -n chatroom``, without twistd's options.

A convenience for people who do not know twistd; it takes exactly the plugin's options,
logs to standard output and stops cleanly on SIGTERM or Ctrl-C.
"""

from __future__ import annotations

import sys

from twisted.application.app import startApplication
from twisted.application.service import Application, IService
from twisted.logger import globalLogBeginner
from twisted.python import usage

from chatroom.cli import CannotStart, usage_exit
from chatroom.logconfig import LogOutput
from chatroom.options import Options
from chatroom.tap import build_service

PROGRAM = "chatroom-server"


def main(argv: list[str] | None = None) -> None:
    options = Options()
    try:
        options.parseOptions(sys.argv[1:] if argv is None else argv)
    except usage.UsageError as e:
        usage_exit(e, PROGRAM)
    from twisted.internet import reactor

    # stderr stays stderr: a start-up error is printed there once, not also into the log.
    output = LogOutput(sys.stdout, options["log-format"], options["log-level"])
    globalLogBeginner.beginLoggingTo([output.observer], redirectStandardIO=False)
    application = Application("chatroom")
    build_service(options, reactor, output).setServiceParent(application)
    try:
        IService(application).privilegedStartService()
        startApplication(application, False)  # also stops it before the reactor shuts down
    except CannotStart:
        raise  # already logged
    except Exception as e:
        raise SystemExit(f"{PROGRAM}: cannot start: {e}") from None
    reactor.run()


if __name__ == "__main__":
    main()
