"""Implementations of ``IHub``: how a room's events reach its members."""
