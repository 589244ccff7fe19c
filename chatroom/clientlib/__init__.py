"""The bundled terminal client, ``chatroom-client``, in layers.

``lines`` parses and styles received lines (pure, no I/O); ``session`` is the client's
state and its thin ``LineReceiver``; ``terminal`` (a prompt_toolkit line editor) and
``pipe`` (plain stdin/stdout, for scripts) are the two user interfaces. ``chatroom.client``
picks one and wires them to the reactor.
"""
