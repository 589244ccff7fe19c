"""chatroom: a multi-user chat room server on Twisted."""

__version__ = "0.1.0"
