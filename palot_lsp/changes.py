"""What agents have done to one file (pure): changed lines, overlaps between agents, pending permissions.

Line numbers are 1-based and inclusive, as in :mod:`palot.hunks`, and refer to
the agent's version of the file (the file in its worktree).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from palot.api import Agent, AgentStatus, Hunk, PermissionView, parse_hunks


def is_shown(agent: Agent) -> bool:
    """Agents whose changes the editor shows: every managed agent but archived ones (no worktree left)."""
    return agent.status != AgentStatus.ARCHIVED and not agent.read_only


def agent_label(agent: Agent) -> str:
    """How an agent is named to a person: id and title."""
    return f"{agent.id} “{agent.title}”"


def agent_roots(agent: Agent) -> tuple[str, str]:
    """Where the agent's files are on this machine (its worktree, container workspace or cloud mirror) and
    its project directory, symlinks resolved."""
    return os.path.realpath(agent.environment.host_path or agent.environment.directory), \
        os.path.realpath(agent.project_path)


def relative_path(path: str, roots: tuple[str, ...]) -> str | None:
    """``path`` (absolute, resolved) relative to the first of ``roots`` holding it; None if none does.

    A file in the user's checkout and the same relative path in the agent's
    worktree are the same file to the editor.
    """
    for root in roots:
        if path.startswith(root + os.sep):
            return os.path.relpath(path, root).replace(os.sep, "/")
    return None


def lines_label(start: int, end: int) -> str:
    return f"line {start}" if start == end else f"lines {start}–{end}"


@dataclass(frozen=True)
class AgentChange:
    """One agent's hunks in one file."""

    agent: Agent
    path: str  # relative to the project root
    hunks: tuple[Hunk, ...]

    def ranges(self) -> list[tuple[int, int, Hunk]]:
        """Every changed line range with the hunk it belongs to."""
        return [(start, end, hunk) for hunk in self.hunks for start, end in hunk.changed_ranges()]

    def touches(self, first: int, last: int) -> bool:
        """Whether any changed range intersects lines ``first``..``last``."""
        return any(start <= last and first <= end for start, end, _ in self.ranges())


@dataclass(frozen=True)
class Overlap:
    """Two agents' hunks over the same lines: applying both is likely to conflict."""

    first: AgentChange
    second: AgentChange
    start: int
    end: int


def find_overlaps(changes: list[AgentChange]) -> list[Overlap]:
    """Pairs of hunks from different agents that overlap (:meth:`Hunk.overlaps`), with the lines at stake."""
    found: list[Overlap] = []
    for i, one in enumerate(changes):
        for other in changes[i + 1:]:
            if one.agent.id == other.agent.id:
                continue
            for a in one.hunks:
                for b in other.hunks:
                    if a.overlaps(b):
                        found.append(Overlap(one, other, *_lines_at_stake(a, b)))
    return found


def _lines_at_stake(a: Hunk, b: Hunk) -> tuple[int, int]:
    """Lines both hunks changed; else the lines either changed where the hunks overlap (context excluded)."""
    lo, hi = max(a.new_start, b.new_start), min(a.new_end, b.new_end)
    both = [(max(s1, s2), min(e1, e2)) for s1, e1 in a.changed_ranges() for s2, e2 in b.changed_ranges()
            if max(s1, s2) <= min(e1, e2)]
    near = both or [(max(s, lo), min(e, hi)) for s, e in [*a.changed_ranges(), *b.changed_ranges()]
                    if max(s, lo) <= min(e, hi)]
    return (min(s for s, _ in near), max(e for _, e in near)) if near else (lo, hi)


@dataclass(frozen=True)
class PendingPermission:
    """A permission request of an agent that concerns one file."""

    agent: Agent
    permission: PermissionView
    path: str
    start: int
    end: int


def permission_for_file(
    agent: Agent, permission: PermissionView, rel: str, metadata: dict[str, Any] | None
) -> PendingPermission | None:
    """The request as it concerns file ``rel``, or None when it is about something else.

    OpenCode names the file in ``patterns`` (relative to the worktree) and, for
    edits, in ``metadata.filepath`` with the proposed ``metadata.diff``, whose
    hunks say which lines the agent wants to change.
    """
    worktree_file = os.path.join(agent.environment.directory, rel)
    metadata = metadata or {}
    named = {p.replace(os.sep, "/") for p in permission.patterns} | {str(metadata.get("filepath") or "")}
    if not named & {rel, worktree_file}:
        return None
    start = end = 1
    diff = metadata.get("diff")
    if isinstance(diff, str):
        ranges = [r for f in parse_hunks(diff).values() for h in f.hunks for r in h.changed_ranges()]
        if ranges:
            start, end = ranges[0][0], max(e for _, e in ranges)
    return PendingPermission(agent, permission, rel, start, end)
