"""Joins and leaves in a replay, made short so that it favours what was said (issue 12).

A quiet room's history is mostly people coming and going; a replay of twenty lines of
``*** X joined`` says little. ``--history-joins`` picks how the replay on joining a room and
``/history`` show them:

- ``fold`` (the server's default): each run of joins and leaves with nothing said between
  them becomes one notice, ``*** alice, bob and 3 others joined; carol left``. A run of one
  stays the line it was.
- ``show``: every join and leave as it was shown live.
- ``hide``: none of them.

``/search`` never finds joins or leaves, so it is not concerned.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from enum import StrEnum
from itertools import islice

from chatroom.history.store import Kind, Record

PRESENCE = frozenset({Kind.JOINED, Kind.LEFT})
"""The kinds a run is made of; anything else (a line, an action, a rename, a topic) ends it."""

# The loops below run over a whole run for every arrival of a join storm (issue 17): on
# Python 3.11 ``Kind.JOINED`` is a slow attribute lookup and an enum's hash is a Python
# call, so they compare with module constants, by identity.
_JOINED, _LEFT, _NOTICE = Kind.JOINED, Kind.LEFT, Kind.NOTICE


class Joins(StrEnum):
    """How a replay shows joins and leaves (``--history-joins``)."""

    FOLD = "fold"
    SHOW = "show"
    HIDE = "hide"


def parse_joins(value: str) -> Joins:
    """A ``--history-joins`` value; raises ``ValueError`` with a sentence."""
    try:
        return Joins(value.strip().lower())
    except ValueError:
        raise ValueError(f"{value!r}: use fold, show or hide") from None


parse_joins.coerceDoc = "fold, show or hide."  # type: ignore[attr-defined]


def newest_lines(newest_first: Iterable[Record], n: int, joins: Joins) -> list[Record]:
    """The records of the newest ``n`` replay lines, oldest first, shown as ``joins`` says.

    ``newest_first`` gives records from the newest back. Under ``fold`` a run of joins and
    leaves is one line however long, and it is taken whole (back to the line before it),
    so its notice counts everyone in it."""
    if n <= 0:
        return []
    picked: list[Record] = []
    lines = 0
    in_run = False
    hide, folding = joins is Joins.HIDE, joins is Joins.FOLD
    for record in newest_first:
        kind = record.kind
        presence = kind is _JOINED or kind is _LEFT
        if presence and hide:
            continue
        if folding and presence and in_run:
            picked.append(record)  # the same line as the record after it
            continue
        if lines == n:
            break
        picked.append(record)
        lines += 1
        in_run = presence
    picked.reverse()
    return fold(picked) if folding else picked


def fold(records: Sequence[Record]) -> list[Record]:
    """``records`` (oldest first) with each run of two or more joins and leaves made one
    notice (``Kind.NOTICE``, at the time of the run's last event, standing for it:
    ``same_as`` is that event's line id, so a page that showed it live knows the notice)."""
    folded: list[Record] = []
    run: list[Record] = []
    for record in records:
        kind = record.kind
        if kind is _JOINED or kind is _LEFT:
            run.append(record)
            continue
        if run:
            folded.append(_folded(run))
            run = []
        folded.append(record)
    if run:
        folded.append(_folded(run))
    return folded


def _folded(run: list[Record]) -> Record:
    """The line that stands for ``run``: its one record, or the notice of them all."""
    if len(run) == 1:
        return run[0]
    last = run[-1]
    return Record(0, last.time, last.room, _NOTICE, "", summary(run), same_as=last.line_id)


def summary(run: Sequence[Record]) -> str:
    """What a run of joins and leaves came to, for each person in it, from the first of
    their events in the run to the last: ``joined``, ``left``, ``came and went`` (joined,
    then left) or ``left and came back``; groups in that order, names in order of first
    appearance."""
    # A join storm folds a whole buffer per arrival, all of it joins: then everyone
    # "joined", and a dict made in C (keys in order of first appearance, each with its
    # last record) is all there is to know.
    kinds = {record.kind for record in run}
    if len(kinds) == 1:
        newest = {record.nick.casefold(): record for record in run}
        shown = [record.nick for record in islice(newest.values(), 3)]
        return f"{_names(shown, len(newest))} {'joined' if _JOINED in kinds else 'left'}"
    first: dict[str, Kind] = {}
    last: dict[str, Record] = {}
    for record in run:
        key = record.nick.casefold()
        if key not in last:
            first[key] = record.kind
        last[key] = record
    groups: dict[str, list[str]] = {
        "joined": [], "left": [], "came and went": [], "left and came back": []}
    for key, began in first.items():
        ended = last[key]
        if began is ended.kind:
            what = "joined" if began is _JOINED else "left"
        else:
            what = "came and went" if began is _JOINED else "left and came back"
        groups[what].append(ended.nick)
    return "; ".join(f"{names(nicks)} {what}" for what, nicks in groups.items() if nicks)


def names(nicks: Sequence[str]) -> str:
    """``alice``, ``alice and bob``, ``alice, bob and carol``, ``alice, bob and 3 others``."""
    return _names(nicks, len(nicks))


def _names(first: Sequence[str], count: int) -> str:
    """``names`` of ``count`` nicknames, of which ``first`` holds the first three at least."""
    if count <= 3:
        return first[0] if count == 1 else f"{', '.join(first[:count - 1])} and {first[count - 1]}"
    return f"{first[0]}, {first[1]} and {count - 2} others"
