"""``twistd chatroom --web``: the web page and WebSocket served next to telnet, in one room."""

from __future__ import annotations

import json
import re
import signal
import socket
import urllib.request

from tests.integration.serverproc import ServerProcess

WEB = re.compile(r"chatroom listening on web .*port=(\d+)")


def test_web_front_end_shares_the_room_and_stops_on_sigterm(start_server) -> None:  # type: ignore[no-untyped-def]
    server: ServerProcess = start_server("--web", "tcp:0:interface=127.0.0.1")
    match = WEB.search(server.log())
    assert match, server.log()
    web_port = int(match.group(1))
    with urllib.request.urlopen(f"http://127.0.0.1:{web_port}/", timeout=5) as response:
        page = response.read().decode()
        assert "Content-Security-Policy" in response.headers
    assert "<script" in page and "app.js" in page

    from websocket import create_connection  # websocket-client, installed with selenium

    alice = server.join("alice")
    browser = create_connection(f"ws://127.0.0.1:{web_port}/ws", timeout=5)
    try:
        browser.send(json.dumps({"type": "nick", "nick": "webbob"}))
        alice.expect("webbob joined")
        browser.send(json.dumps({"type": "say", "text": "hello from the web"}))
        assert alice.expect("webbob") == "webbob: hello from the web"
        alice.send("hi <b>web</b>")
        while True:
            message = json.loads(browser.recv())
            if message.get("type") == "said" and message.get("nick") == "alice":
                assert message["text"] == "hi <b>web</b>"
                break
        server.terminate()
        assert server.wait() in (0, -signal.SIGTERM)
        alice.expect("shutting down")
        texts = []
        try:
            while True:
                texts.append(browser.recv())
        except Exception:
            pass
        assert any("shutting down" in text for text in texts)
    finally:
        browser.close()
    assert "Traceback" not in server.log()
    socket.setdefaulttimeout(None)
