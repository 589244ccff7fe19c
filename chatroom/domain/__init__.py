"""The chat domain: rooms, members, nickname rules and events. No sockets, no reactor."""
