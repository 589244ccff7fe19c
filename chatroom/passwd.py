"""``chatroom-passwd`` (or ``python -m chatroom.passwd``): print a password's Argon2id hash,
for the server operators file (``--opers``).

At a terminal it asks for the password twice, without echo; otherwise it reads one line
from standard input (``printf '%s\\n' "$PASSWORD" | chatroom-passwd``). The password is
never an argument: arguments are visible to every user of the machine in ``ps``.

    $ chatroom-passwd
    Password:
    Again:
    $argon2id$v=19$m=65536,t=3,p=4$...

Then add a line ``NAME HASH`` to the operators file.
"""

from __future__ import annotations

import argparse
import getpass
import sys
from typing import TextIO

from argon2 import PasswordHasher

from chatroom.accounts.passwords import DEFAULT_COST

PROGRAM = "chatroom-passwd"


def read_password(stdin: TextIO, ask: bool) -> str:
    """The password: asked twice at a terminal, else the first line of ``stdin``."""
    if ask:
        first = getpass.getpass("Password: ")
        if getpass.getpass("Again: ") != first:
            raise SystemExit(f"{PROGRAM}: the two passwords differ")
        return first
    return stdin.readline().rstrip("\r\n")


def main(argv: list[str] | None = None, stdin: TextIO | None = None,
         stdout: TextIO | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog=PROGRAM, description="Print the Argon2id hash of a password, for --opers.")
    parser.add_argument("--time-cost", type=int, default=DEFAULT_COST.time_cost,
                        help="passes over the memory (default %(default)s)")
    parser.add_argument("--memory-kib", type=int, default=DEFAULT_COST.memory_kib,
                        help="memory, in KiB (default %(default)s)")
    parser.add_argument("--parallelism", type=int, default=DEFAULT_COST.parallelism,
                        help="lanes (default %(default)s)")
    options = parser.parse_args(argv)
    stdin = stdin if stdin is not None else sys.stdin
    stdout = stdout if stdout is not None else sys.stdout
    password = read_password(stdin, stdin.isatty())
    if not password.strip():
        raise SystemExit(f"{PROGRAM}: a password cannot be empty")
    try:
        hasher = PasswordHasher(time_cost=options.time_cost, memory_cost=options.memory_kib,
                                parallelism=options.parallelism)
        stdout.write(hasher.hash(password) + "\n")
    except Exception as e:  # argon2's parameter errors: a sentence, not a traceback
        raise SystemExit(f"{PROGRAM}: {e}") from None


if __name__ == "__main__":
    main()
