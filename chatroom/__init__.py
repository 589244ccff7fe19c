"""chatroom: a multi-user chat room server on Twisted."""

from typing import Any


def __getattr__(name: str) -> Any:
    # ``chatroom.__version__`` comes from the installed metadata (setup.cfg is its one
    # source), read only when asked for: importing the package stays cheap.
    if name == "__version__":
        from chatroom.cli import chatroom_version

        return chatroom_version()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
