"""A reload moves the metrics endpoint as it does every listener: the new one listens, the
old one stops; turned off, it stops; one that was off at start stays off (a restart)."""

from __future__ import annotations

from pathlib import Path

from twisted.application.service import MultiService
from twisted.internet.interfaces import IProtocolFactory
from twisted.internet.protocol import Factory

from chatroom.listeners import Listeners, listener_specs
from chatroom.options import Options
from chatroom.reload import Outcome, Reloader
from tests.unit.helpers import Server
from tests.unit.test_reload import TakenPorts, now, result

BASE = 'history = "none"\nport = 9000\n'


class WithMetrics:
    def __init__(self, tmp_path: Path, text: str, metrics: bool = True) -> None:
        self.path = tmp_path / "chatroom.toml"
        self.path.write_text(text)
        options = Options()
        options.parseOptions(["--config", str(self.path)])
        server = Server(options["limits"])
        self.reactor = TakenPorts()
        top = MultiService()
        factories: dict[str, IProtocolFactory] = {"line": server.factory}
        if metrics:
            factories["metrics"] = Factory()
        self.listeners = Listeners(top, self.reactor, factories, server.services.admission)
        for spec in listener_specs(options):
            self.listeners.add(spec).setServiceParent(top)
        top.startService()
        self.reloader = Reloader(options, server.services, self.listeners, now)

    def reload(self, text: str) -> Outcome:
        self.path.write_text(text)
        return result(self.reloader.reload("test"))

    def metrics_ports(self) -> list[str]:
        return [endpoint for (kind, endpoint) in self.listeners.open if kind == "metrics"]


def test_a_reload_moves_the_metrics_endpoint_and_can_turn_it_off(tmp_path: Path) -> None:
    running = WithMetrics(tmp_path, BASE + 'metrics = "tcp:9100"\n')
    assert running.metrics_ports() == ["tcp:9100"]
    outcome = running.reload(BASE + 'metrics = "tcp:9101"\n')
    assert outcome.changes == ["listening on metrics tcp:9101",
                               "no longer listening on metrics tcp:9100"]
    assert running.metrics_ports() == ["tcp:9101"]
    assert [spec for spec in running.listeners.open] == [
        ("line", "tcp:9000:interface=127.0.0.1:backlog=4096"), ("metrics", "tcp:9101")]
    outcome = running.reload(BASE)
    assert outcome.changes == ["no longer listening on metrics tcp:9101"]
    assert running.metrics_ports() == []


def test_a_metrics_port_that_cannot_be_opened_refuses_the_reload(tmp_path: Path) -> None:
    running = WithMetrics(tmp_path, BASE + 'metrics = "tcp:9100"\n')
    outcome = running.reload(BASE + 'metrics = "tcp:9999"\nmax-line = 1024\n')
    assert outcome.refusals == [
        "cannot listen on metrics tcp:9999: Couldn't listen on any:9999: "
        "[Errno 98] Address already in use."]
    assert running.metrics_ports() == ["tcp:9100"]
    assert running.reloader.services.limits.max_line == 2048


def test_metrics_off_at_start_cannot_be_turned_on(tmp_path: Path) -> None:
    running = WithMetrics(tmp_path, BASE, metrics=False)
    outcome = running.reload(BASE + 'metrics = "tcp:9100"\n')
    assert outcome.refusals == [
        "metrics: the metrics endpoint was off at start; turning it on needs a restart"]


def test_the_metrics_port_is_not_paused_with_the_chat_ports(tmp_path: Path) -> None:
    running = WithMetrics(tmp_path, BASE + 'metrics = "tcp:9100"\n')
    services = {spec[0]: service for spec, (service, _) in running.listeners.open.items()}
    assert services["metrics"].admission is None
    assert services["line"].admission is not None
