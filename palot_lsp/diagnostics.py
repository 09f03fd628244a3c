"""Diagnostics and hovers for one file, built from what agents did to it (pure).

| diagnostic | severity | where |
|---|---|---|
| ``agent-change`` | Information | each range of lines an agent's worktree changed |
| ``agent-overlap`` | Warning | lines two agents both changed (their hunks overlap) |
| ``agent-permission`` | Warning | the lines a pending permission request wants to change |
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from lsprotocol import types as lsp

from palot.api import Hunk

from . import markdown as md
from .changes import AgentChange, Overlap, PendingPermission, agent_label, lines_label

SOURCE = "palot"
CHANGE = "agent-change"
OVERLAP = "agent-overlap"
PERMISSION = "agent-permission"

Units = Callable[[str], int]


def line_range(start: int, end: int, lines: Sequence[str], units: Units = len) -> lsp.Range:
    """1-based inclusive lines → an LSP range over whole lines, kept inside the document when it is known.

    ``units`` counts a line's length in the client's position encoding.
    """
    first, last = max(start - 1, 0), max(end - 1, start - 1, 0)
    if lines:
        first, last = min(first, len(lines) - 1), min(last, len(lines) - 1)
        return lsp.Range(lsp.Position(first, 0), lsp.Position(last, units(lines[last].rstrip("\r\n"))))
    return lsp.Range(lsp.Position(first, 0), lsp.Position(last + 1, 0))


def change_message(change: AgentChange, start: int, end: int) -> str:
    agent = change.agent
    branch = f" on {agent.branch}" if agent.branch else ""
    return f"Agent {agent_label(agent)} ({agent.status.value}) changed {lines_label(start, end)}{branch}"


def overlap_message(overlap: Overlap) -> str:
    a, b = overlap.first.agent, overlap.second.agent
    return (f"Agents {agent_label(a)} ({a.status.value}) and {agent_label(b)} ({b.status.value}) both changed "
            f"{lines_label(overlap.start, overlap.end)}: applying both may conflict")


def permission_message(pending: PendingPermission) -> str:
    return (f"Agent {agent_label(pending.agent)} is waiting for permission to {pending.permission.permission} "
            f"{pending.path} ({lines_label(pending.start, pending.end)}): allow or reject it with a code action")


def file_diagnostics(
    changes: Sequence[AgentChange],
    overlaps: Sequence[Overlap],
    permissions: Sequence[PendingPermission],
    lines: Sequence[str],
    units: Units = len,
) -> list[lsp.Diagnostic]:
    """Every diagnostic Palot shows in one file, in a stable order."""
    out: list[lsp.Diagnostic] = []
    for change in changes:
        for start, end, _ in change.ranges():
            out.append(lsp.Diagnostic(
                range=line_range(start, end, lines, units), severity=lsp.DiagnosticSeverity.Information,
                source=SOURCE, code=CHANGE, message=change_message(change, start, end),
                data={"kind": CHANGE, "agent": change.agent.id, "path": change.path, "lines": [start, end]},
            ))
    for overlap in overlaps:
        out.append(lsp.Diagnostic(
            range=line_range(overlap.start, overlap.end, lines, units), severity=lsp.DiagnosticSeverity.Warning,
            source=SOURCE, code=OVERLAP, message=overlap_message(overlap),
            data={"kind": OVERLAP, "agents": [overlap.first.agent.id, overlap.second.agent.id],
                  "path": overlap.first.path, "lines": [overlap.start, overlap.end]},
        ))
    for pending in permissions:
        out.append(lsp.Diagnostic(
            range=line_range(pending.start, pending.end, lines, units), severity=lsp.DiagnosticSeverity.Warning,
            source=SOURCE, code=PERMISSION, message=permission_message(pending),
            data={"kind": PERMISSION, "agent": pending.agent.id, "permission": pending.permission.id,
                  "path": pending.path, "lines": [pending.start, pending.end]},
        ))
    return out


def hunk_text(hunk: Hunk) -> str:
    header = f"@@ -{hunk.old_start},{hunk.old_count} +{hunk.new_start},{hunk.new_count} @@"
    return "\n".join([header, *hunk.lines])


def hover_markdown(
    changes: Sequence[AgentChange], permissions: Sequence[PendingPermission], line: int
) -> tuple[str, tuple[int, int]] | None:
    """Markdown about what agents did at 1-based ``line`` (agent, status, the hunk), and the lines it covers.

    What agents and users wrote (title, branch, project, the hunk, a permission's summary) shows as written.
    """
    parts: list[str] = []
    span: tuple[int, int] | None = None
    for change in changes:
        for start, end, hunk in change.ranges():
            if start <= line <= end:
                agent = change.agent
                where = " · ".join(x for x in (f"branch {md.code(agent.branch)}" if agent.branch else "",
                                               f"project {md.code(agent.project_name)}") if x)
                parts.append(f"**Palot agent** {md.code(agent.id)} “{md.text(agent.title)}” — "
                             f"**{agent.status.value}**  \n{where}\n\n{md.code_block(hunk_text(hunk), 'diff')}")
                span = (start, end) if span is None else (min(span[0], start), max(span[1], end))
    for pending in permissions:
        if pending.start <= line <= pending.end:
            parts.append(f"**Palot agent** {md.code(pending.agent.id)} “{md.text(pending.agent.title)}” is waiting "
                         f"for permission: {md.text(pending.permission.summary)}")
            span = (pending.start, pending.end) if span is None else (min(span[0], pending.start),
                                                                      max(span[1], pending.end))
    if not parts or span is None:
        return None
    return "\n\n---\n\n".join(parts), span
