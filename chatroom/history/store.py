"""What a history store promises, what it keeps, and the helpers every store shares.

The room's public events (chat, actions, joins, leaves, renames, and server notices if the
recorder passes them) are kept so a member who joins can read what was said before, and so
anyone can search it. Private messages (``Whispered``) are never kept: every store drops
them in ``record``, whatever calls it.

Stores are swappable: ``MemoryHistory`` for tests, ``SqliteHistory`` for the server. Both
pass the same contract tests (``tests/unit/test_history_contract.py``).
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
from enum import StrEnum

from twisted.internet.defer import Deferred
from zope.interface import Attribute, Interface

from chatroom.domain.events import Acted, Event, Joined, Left, Notice, Renamed, Said, TopicSet

DEFAULT_PATH = "var/chatroom.sqlite3"
"""Where the server keeps history unless told otherwise: relative to its working directory,
next to its pid and log files under twistd (``make run`` creates ``var/``)."""

MAX_LAST = 10_000
"""The most records one ``last`` call returns, whatever it asks for."""

MAX_SEARCH = 500
"""The most records one ``search`` call returns, whatever it asks for."""

MAX_TERMS = 16
"""The default of the most words one search may have (``--history-search-words``), each
part of a joined word such as ``a-b-c`` or ``a.b.c`` counting as one: a search term is
matched as a phrase of its parts, and a long phrase of common words is what makes a query
slow. More is an error, not a slow query."""


class HistoryError(Exception):
    """The history store cannot be used; ``str(error)`` is one sentence for the operator.

    Raised when opening a store (a corrupt file, an unwritable path, a database from a newer
    version, an SQLite without full-text search), so the server refuses to start with a clear
    reason instead of failing later. Also the failure of ``flush`` when a write failed.
    """


class BadQuery(ValueError):
    """A search the store will not run; ``str(error)`` is one sentence for the user."""


class Kind(StrEnum):
    """What a record is; the values are stored, so never rename them."""

    SAID = "said"
    ACTED = "acted"
    JOINED = "joined"
    LEFT = "left"
    RENAMED = "renamed"
    NOTICE = "notice"
    TOPIC = "topic"


SEARCHABLE = (Kind.SAID, Kind.ACTED, Kind.NOTICE, Kind.TOPIC)
"""The kinds ``search`` looks in: the ones whose ``text`` someone wrote."""


@dataclass(frozen=True, slots=True)
class Record:
    """One stored public event.

    ``text`` is what was said, done or announced; for ``LEFT`` it is the reason the member
    left (for operators; the wire shows only ``*** NICK left``), and it is empty for
    ``JOINED`` and ``RENAMED``. ``new_nick`` is set for ``RENAMED`` only. ``id`` grows with
    every record a store keeps, so it orders records the way they happened; it is the
    store's own and not known while the event is live, so front ends that need to know a
    line again use ``line_id`` instead. ``same_as`` is set on a record that stands for
    others (a replay's notice for a run of joins and leaves, ``fold.py``): the line id of
    the newest of them, which is then its own.
    """

    id: int
    time: float
    room: str
    kind: Kind
    nick: str
    text: str = ""
    new_nick: str | None = None
    same_as: str = ""

    @property
    def line_id(self) -> str:
        """``line_id`` of this record's row: the id its event had when it was live."""
        if self.same_as:
            return self.same_as
        return line_id((self.time, self.room, self.kind, self.nick, self.text, self.new_nick))


Row = tuple[float, str, str, str, str, str | None]

Position = tuple[float, int]
"""Where a record stands in its room's history: ``(time, id)``."""

MAX_ID = 2**62
"""An id greater than any store gives: ``(T, MAX_ID)`` is after everything at time ``T``."""
"""A record before it is stored: ``(time, room, kind, nick, text, new_nick)``."""


def row_for(event: Event) -> Row | None:
    """The row to store for ``event``, or ``None`` if it must not be stored (private ones).

    Cheap on purpose: it runs on the reactor thread for every event.
    """
    kind = type(event)
    if kind is Said:
        assert isinstance(event, Said)
        return (event.time, event.room, "said", event.nick, event.text, None)
    if kind is Acted:
        assert isinstance(event, Acted)
        return (event.time, event.room, "acted", event.nick, event.text, None)
    if kind is Joined:
        return (event.time, event.room, "joined", event.nick, "", None)
    if kind is Left:
        assert isinstance(event, Left)
        return (event.time, event.room, "left", event.nick, event.reason, None)
    if kind is Renamed:
        assert isinstance(event, Renamed)
        return (event.time, event.room, "renamed", event.nick, "", event.new_nick)
    if kind is Notice:
        assert isinstance(event, Notice)
        return (event.time, event.room, "notice", event.nick, event.text, None)
    if kind is TopicSet:
        assert isinstance(event, TopicSet)
        return (event.time, event.room, "topic", event.nick, event.text, None)
    return None  # Whispered, and anything added later that nobody decided to keep


def rows_for(event: Event) -> list[Row]:
    """The rows to store for ``event``: a rename is a person's, so it is kept once in each
    room it was announced in; anything else as ``row_for`` makes it."""
    if type(event) is Renamed and not event.room:
        assert isinstance(event, Renamed)
        return [
            (event.time, room, "renamed", event.nick, "", event.new_nick) for room in event.rooms
        ]
    row = row_for(event)
    return [] if row is None else [row]


def record_from_row(id: int, row: Row) -> Record:
    time, room, kind, nick, text, new_nick = row
    return Record(id, time, room, Kind(kind), nick, text, new_nick)


def line_id(row: Row) -> str:
    """A short id for the line ``row`` holds, the same wherever that line is seen again:
    live, in a replay from memory or from the store, on every node, after a restart.

    A page uses it to know a line it already shows. It is made from what the line is,
    because nothing else is the same in all those places: the store numbers its records
    only when it writes them (after the line went out live), and the nodes of a Redis
    room may each keep their own. The time is the event's to the bit (a double survives
    SQLite and the Redis wire exactly), so two lines share an id only if the same nickname
    said the same text in the same room at the same instant. A leave's reason is left
    out: it is for operators, and an id must not tell it; so is a rename's room (one
    rename, told in each room). The text comes last and names never hold a NUL, so no text
    can shift the fields before it.
    """
    time, room, kind, nick, text, new_nick = row
    if kind == "left":
        text = ""
    elif kind == "renamed":
        room = ""  # a person's, told in each room they share: one line, one id
    key = f"{float(time)!r}\0{room}\0{kind}\0{nick}\0{new_nick or ''}\0{text}"
    return hashlib.blake2b(key.encode("utf-8", "replace"), digest_size=8).hexdigest()


class IHistory(Interface):
    """The room's memory of public events, for replay to newcomers and for search.

    Every implementation keeps these promises:

    - ``record`` never blocks and never raises: it only queues the event. Private events
      (``Whispered``) are silently ignored and never stored.
    - Reads (``last``, ``search``) see every event recorded before the call.
    - Every method that returns a Deferred does its work off the reactor thread (or, in
      memory, at once), so a slow disk never stalls the room.
    - ``close`` writes everything still queued, then releases the store; ``record`` after
      ``close`` is ignored. Calling ``close`` twice is safe.
    """

    dropped = Attribute(
        "How many events were not stored because too many were waiting to be written "
        "(the disk was slower than the room); each drop is also logged, at a bounded rate."
    )

    def record(event: Event) -> None:
        """Queue ``event`` to be stored, if it is public."""

    def last(n: int, room: str | None = None) -> Deferred[list[Record]]:
        """The newest ``n`` records (at most ``MAX_LAST``), oldest first.

        With ``room``, only that room's records; otherwise every room's.
        """

    def page(
        room: str,
        after: Position | None = None,
        before: Position | None = None,
        limit: int = 50,
        newest: bool = True,
    ) -> Deferred[list[Record]]:
        """``room``'s records strictly after ``after`` and strictly before ``before``
        (positions ``(time, id)``, compared as tuples), at most ``limit`` (itself at most
        ``MAX_LAST``): the newest of them if ``newest``, else the oldest; oldest first.

        What IRC's CHATHISTORY asks for: a timestamp ``T`` is the position ``(T, -1)`` to
        read before it and ``(T, MAX_ID)`` to read after it; a known record is its own
        ``(time, id)``.
        """

    def search(words: str, limit: int = 50, room: str | None = None) -> Deferred[list[Record]]:
        """Records whose text contains every word of ``words``, newest first, at most
        ``limit`` (itself at most ``MAX_SEARCH``). Only chat lines, actions and notices are
        searched (``SEARCHABLE``), not joins, leaves or renames.

        Words match whole words, ignoring case and accents; a quoted-looking word such as
        ``don't`` matches as a phrase; a word ending in ``*`` matches as a prefix. Any user
        input is safe: it is never parsed as query syntax. Fails with ``BadQuery`` if
        ``words`` holds no letters or digits, or more words than the store allows (each
        part of ``a-b-c`` counting as one; ``MAX_TERMS`` unless the store was told
        otherwise), or if it costs more than the store allows (the SQLite store's time
        budget).
        """

    def flush() -> Deferred[None]:
        """Fire when every event recorded before the call is stored.

        Fails with ``HistoryError`` if the write failed; the events stay queued for a retry.
        """

    def trim() -> Deferred[int]:
        """Apply the retention policy to every event recorded before the call; fire with how
        many records were deleted.

        Stores also trim by themselves, periodically, in the background.
        """

    def close() -> Deferred[None]:
        """Store everything queued and release the store; call it when the server stops."""


# Retention ------------------------------------------------------------------------------

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
_AGE = re.compile(r"(\d+(?:\.\d+)?)([smhdw])")


@dataclass(frozen=True)
class Retention:
    """How much history to keep: the newest ``max_count`` records, and none older than
    ``max_age`` seconds; ``None`` means no limit of that kind."""

    max_count: int | None = None
    max_age: float | None = None

    def __str__(self) -> str:
        parts = []
        if self.max_count is not None:
            parts.append(str(self.max_count))
        if self.max_age is not None:
            parts.append(f"{self.max_age:g}s")
        return ",".join(parts) or "forever"


KEEP_ALL = Retention()


def parse_retention(value: str) -> Retention:
    """Read a ``--history-keep`` value: a count (``100000``), an age (``30d``, ``12h``,
    ``90m``, ``45s``, ``2w``), both (``100000,30d``: whichever keeps less), or ``forever``.

    Raises ``ValueError`` with a sentence, as twistd option coercers do.
    """
    text = value.strip().lower().replace("_", "")
    if text in ("forever", "all", "none", ""):
        return Retention()
    count: int | None = None
    age: float | None = None
    for part in (p.strip() for p in text.split(",")):
        if part.isdigit():
            if count is not None or int(part) < 1:
                raise ValueError(f"{value!r}: give one count of records, at least 1")
            count = int(part)
            continue
        match = _AGE.fullmatch(part)
        if match is None or age is not None:
            raise ValueError(
                f"{value!r} is not a retention: use a count like 100000, an age like 30d "
                "(s, m, h, d or w), both like 100000,30d, or forever"
            )
        age = float(match.group(1)) * _UNITS[match.group(2)]
        if age <= 0:
            raise ValueError(f"{value!r}: the age must be more than 0")
    return Retention(count, age)


parse_retention.coerceDoc = (  # type: ignore[attr-defined]
    "A count (100000), an age (30d, 12h, 90m), both (100000,30d) or forever."
)


# Search ---------------------------------------------------------------------------------

_TOKEN = re.compile(r"[^\W_]+")
_PART = re.compile(r"(?:[^\W_]|[\ue000-\uf8ff\U000f0000-\U0010fffd])+")
"""What FTS5's tokenizer takes as one token: letters, digits, and private-use characters
(``unicode61`` keeps those too), for counting a search's words."""
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


@dataclass(frozen=True, slots=True)
class Term:
    """One word of a search: matched as a phrase of its tokens, the last as a prefix if
    ``prefix``."""

    text: str
    prefix: bool = False


def parse_search(words: str, max_words: int = MAX_TERMS) -> list[Term]:
    """Split what a user typed into terms; raise ``BadQuery`` if there is nothing to find,
    or more than ``max_words`` words, counting each part of ``a-b-c`` as one.

    Words with no letter or digit (``!!!``, ``--``) are skipped: they cannot match anything.
    """
    terms = []
    count = 0
    for word in _CONTROL.sub(" ", words).split():
        body = word.rstrip("*")
        if _TOKEN.search(body):
            terms.append(Term(body, prefix=body != word))
            count += len(_PART.findall(body))
            if count > max_words:  # stop counting early: the line may be long
                raise BadQuery(f"a search may have at most {max_words} words "
                               "(a-b-c counts as 3)")
    if not terms:
        raise BadQuery("a search needs at least one word with letters or digits")
    return terms


def fts5_query(terms: Iterable[Term]) -> str:
    """The FTS5 MATCH expression for ``terms``: every term a double-quoted string.

    Inside double quotes FTS5 takes everything literally except a doubled quote, so no user
    input (``AND``, ``(``, ``:``, ``^``, ``*``, ``"``) can be read as syntax or make the query
    fail; control characters were already removed (a NUL would end the string early).
    """
    parts = []
    for term in terms:
        quoted = '"' + term.text.replace('"', '""') + '"'
        parts.append(quoted + " *" if term.prefix else quoted)
    return " ".join(parts)


def tokens(text: str) -> list[str]:
    """``text`` as FTS5's ``unicode61 remove_diacritics 2`` tokenizer roughly sees it:
    runs of letters and digits, lower-cased, accents removed. ``MemoryHistory`` searches
    with it so both stores find the same records."""
    folded = unicodedata.normalize("NFKD", text.lower())
    plain = "".join(c for c in folded if not unicodedata.combining(c))
    return _TOKEN.findall(plain)


def matches(terms: Iterable[Term], text: str) -> bool:
    """Whether ``text`` contains every term, as ``fts5_query`` would match it."""
    have = tokens(text)
    for term in terms:
        want = tokens(term.text)
        if not want:
            return False
        width = len(want)
        for start in range(len(have) - width + 1):
            window = have[start:start + width]
            if window[:-1] == want[:-1] and (
                window[-1].startswith(want[-1]) if term.prefix else window[-1] == want[-1]
            ):
                break
        else:
            return False
    return True


# Replay lines ---------------------------------------------------------------------------

def describe(record: Record) -> str:
    """The record's line as members saw it live (``alice: hi``, ``* alice waves``,
    ``*** bob joined``), without a time."""
    kind = record.kind
    if kind is Kind.SAID:
        return f"{record.nick}: {record.text}"
    if kind is Kind.ACTED:
        return f"* {record.nick} {record.text}"
    if kind is Kind.JOINED:
        return f"*** {record.nick} joined"
    if kind is Kind.LEFT:
        return f"*** {record.nick} left"
    if kind is Kind.RENAMED:
        return f"*** {record.nick} is now known as {record.new_nick}"
    if kind is Kind.TOPIC:
        return f"*** {record.nick} set the topic: {record.text}"
    return f"*** {record.text}"


def _moment(record: Record, tz: tzinfo) -> datetime | None:
    try:
        return datetime.fromtimestamp(record.time, tz)
    except (OverflowError, OSError, ValueError):
        return None


def format_record(record: Record, *, date: bool = True, tz: tzinfo = UTC) -> str:
    """One replay line: ``[2026-11-24 07:30] alice: hi``, or ``[07:30] alice: hi`` without
    ``date``. Times are in ``tz`` (UTC unless the caller picks another zone)."""
    moment = _moment(record, tz)
    if moment is None:
        stamp = "????-??-?? ??:??" if date else "??:??"
    else:
        stamp = moment.strftime("%Y-%m-%d %H:%M" if date else "%H:%M")
    return f"[{stamp}] {describe(record)}"


def format_replay(records: Iterable[Record], tz: tzinfo = UTC) -> list[str]:
    """Replay lines for ``records`` (oldest first): the first line and the first of each new
    day carry the full date, the others only the time, so a screenful stays readable."""
    lines = []
    day = None
    for record in records:
        moment = _moment(record, tz)
        today = moment.date() if moment is not None else None
        lines.append(format_record(record, date=today != day or today is None, tz=tz))
        day = today
    return lines
