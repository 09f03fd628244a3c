"""Changed line ranges from a unified diff (pure): where an agent edited each file.

Front ends use this to mark the lines an agent changed (editor diagnostics,
coloured hunks in the notebook) and to detect two agents touching the same lines.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

_HUNK = re.compile(r"^@@ -(\d+)(?:,(\d+))? \+(\d+)(?:,(\d+))? @@(.*)$")


@dataclass(frozen=True)
class Hunk:
    """One hunk: the old and new line ranges (1-based) and its lines with their +/-/space prefix."""

    old_start: int
    old_count: int
    new_start: int
    new_count: int
    lines: tuple[str, ...] = ()

    @property
    def new_end(self) -> int:
        """Last line (inclusive) of the hunk in the new file; for a pure deletion, the line it sits at."""
        return self.new_start + max(self.new_count, 1) - 1

    def overlaps(self, other: "Hunk") -> bool:
        return self.new_start <= other.new_end and other.new_start <= self.new_end

    @property
    def text(self) -> str:
        return "\n".join(self.lines)

    def changed_ranges(self) -> list[tuple[int, int]]:
        """Inclusive 1-based ranges of new-file lines that were added or replaced (context excluded).

        A pure deletion yields a one-line range at the line that now follows it.
        """
        ranges: list[tuple[int, int]] = []
        line = self.new_start
        start: int | None = None
        deleted = False

        def flush(end: int) -> None:
            nonlocal start, deleted
            if start is not None:
                ranges.append((start, end))
            elif deleted:
                ranges.append((line, line))
            start, deleted = None, False

        for text in self.lines:
            mark = text[:1]
            if mark == "+":
                if start is None:
                    start = line
                line += 1
            elif mark == "-":
                deleted = True
            elif mark == " ":
                flush(line - 1)
                line += 1
        flush(line - 1)
        return ranges


@dataclass
class FileHunks:
    path: str
    hunks: list[Hunk] = field(default_factory=list)


def parse_hunks(patch: str) -> dict[str, FileHunks]:
    """Hunks per file (keyed by the new path) of a ``git diff`` patch; binary files have none."""
    files: dict[str, FileHunks] = {}
    current: FileHunks | None = None
    header: tuple[int, int, int, int] | None = None
    lines: list[str] = []

    def close() -> None:
        nonlocal header, lines
        if current is not None and header is not None:
            current.hunks.append(Hunk(*header, lines=tuple(lines)))
        header, lines = None, []

    for line in patch.splitlines():
        if line.startswith("diff --git "):
            close()
            current = None
        elif line.startswith("+++ "):
            target = line[4:]
            if target != "/dev/null":
                path = target[2:] if target.startswith("b/") else target
                current = files.setdefault(path, FileHunks(path))
        elif line.startswith("--- ") and header is None:
            continue
        elif (m := _HUNK.match(line)) and current is not None:
            close()
            old_start, old_count, new_start, new_count = (
                int(m.group(1)), int(m.group(2) or 1), int(m.group(3)), int(m.group(4) or 1))
            header = (old_start, old_count, new_start, new_count)
        elif header is not None and line[:1] in ("+", "-", " ", "\\"):
            lines.append(line)
    close()
    return files
