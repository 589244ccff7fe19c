"""The twistd dropin: ``twistd -n chatroom --port 8080``.

Named ``chatroom_plugin`` rather than ``chatroom`` so it cannot shadow the package.
"""

from twisted.application.service import ServiceMaker

chatroom = ServiceMaker(  # type: ignore[no-untyped-call]
    "chatroom", "chatroom.tap", "A multi-user chat room for telnet, nc and chatroom-client.",
    "chatroom",
)
