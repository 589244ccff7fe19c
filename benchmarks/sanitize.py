"""What sanitising one received line costs: ``clean`` on typical lines, in µs per line.

``clean`` runs on every line every member sends, so a change to it is measured here before
and after (best of five timeit repeats, so another process on the machine costs as little as
possible). Standalone: ``.venv/bin/python benchmarks/sanitize.py``; prints one row per kind
of line and the mean over a mix in which plain chat dominates, as it does in a real room.
"""

from __future__ import annotations

import timeit

from chatroom.lines.sanitize import clean

LINES: dict[str, bytes] = {
    "ascii chat (44 B)": b"hello everyone, is the build green again now?",
    "accented (38 B)": "Zoë: ça marche, à demain à 9h !".encode(),
    "cjk + emoji (40 B)": "日本語のテキスト 🙂 ありがとう".encode(),
    "emoji zwj (35 B)": "family 👨\u200d👩\u200d👧 and ❤\ufe0f".encode(),
    "tab + spaces (40 B)": b"col1\tcol2\tcol3    spaced   out  text",
    "ansi colour (30 B)": b"\x1b[31mred\x1b[0m and \x1b[1mbold\x1b[0m",
    "ascii long (400 B)": b"lorem ipsum dolor sit amet " * 15,
}
MIX = ["ascii chat (44 B)"] * 6 + ["accented (38 B)", "cjk + emoji (40 B)",
                                   "ascii long (400 B)", "emoji zwj (35 B)"]
NUMBER = 100_000


def per_line(data: bytes) -> float:
    """µs per ``clean(data)``, best of five runs."""
    best = min(timeit.repeat(lambda: clean(data), number=NUMBER, repeat=5))
    return best / NUMBER * 1e6


def main() -> None:
    costs = {name: per_line(data) for name, data in LINES.items()}
    for name, cost in costs.items():
        print(f"{name:<22} {cost:6.3f} µs")
    mix = sum(costs[name] for name in MIX) / len(MIX)
    print(f"{'mix (60% ascii chat)':<22} {mix:6.3f} µs")


if __name__ == "__main__":
    main()
