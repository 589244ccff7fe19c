"""Opening the operator's files (``--config``, ``--motd``, ``--opers``) without waiting.

A reload reads them in a thread, one reload after the other: opening a FIFO there would
wait for a writer, and hold every later reload (and the ``/rehash`` of the operator who
asked) for as long. So the file is opened without blocking and refused unless it is a
regular file.
"""

from __future__ import annotations

import os
import stat
from typing import BinaryIO

NOT_REGULAR = "not a regular file"


def open_regular(path: str) -> BinaryIO:
    """``path`` opened for reading in binary; ``OSError`` (its ``strerror`` a sentence) if
    it cannot be, or is a FIFO, a device, a directory or a socket."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise OSError(0, NOT_REGULAR)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise
