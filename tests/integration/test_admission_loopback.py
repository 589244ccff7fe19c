"""The accept pause on a real listening port, in this process: Twisted's TCP port stops
being read while descriptors are short, and a client waits in the kernel's queue instead of
being cut; it is served as soon as a descriptor is free again."""

from __future__ import annotations

from typing import Any, cast

import pytest_twisted
from twisted.internet import reactor as _reactor  # noqa: TID251 - tests run on the real one
from twisted.internet.endpoints import TCP4ClientEndpoint, serverFromString
from twisted.internet.protocol import Factory
from twisted.internet.task import deferLater

from chatroom.admission import Admission
from chatroom.limits import Limits
from chatroom.lines.factory import ChatFactory
from chatroom.session import Services
from tests.integration.test_web_loopback import LineClient

reactor: Any = _reactor


@pytest_twisted.ensureDeferred
async def test_a_client_waits_while_accepting_pauses_and_is_served_when_it_resumes():
    limits = Limits(max_clients=10, fd_reserve=16)
    admission = Admission(limits, reactor, open_files=40, in_use=4)  # pauses at 28 sockets
    services = Services.create(reactor, limits)
    services.admission = admission  # the server's, as tap wires it
    factory = ChatFactory(services)
    port = await serverFromString(reactor, "tcp:0:interface=127.0.0.1").listen(factory)
    admission.watch(port)
    others = [admission.enter(None) for _ in range(28)]  # other ports' sockets: all taken
    endpoint = TCP4ClientEndpoint(reactor, "127.0.0.1", port.getHost().port)
    client = cast(LineClient, await endpoint.connect(Factory.forProtocol(LineClient)))
    try:
        await deferLater(reactor, 0.3, lambda: None)  # a bounded look: nothing may come
        assert client.lines == []  # connected (in the queue), not accepted, not cut
        others.pop().leave()
        assert port.numberAccepts == 1  # one descriptor free: one accept per read
        assert await client.wait_for("^!") == "! server full"  # accepted, and told why
        await client.lost.addTimeout(10, reactor)
    finally:
        admission.unwatch(port)
        for seat in others:
            seat.leave()
        await port.stopListening()
        await factory.shutdown()
