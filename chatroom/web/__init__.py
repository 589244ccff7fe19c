"""The browser front end: a page and a WebSocket on twisted.web, over the same room.

``build_web_site(room, limits, clock, allowed_origins)`` gives a ``Site`` to listen on with
any stream endpoint; its ``shutdown()`` says goodbye to every browser. The JSON messages are
in ``messages``, the per-connection adapter in ``protocol``, the page in ``static/``.
"""

from chatroom.web.site import WebSite, build_web_site

__all__ = ["WebSite", "build_web_site"]
