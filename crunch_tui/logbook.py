"""Log ring buffers kept outside the widget, so the view can switch process or filter
and re-render from memory, and so a burst of lines costs one widget write per batch."""

from __future__ import annotations

import re
from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from crunch_tui.snapshots import LogLine

LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")
_LEVEL_RANK = {"DEBUG": 0, "INFO": 1, "WARNING": 2, "WARN": 2, "ERROR": 3, "CRITICAL": 3}
_LEVEL_RE = re.compile(r"\b(DEBUG|INFO|WARNING|WARN|ERROR|CRITICAL)\b")
_ANSI_RE = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]|\x1b[@-Z\\-_]")
PROCESS_COLOURS = (36, 33, 35, 32, 34, 96, 93, 95, 92, 94)


def strip_ansi(text: str) -> str:
    return _ANSI_RE.sub("", text)


@dataclass(frozen=True, slots=True)
class Entry:
    """A buffered line: its position in the book, its source and its plain text for filters."""

    index: int
    line: LogLine
    plain: str
    level: int

    def matches(self, process: str | None, min_level: int, needle: str) -> bool:
        if process is not None and self.line.process != process:
            return False
        if self.level < min_level:
            return False
        return not needle or needle in self.plain.lower()


def level_of(plain: str, stream: str) -> int:
    """A line's level from the first level word in it; unmarked stderr counts as WARNING."""
    found = _LEVEL_RE.search(plain)
    if found:
        return _LEVEL_RANK[found.group(1)]
    return _LEVEL_RANK["WARNING"] if stream == "stderr" else _LEVEL_RANK["INFO"]


class LogBook:
    """A merged ring buffer of every process's lines plus the set of known processes.

    ``index`` grows by one per accepted line, so a view asks ``since(last_index)`` for
    what it has not drawn yet. Lines are de-duplicated per process by ``seq`` so that a
    backfill after a reconnect does not repeat what the stream already delivered.
    """

    def __init__(self, maxlen: int = 20_000) -> None:
        self._entries: deque[Entry] = deque(maxlen=maxlen)
        self._last_seq: dict[str, int] = {}
        self._index = 0

    @property
    def index(self) -> int:
        return self._index

    @property
    def processes(self) -> list[str]:
        return sorted(self._last_seq)

    def add(self, line: LogLine) -> bool:
        if line.seq and line.seq <= self._last_seq.get(line.process, 0):
            return False
        self._last_seq[line.process] = max(line.seq, self._last_seq.get(line.process, 0))
        self._index += 1
        plain = strip_ansi(line.line)
        self._entries.append(Entry(self._index, line, plain, level_of(plain, line.stream)))
        return True

    def extend(self, lines: Iterable[LogLine]) -> int:
        return sum(1 for line in lines if self.add(line))

    def since(self, index: int) -> list[Entry]:
        """Entries added after ``index``, oldest first."""
        fresh: list[Entry] = []
        for entry in reversed(self._entries):
            if entry.index <= index:
                break
            fresh.append(entry)
        fresh.reverse()
        return fresh

    def select(
        self, process: str | None, min_level: int = 0, needle: str = "", limit: int = 2000
    ) -> list[Entry]:
        """The newest ``limit`` entries matching a view's filter, oldest first."""
        needle = needle.lower()
        picked: list[Entry] = []
        for entry in reversed(self._entries):
            if entry.matches(process, min_level, needle):
                picked.append(entry)
                if len(picked) >= limit:
                    break
        picked.reverse()
        return picked

    def __iter__(self) -> Iterator[Entry]:
        return iter(self._entries)

    def __len__(self) -> int:
        return len(self._entries)


def prefixed(entry: Entry, processes: list[str]) -> str:
    """A merged-view line: the process name in its own ANSI colour, then the raw line."""
    name = entry.line.process
    slot = processes.index(name) if name in processes else hash(name)
    colour = PROCESS_COLOURS[slot % len(PROCESS_COLOURS)]
    return f"\x1b[{colour}m{name:<12}\x1b[0m│ {entry.line.line}"
