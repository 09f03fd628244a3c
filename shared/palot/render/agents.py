"""Agents in the terminal: the table that fits its width, activity lines, diffs and patches, messages, the audit
log. Text is built from what users and agents wrote, never markup strings (see README.md)."""

from __future__ import annotations

import time

from rich.console import Console, ConsoleOptions, RenderResult
from rich.table import Table
from rich.text import Text

from .. import api
from ..api import KIND_ICON, ActivityItem, Agent, AgentDiff, elapsed
from .basics import status_text

#: Columns in display order; ``compact`` leaves out id, environment and project (one project).
COLUMNS = ("id", "status", "env", "project", "title", "branch", "age", "tokens", "cost")
COMPACT_COLUMNS = ("status", "title", "branch", "age", "tokens", "cost")
#: What gives way when the terminal is narrow, first to last; status and title always stay.
DROP_ORDER = ("project", "branch", "tokens", "cost", "age", "env", "id")
#: The title column never gets narrower than this (or than its longest title, if shorter).
TITLE_MIN_WIDTH = 24


class AgentsTable:
    """Agents as a table that fits the width it is given: less important columns give way first."""

    def __init__(self, agents: list[Agent], title: str | None = None, *, compact: bool = False) -> None:
        self.title = title
        self.columns = COMPACT_COLUMNS if compact else COLUMNS
        self.rows = [self._cells(a) for a in agents]
        #: Each column's width with nothing cut: its widest cell or its header.
        self.natural = {c: max([len(c), *(row[c].cell_len for row in self.rows)]) for c in self.columns}
        self.title_min = min(self.natural["title"], TITLE_MIN_WIDTH)

    @staticmethod
    def _cells(a: Agent) -> dict[str, Text]:
        return {
            "id": Text(a.id), "status": status_text(a.status), "env": Text(a.environment.type),
            "project": Text(a.project_name), "title": Text(a.title), "branch": Text(a.environment.branch or ""),
            "age": Text(elapsed(a.created_at)), "tokens": Text(f"{a.tokens:,}"), "cost": Text(f"${a.total_cost:.4f}"),
        }

    def fitting_columns(self, width: int) -> tuple[str, ...]:
        """The columns shown in ``width`` cells: all that fit next to a readable title and status."""
        shown = list(self.columns)
        for col in DROP_ORDER:
            # Each column takes its text plus one cell of padding either side and one border cell.
            need = sum(self.natural[c] for c in shown if c != "title") + self.title_min + 3 * len(shown) + 1
            if need <= width:
                break
            if col in shown:
                shown.remove(col)
        return tuple(shown)

    def table(self, width: int) -> Table:
        columns = self.fitting_columns(width)
        table = Table(title=Text(self.title) if self.title else None, expand=False, show_lines=False)
        for col in columns:
            if col == "title":
                table.add_column(col, min_width=self.title_min, overflow="fold")  # long words fold, never cut
            else:
                table.add_column(col, no_wrap=True, justify="right" if col in ("tokens", "cost") else "left")
        for row in self.rows:
            table.add_row(*(row[c] for c in columns))
        return table

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        yield self.table(options.max_width)


def agents_table(agents: list[Agent], title: str | None = None, *, compact: bool = False) -> AgentsTable:
    """Agents as a table (see :class:`AgentsTable`); ``compact`` for one project (no id, environment, project)."""
    return AgentsTable(agents, title, compact=compact)


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
        table.add_row(marks.get(f.status, "~"), Text(f.path), "bin" if f.binary else f"+{f.additions}",
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


def message_text(message: api.AgentMessage) -> Text:
    """One message of a conversation: who, when, what (and the tools it used)."""
    stamp = time.strftime("%H:%M:%S", time.localtime(message.time))
    text = Text(f"{stamp}  ")
    text.append(message.role, style="bold cyan" if message.role == "user" else "bold")
    if message.tools:
        text.append(f"  [{', '.join(message.tools)}]", style="bright_black")
    text.append("\n" + message.text if message.text else "")
    if message.error:
        text.append(f"\n{message.error}", style="red")
    return text


def audit_line(entry: api.AuditEntry) -> Text:
    stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(entry.ts))
    line = Text(f"{stamp}  ")
    line.append(entry.event, style="bold")
    if entry.agent_id:
        line.append(f"  {entry.agent_id}")
    detail = {k: v for k, v in entry.detail.items() if v not in (None, "")}
    if detail:
        line.append("  " + " ".join(f"{k}={v}" for k, v in detail.items()), style="bright_black")
    return line
