"""What sanitising one received line costs: ``clean`` on typical lines, in µs per line.

``clean`` runs on every line every member sends, so a change to it is measured here before
and after. Each figure is the best of several timeit repeats, so that other processes on the
machine cost as little as possible; with ``--against FILE`` (another version of
``chatroom/lines/sanitize.py``, e.g. from ``git show REV:chatroom/lines/sanitize.py``) both
are timed in the same process, repeat by repeat in turn, so that load on a shared machine
hits both alike. Standalone::

    .venv/bin/python benchmarks/sanitize.py [--against /tmp/sanitize-before.py]

It prints one row per kind of line and the mean over a mix in which plain chat dominates,
as it does in a real room.
"""

from __future__ import annotations

import argparse
import importlib.util
import timeit
from collections.abc import Callable
from pathlib import Path

from chatroom.lines.sanitize import clean

Clean = Callable[[bytes], str]

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
NUMBER = 20_000
REPEATS = 15


def load_clean(path: Path) -> Clean:
    spec = importlib.util.spec_from_file_location("sanitize_against", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    function: Clean = module.clean
    return function


def measure(functions: list[Clean]) -> list[dict[str, float]]:
    """µs per line for each function and line: best of ``REPEATS``, taken in turn."""
    best = [dict.fromkeys(LINES, float("inf")) for _ in functions]
    for _ in range(REPEATS):
        for name, data in LINES.items():
            for costs, function in zip(best, functions, strict=True):
                took = timeit.timeit(lambda f=function, d=data: f(d), number=NUMBER)
                costs[name] = min(costs[name], took / NUMBER * 1e6)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--against", type=Path, help="another sanitize.py to time alongside")
    args = parser.parse_args()
    functions = [clean] if args.against is None else [load_clean(args.against), clean]
    results = measure(functions)
    header = "µs per line" if len(results) == 1 else "against   this   (µs per line)"
    print(f"{'':<22} {header}")
    for name in [*LINES, "mix"]:
        cells = [
            sum(costs[line] for line in MIX) / len(MIX) if name == "mix" else costs[name]
            for costs in results
        ]
        label = "mix (60% ascii chat)" if name == "mix" else name
        print(f"{label:<22} " + " ".join(f"{cell:6.3f}" for cell in cells))


if __name__ == "__main__":
    main()
