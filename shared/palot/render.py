"""Terminal rendering of agents, activity and diffs (used by the CLI and the demo)."""

from __future__ import annotations

import time

from rich.table import Table
from rich.text import Text

from .agents import ActivityItem, Agent, AgentDiff, AgentStatus

STATUS_STYLE = {
    AgentStatus.PROVISIONING: ("◌", "cyan"),
    AgentStatus.RUNNING: ("●", "green"),
    AgentStatus.WAITING: ("⏳", "yellow"),
    AgentStatus.PAUSED: ("⏸", "bright_black"),
    AgentStatus.COMPLETED: ("✓", "blue"),
    AgentStatus.FAILED: ("✕", "red"),
    AgentStatus.MIGRATING: ("↗", "magenta"),
    AgentStatus.ARCHIVED: ("▣", "bright_black"),
}
KIND_ICON = {
    "read": "📖", "write": "📝", "edit": "✏️ ", "bash": "▶", "grep": "🔍", "glob": "🔍", "todo": "☑",
    "task": "⇢", "web": "🌐", "message": "💬", "thinking": "…", "error": "✕", "tool": "•",
}


def status_text(status: AgentStatus) -> Text:
    icon, style = STATUS_STYLE[status]
    return Text(f"{icon} {status.value}", style=style)


def elapsed(since: float, now: float | None = None) -> str:
    secs = int((now or time.time()) - since)
    if secs < 60:
        return f"{secs}s"
    if secs < 3600:
        return f"{secs // 60}m{secs % 60:02d}s"
    return f"{secs // 3600}h{(secs % 3600) // 60:02d}m"


def agents_table(agents: list[Agent], title: str | None = None, *, compact: bool = False) -> Table:
    """Agents as a table; ``compact`` leaves out id, environment and project (one project, narrow terminals)."""
    table = Table(title=title, expand=False, show_lines=False)
    columns = ("status", "title", "branch", "age", "tokens", "cost") if compact else (
        "id", "status", "env", "project", "title", "branch", "age", "tokens", "cost")
    for col in columns:
        table.add_column(col, no_wrap=col != "title", justify="right" if col in ("tokens", "cost") else "left")
    for a in agents:
        cells = {
            "id": a.id, "status": status_text(a.status), "env": a.environment.type, "project": a.project_name,
            "title": a.title, "branch": a.environment.branch or "", "age": elapsed(a.created_at),
            "tokens": f"{a.tokens:,}", "cost": f"${a.cost:.4f}",
        }
        table.add_row(*(cells[c] for c in columns))
    return table


def activity_line(item: ActivityItem) -> Text:
    stamp = time.strftime("%H:%M:%S", time.localtime(item.time))
    line = Text(f"{stamp}  {KIND_ICON.get(item.kind, '•')} {item.verb} ")
    line.append(item.target, style="bold")
    if item.summary:
        line.append(f"  {item.summary}", style="red" if item.state == "error" else "bright_black")
    return line


def diff_summary(diff: AgentDiff) -> Table:
    table = Table(title=f"{len(diff.files)} files changed (+{diff.additions} -{diff.deletions})", show_header=False)
    table.add_column("status")
    table.add_column("path")
    table.add_column("+", style="green", justify="right")
    table.add_column("-", style="red", justify="right")
    marks = {"added": "+", "deleted": "-", "renamed": "→", "modified": "~"}
    for f in diff.files:
        table.add_row(marks.get(f.status, "~"), f.path, "bin" if f.binary else f"+{f.additions}",
                      "" if f.binary else f"-{f.deletions}")
    return table


def patch_text(patch: str) -> Text:
    text = Text()
    for line in patch.splitlines():
        style = None
        if line.startswith(("+++", "---", "diff --git", "index ")):
            style = "bold"
        elif line.startswith("+"):
            style = "green"
        elif line.startswith("-"):
            style = "red"
        elif line.startswith("@@"):
            style = "cyan"
        text.append(line + "\n", style=style)
    return text
