"""Progress bars drawn by the CLI itself, on stderr.

On a terminal the lines are redrawn in place (`\\r`, and the cursor moved up over the previous lines when there
are several); on anything else (a pipe, a log file, a CI job) a line is printed when it is new or changed, so
the output reads top to bottom.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable, Sequence
from typing import Any, TextIO

BAR_WIDTH = 20
_CLEAR_LINE = "\x1b[K"


def bar(done: float, total: float, width: int = BAR_WIDTH) -> str:
    """`[#########-----------]`: `done` of `total` (an empty bar when the total is unknown)."""
    filled = 0 if total <= 0 else round(width * min(max(done / total, 0.0), 1.0))
    return "[" + "#" * filled + "-" * (width - filled) + "]"


def human_bytes(count: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(count) < 1024 or unit == "GiB":
            return f"{count:.0f} {unit}" if unit == "B" else f"{count:.1f} {unit}"
        count /= 1024
    raise AssertionError("unreachable")


class Board:
    """A block of progress lines on one stream. `update(lines)` draws them; `close()` ends the block."""

    def __init__(self, stream: TextIO, tty: bool | None = None) -> None:
        self.stream = stream
        self.tty = stream.isatty() if tty is None else tty
        self._drawn = 0  # lines of the block on screen (tty)
        self._last: list[str] = []  # lines last printed (not a tty)

    def update(self, lines: Sequence[str]) -> None:
        if self.tty:
            self._redraw(list(lines))
        else:
            printed = set(self._last)  # by content: a family appearing mid-list does not reprint the rest
            for line in lines:
                if line not in printed:
                    self.stream.write(line + "\n")
            self._last = list(lines)
        self.stream.flush()

    def _redraw(self, lines: list[str]) -> None:
        columns = max(
            20, shutil.get_terminal_size((100, 24)).columns - 1
        )  # no wrap: it would break the redraw
        out = []
        if self._drawn > 1:
            out.append(f"\x1b[{self._drawn - 1}A")
        out.append("\r")
        out.append(("\n").join(line[:columns] + _CLEAR_LINE for line in lines))
        self.stream.write("".join(out))
        self._drawn = max(len(lines), 1)

    def close(self) -> None:
        if self.tty and self._drawn:
            self.stream.write("\n")
            self.stream.flush()
        self._drawn = 0


FINISHED = ("done", "failed", "skipped")


def family_lines(view: dict[str, Any]) -> list[str]:
    """The progress of a request as lines: its status and totals, then one bar per endpoint family."""
    progress: dict[str, dict[str, Any]] = view.get("progress") or {}
    tasks = sum(int(p.get("tasks", 0)) for p in progress.values())
    finished = sum(int(p.get(k, 0)) for p in progress.values() for k in FINISHED)
    kept = sum(int(p.get("recordsKept", 0)) for p in progress.values())
    calls = sum(int(p.get("calls", 0)) for p in progress.values())
    lines = [
        f"{view.get('status', '?'):<21} {bar(finished, tasks)} {finished:>4}/{tasks:<4} tasks"
        f"  {kept:>6} records kept  {calls:>6} calls"
    ]
    width = max([len(str(p.get("title") or name)) for name, p in progress.items()] + [10])
    for name, entry in progress.items():
        title = str(entry.get("title") or name)
        total = int(entry.get("tasks", 0))
        done = sum(int(entry.get(k, 0)) for k in FINISHED)
        line = (
            f"  {title:<{width}} {bar(done, total)} {done:>4}/{total:<4}"
            f"  kept {int(entry.get('recordsKept', 0)):>5} of {int(entry.get('recordsSeen', 0)):>5} seen"
            f"  {int(entry.get('calls', 0)):>5} calls"
        )
        busy = [f"{int(entry[k])} {k}" for k in ("running", "queued", "failed") if int(entry.get(k, 0))]
        if busy:
            line += "  (" + ", ".join(busy) + ")"
        lines.append(line)
    return lines


class ByteProgress:
    """A download's bar by bytes of Content-Length: on a terminal redrawn at most 10 times a second; otherwise
    a line at each tenth of the total (or only at the end, when the size is unknown)."""

    def __init__(
        self, board: Board, name: str, total: int | None, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.board = board
        self.name = name
        self.total = total
        self.clock = clock
        self.done = 0
        self._drawn_at = -1.0
        self._tenth = -1

    def line(self) -> str:
        if self.total:
            return (
                f"{self.name} {bar(self.done, self.total)} {human_bytes(self.done)} of "
                f"{human_bytes(self.total)} {100 * self.done // self.total:>3}%"
            )
        return f"{self.name} {human_bytes(self.done)}"

    def advance(self, count: int) -> None:
        self.done += count
        if self.board.tty:
            now = self.clock()
            if now - self._drawn_at >= 0.1:
                self._drawn_at = now
                self.board.update([self.line()])
        elif self.total:
            tenth = min(10, 10 * self.done // self.total)
            if tenth != self._tenth:
                self._tenth = tenth
                self.board.update([self.line()])

    def finish(self) -> None:
        if self.board.tty or not self.total or self._tenth != 10:
            self.board.update([self.line()])
        self.board.close()
