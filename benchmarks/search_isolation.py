"""Does a costly search hold history up? (issue 12, point 1)

    .venv/bin/python benchmarks/search_isolation.py [--lines 1000000] [--tokens 300]

Builds (once, cached in ``benchmarks/out/``) a history of ``--lines`` realistic events with
the generator of ``tests/integration/test_history_store.py``, then starts ``twistd -n
chatroom`` on a copy of it three times over loopback, with ``--searchers`` members each
sending ``/search the-the-...`` (``--tokens`` words of one search term, within the line
limit) and measures:

1. writes: the longest time a line said during the searches took to reach the file (read
   by a connection of this script's own every 20 ms), and how long another member's
   ordinary search took to be answered;
2. SIGKILL: the server is killed 3 s into the searches: how many lines a listener had
   received were not in the file, and the age of the oldest of them (the contract: at most
   the flush window, ``--history-flush-ms``, 200 ms by default);
3. SIGTERM: how long the server takes to exit when stopped 1 s into the searches
   (the contract: 5 s).

``--source DIR`` runs the server from another checkout (e.g. a worktree of ``main``) for a
before/after comparison; the same venv is used. Everything is bounded: every wait has a
deadline, every server is stopped by PID.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import sqlite3
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.integration.serverproc import LineClient, ServerProcess  # noqa: E402

OUT = ROOT / "benchmarks" / "out"
FLUSH_MS = 200
TALK_EVERY = 0.05
"""Seconds between two lines of the talker."""


# The history file -------------------------------------------------------------------------

ROOM = "#lobby"
"""The server's default room: the history is all of it, so every search reads it all."""


def build(path: Path, lines: int) -> None:
    """A history of ``lines`` realistic events of ``ROOM``, fully indexed, as a
    long-running server leaves it."""
    from chatroom.history.sqlite import _index_some, _insert, connect
    from chatroom.history.store import row_for
    from tests.integration.test_history_store import realistic_events

    partial = path.with_suffix(".partial")
    partial.unlink(missing_ok=True)
    conn, _, _ = connect(str(partial))
    try:
        rows = [(row[0], ROOM, *row[2:]) for row in map(row_for, realistic_events(lines))
                if row is not None]
        for start in range(0, len(rows), 50_000):
            _insert(conn, rows[start:start + 50_000])
        while _index_some(conn, 100_000):
            pass
    finally:
        conn.close()
    partial.rename(path)


def history_file(lines: int) -> Path:
    path = OUT / f"search-isolation-{lines}-{ROOM.strip('#')}.sqlite3"
    if not path.exists():
        OUT.mkdir(parents=True, exist_ok=True)
        begin = time.monotonic()
        print(f"building {path} ({lines} lines)...", file=sys.stderr, flush=True)
        build(path, lines)
        print(f"built in {time.monotonic() - begin:.0f} s", file=sys.stderr, flush=True)
    return path


def on_disk(db: Path) -> set[str]:
    """The talker's lines in the file, read as another process would."""
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)
    try:
        return {row[0] for row in conn.execute(
            "SELECT text FROM events WHERE nick = 'talker' AND id > "
            "(SELECT max(id) - 5000 FROM events)")}
    finally:
        conn.close()


def note_stored(db: Path, seen: dict[str, float]) -> float:
    """Note when each of the talker's lines was first seen in the file; return now."""
    now = time.monotonic()
    for text in on_disk(db):
        seen.setdefault(text, now)
    return now


# Members ----------------------------------------------------------------------------------

class Listener(threading.Thread):
    """Reads everything a client is sent, with the time it arrived."""

    def __init__(self, client: LineClient) -> None:
        super().__init__(daemon=True)
        self.client = client
        self.lines: list[tuple[float, str]] = []
        self.stop = threading.Event()
        self.start()

    def run(self) -> None:
        while not self.stop.is_set() and not self.client.closed:
            try:
                line = self.client.read_line(timeout=0.2)
            except (OSError, UnicodeDecodeError):
                return
            if line is not None:
                self.lines.append((time.monotonic(), line))

    def first(self, test: Callable[[str], bool], since: float = 0.0) -> tuple[float, str] | None:
        for when, line in list(self.lines):
            if when >= since and test(line):
                return when, line
        return None


def answered(line: str) -> bool:
    """Whether ``line`` ends a search's answer: its last line, none, or a refusal."""
    return line == "*** end of search" or line.startswith(("*** no lines match", "! "))


class Session:
    """A server on a copy of the history, with its members."""

    def __init__(self, workdir: Path, source: Path, args: list[str], searchers: int) -> None:
        self.db = workdir / "history.sqlite3"
        shutil.copyfile(source, self.db)
        self.server = ServerProcess(
            workdir, "--history", str(self.db), "--history-flush-ms", str(FLUSH_MS),
            "--rate", "1000", "--burst", "1000", "--history-replay", "0", *args)
        self.searchers = [Listener(self.server.join(f"searcher{i}")) for i in range(searchers)]
        self.other = Listener(self.server.join("other"))
        self.listener = Listener(self.server.join("listener"))
        self.talker = self.server.join("talker")
        self.said: list[tuple[float, str]] = []
        self._talking = threading.Event()
        self._talk_thread: threading.Thread | None = None

    def search_all(self, words: str) -> float:
        begin = time.monotonic()
        for searcher in self.searchers:
            searcher.client.send(f"/search {words}")
        return begin

    def talk(self) -> None:
        def run() -> None:
            i = 0
            while not self._talking.is_set():
                text = f"mark {i}"
                self.said.append((time.monotonic(), text))
                try:
                    self.talker.send(text)
                except OSError:
                    return
                i += 1
                self._talking.wait(TALK_EVERY)

        self._talk_thread = threading.Thread(target=run, daemon=True)
        self._talk_thread.start()

    def quiet(self) -> None:
        self._talking.set()
        if self._talk_thread is not None:
            self._talk_thread.join(5)

    def __enter__(self) -> Session:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.quiet()
        self.server.kill()
        for member in (*self.searchers, self.other, self.listener):
            member.stop.set()
            member.client.close()
        self.talker.close()


def writes_and_other_searches(work: Path, source: Path, args: list[str], words: str,
                              searchers: int, deadline_s: float) -> dict[str, object]:
    with Session(work / "writes", source, args, searchers) as session:
        session.talk()
        time.sleep(0.5)
        begin = session.search_all(words)
        time.sleep(0.3)
        session.other.client.send("/search deploy broken")
        other_sent = time.monotonic()
        seen: dict[str, float] = {}
        end = begin + deadline_s
        while time.monotonic() < end:
            now = note_stored(session.db, seen)
            done = all(s.first(answered, begin) for s in session.searchers)
            if done and session.other.first(answered, other_sent) and now > begin + 3:
                break
            time.sleep(0.02)
        session.quiet()
        end = time.monotonic() + 5
        while time.monotonic() < end and any(text not in seen for _, text in session.said):
            note_stored(session.db, seen)
            time.sleep(0.02)
        lags = [seen.get(text, end) - said for said, text in session.said if said >= begin]
        other = session.other.first(answered, other_sent)
        answers = [s.first(answered, begin) for s in session.searchers]
        return {
            "heavy_search_answer_s": max(
                ((a[0] - begin if a else float("nan")) for a in answers), default=None),
            "heavy_search_answer": answers[0][1][:72] if answers and answers[0] else None,
            "longest_write_lag_s": max(lags),
            "other_search_latency_s": other[0] - other_sent if other else None,
        }


def sigkill(work: Path, source: Path, args: list[str], words: str,
            searchers: int) -> dict[str, object]:
    with Session(work / "kill", source, args, searchers) as session:
        session.talk()
        time.sleep(0.5)
        session.search_all(words)
        time.sleep(3)
        killed = time.monotonic()
        os.kill(session.server.pid, signal.SIGKILL)
        session.server.wait()
        session.quiet()
        stored = on_disk(session.db)
        heard = [(when, line.removeprefix("talker: ")) for when, line in session.listener.lines
                 if line.startswith("talker: mark") and when <= killed]
        lost = [(when, text) for when, text in heard if text not in stored]
        return {
            "lines_heard": len(heard),
            "lines_lost": len(lost),
            "oldest_lost_age_s": round(killed - min(when for when, _ in lost), 3) if lost
            else 0.0,
        }


def sigterm(work: Path, source: Path, args: list[str], words: str,
            searchers: int) -> dict[str, object]:
    with Session(work / "term", source, args, searchers) as session:
        session.search_all(words)
        time.sleep(1)
        begin = time.monotonic()
        session.server.terminate()
        try:
            code: int | None = session.server.proc.wait(60)
        except Exception:
            code = None
        return {"sigterm_exit_s": round(time.monotonic() - begin, 2), "exit_code": code}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--lines", type=int, default=1_000_000)
    parser.add_argument("--tokens", type=int, default=300,
                        help="words in the one costly search term (default 300)")
    parser.add_argument("--token", default="the", help="the word repeated (default the)")
    parser.add_argument("--searchers", type=int, default=4,
                        help="members sending the costly search at once (default 4)")
    parser.add_argument("--source", type=Path, default=None,
                        help="run the server from this checkout instead (same venv)")
    parser.add_argument("--deadline", type=float, default=120.0,
                        help="most seconds to wait for the searches' answers")
    parser.add_argument("server_args", nargs="*", help="more server options, after --")
    options = parser.parse_args()
    if options.source is not None:
        os.environ["PYTHONPATH"] = str(options.source.resolve())
    words = "-".join([options.token] * options.tokens)
    source = history_file(options.lines)
    figures: dict[str, object] = {
        "source": str(options.source or ROOT), "lines": options.lines,
        "search": f"/search {options.token}-...-{options.token} ({options.tokens} words, "
                  f"{len(words)} bytes) x {options.searchers} members",
    }
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        for name in ("writes", "kill", "term"):
            (work / name).mkdir()
        figures.update(writes_and_other_searches(
            work, source, options.server_args, words, options.searchers, options.deadline))
        figures.update(sigkill(work, source, options.server_args, words, options.searchers))
        figures.update(sigterm(work, source, options.server_args, words, options.searchers))
    print(json.dumps({k: round(v, 3) if isinstance(v, float) else v
                      for k, v in figures.items()}, indent=1))


if __name__ == "__main__":
    main()
