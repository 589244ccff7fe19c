"""Many raw clients at once, on one selector: for the scale and abuse tests."""

from __future__ import annotations

import resource
import selectors
import socket
import time


def raise_open_files(want: int) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(want, hard), hard))


class Crowd:
    """``count`` members named ``prefix0..`` that read everything they are sent."""

    def __init__(self, port: int, count: int, prefix: str = "u") -> None:
        raise_open_files(count * 2 + 256)
        self.selector = selectors.DefaultSelector()
        self.socks: list[socket.socket] = []
        self.buffers: list[bytearray] = []
        self.closed: set[int] = set()
        for i in range(count):
            sock = socket.create_connection(("127.0.0.1", port), timeout=10)
            sock.setblocking(False)
            self.selector.register(sock, selectors.EVENT_READ, i)
            self.socks.append(sock)
            self.buffers.append(bytearray())
            sock.sendall(f"{prefix}{i}\r\n".encode())

    def pump(self, until, timeout: float) -> bool:  # type: ignore[no-untyped-def]
        """Read from everyone until ``until()`` is true or ``timeout`` passes."""
        deadline = time.monotonic() + timeout
        while not until():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            for key, _ in self.selector.select(min(remaining, 0.5)):
                index = key.data
                try:
                    data = self.socks[index].recv(262144)
                except (BlockingIOError, InterruptedError):
                    continue
                except ConnectionResetError:
                    data = b""
                if not data:
                    self.selector.unregister(self.socks[index])
                    self.closed.add(index)
                    continue
                self.buffers[index] += data
        return True

    def all_have(self, needle: bytes, count: int = 1) -> bool:
        return all(buffer.count(needle) >= count for buffer in self.buffers)

    def close(self) -> None:
        for sock in self.socks:
            sock.close()
        self.selector.close()
