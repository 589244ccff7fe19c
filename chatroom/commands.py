"""The commands every front end offers, with the same meaning everywhere: the ``/help`` text."""

HELP: list[tuple[str, str]] = [
    ("/who", "list everyone in the room"),
    ("/msg NICK TEXT", "send TEXT to NICK only"),
    ("/me TEXT", "describe what you do: * NICK TEXT"),
    ("/nick NEW", "change your nickname to NEW"),
    ("/history [N]", "show the last N lines said here (default 20)"),
    ("/search WORDS", "find earlier lines holding all the WORDS, newest first"),
    ("/help", "show this list"),
    ("/quit", "leave the room"),
    ("//TEXT", "say TEXT with one leading slash (not a command)"),
]
"""``(usage, what it does)`` for each command, in the order ``/help`` lists them."""
