"""Terminal rendering of agents, activity, diffs, events and the service (used by the CLI and the demo).

Everything here builds ``Text`` from what users and agents wrote (titles, prompts,
paths, branches, errors, model output), never markup strings: a title such as
``fix [/write]`` is shown as written instead of breaking the listing.
"""

from __future__ import annotations

import json
import re
import time
from typing import Any

from rich.console import Console, ConsoleOptions, RenderResult
from rich.table import Table
from rich.text import Text

from . import api
from .api import KIND_ICON, STATUS_STYLE, ActivityItem, Agent, AgentDiff, AgentStatus, elapsed


def status_text(status: AgentStatus) -> Text:
    icon, style = STATUS_STYLE[status]
    return Text(f"{icon} {status.value}", style=style)


def console(**kwargs: Any) -> Console:
    """A Console that prints strings as they are: no markup, no ``:emoji:`` codes (style with ``Text``)."""
    return Console(markup=False, emoji=False, **kwargs)


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


def service_status(status: api.ServiceStatus, socket: str) -> Text:
    """``palot service status``: the service, its OpenCode server and who uses it; one line each, never
    wrapped (print it with ``soft_wrap=True``), so a path can be copied whole."""
    lines = Text()
    opencode = (f"{status.opencode_url} (pid {status.opencode_pid}), "
                f"{'connected' if status.opencode_connected else 'not connected'}, "
                f"{status.opencode_restarts} restart(s)" if status.opencode_url else "not started")
    service = (f"running, Palot {status.palot_version} (API {status.api_version}), pid {status.pid}, "
               f"up {elapsed(status.started_at)}")
    rows: list[tuple[str, str | Text]] = [
        ("service", service),
        ("home", status.home), ("socket", socket), ("tcp", status.tcp or "off"), ("opencode", opencode),
        ("agents", str(status.agents)), ("clients", f"{status.clients} watching events"),
    ]
    if status.spend is not None:
        rows.append(("spend", f"{spend_text(status.spend)} ({status.spend.day})"))
    rows.append(("inbox", f"{status.inbox} waiting on you (palot inbox)" if status.inbox else "nothing waiting"))
    if status.warm_containers:
        rows.append(("warm", f"{status.warm_containers} container(s) started ahead of need"))
    if status.settings_error:
        rows.append(("settings", Text(status.settings_error, "red")))
    for name, value in rows:
        if lines:
            lines.append("\n")
        lines.append(f"{name:<10}", style="bold")
        lines.append(value)
    return lines


def _usd(value: float) -> str:
    return f"${value:.2f}"


def spend_text(spend: api.Spend, *, tokens: bool = True) -> str:
    """``$0.42 of $20.00, 120,000 of 1,000,000 tokens``: today's spend, against the day's budget when set
    (the tokens without a token budget only with ``tokens``)."""
    text = _usd(spend.usd) + (f" of {_usd(spend.budget_usd)}" if spend.budget_usd is not None else "")
    if spend.budget_tokens is not None:
        text += f", {spend.tokens:,} of {spend.budget_tokens:,} tokens"
    elif spend.tokens and tokens:
        text += f", {spend.tokens:,} tokens"
    return text


def overview_line(status: api.ServiceStatus) -> Text | None:
    """The line under ``palot agents list``: ``today: $0.42 of $20.00 · 3 waiting on you (palot inbox)``, only
    the parts that apply (None when none does)."""
    parts: list[Text] = []
    spend = status.spend
    if spend is not None and (spend.usd or spend.tokens or spend.budget_usd is not None
                              or spend.budget_tokens is not None):
        over = ((spend.budget_usd is not None and spend.usd >= spend.budget_usd)
                or (spend.budget_tokens is not None and spend.tokens >= spend.budget_tokens))
        parts.append(Text(f"today: {spend_text(spend, tokens=False)}", "red" if over else ""))
    if status.inbox:
        parts.append(Text(f"{status.inbox} waiting on you (palot inbox)", "yellow"))
    if status.settings_error:
        parts.append(Text("settings.toml has a mistake (palot settings)", "red"))
    return Text(" · ").join(parts) if parts else None


def budget_text(agent: Agent) -> Text | None:
    """``budget: $0.12 of $0.50 · 12,000 of 500,000 tokens`` for an agent with a budget, else None."""
    if agent.budget_usd is None and agent.budget_tokens is None:
        return None
    parts = []
    if agent.budget_usd is not None:
        cloud = f" (incl. ${agent.environment_cost:.4f} cloud)" if agent.environment_cost else ""
        parts.append(f"${agent.total_cost:.2f} of {_usd(agent.budget_usd)}{cloud}")
    if agent.budget_tokens is not None:
        parts.append(f"{agent.tokens:,} of {agent.budget_tokens:,} tokens")
    return Text.assemble(("budget:", "bold"), " " + " · ".join(parts))


def inbox_request(item: api.InboxItem) -> str:
    """What is asked, exactly: the command(s) or path(s), else OpenCode's summary."""
    return "\n".join(item.patterns) if item.patterns else item.summary


def inbox_deadline(item: api.InboxItem, now: float | None = None) -> str:
    """``in 4m05s (rule 2: ask bash 'git push*')`` when a rule answers the request at a deadline, else ""."""
    if item.deadline is None:
        return item.rule or ""
    now = now or time.time()
    left = "now" if item.deadline <= now else "in " + elapsed(now, item.deadline)
    return left + (f" ({item.rule})" if item.rule else "")


def inbox_table(items: list[api.InboxItem]) -> Text:
    """``palot inbox``: one block per pending request, oldest first. Ids and the exact command or path are
    never cut or wrapped mid-word by a narrow terminal: they are what you copy and what you approve."""
    out = Text()
    for n, item in enumerate(sorted(items, key=lambda i: i.asked_at)):
        if n:
            out.append("\n")
        out.append_text(Text.assemble((item.permission_id, "bold"), "  ", (item.agent_id, "cyan"),
                                      f" “{item.agent_title}”  {item.project_name}  ",
                                      (f"waited {elapsed(item.asked_at)}", "bright_black"), "\n"))
        for line in inbox_request(item).splitlines() or [""]:
            out.append_text(Text.assemble("  ", (item.tool, "yellow"), f": {line}\n"))
        deadline = inbox_deadline(item)
        if deadline:
            out.append_text(Text.assemble("  ", ("answered " + deadline, "red"), "\n"))
        if item.note:
            out.append_text(Text.assemble("  ", (item.note, "yellow"), "\n"))
    return out


def inbox_line(item: api.InboxItem) -> Text:
    """One answered request: ``ag_1 “title”  bash  npm test``."""
    return Text.assemble(f"  {item.agent_id} “{item.agent_title}”  ", (item.tool, "yellow"),
                         "  " + inbox_request(item).replace("\n", "; "))


#: How each outcome of a bulk action looks: icon and colour.
BULK_STYLE = {"would": ("→", "cyan"), "done": ("✓", "green"), "skipped": ("·", "bright_black"), "failed": ("✕", "red")}


def bulk_line(item: api.BulkItem) -> Text:
    """One agent of a bulk action: ``→ ag_1 completed worktree web “title” — would archive it …``."""
    icon, colour = BULK_STYLE[item.outcome]
    return Text.assemble((f"{icon} ", colour), (item.agent_id, "bold"),
                         f"  {item.status.value:<10} {item.environment:<9} {item.project_name}  “{item.title}”"
                         f"  (changed {api.elapsed(item.updated_at)} ago)\n    ", (item.message, colour))


def bulk_summary(result: api.BulkResult) -> Text:
    """What a bulk action did (or would do), counted."""
    if not result.items:
        return Text("no agent matches these filters: nothing to do")
    counts = [f"{result.count(o)} {word}" for o, word in (
        ("would", f"to {result.operation}"), ("done", "done"), ("skipped", "skipped"), ("failed", "failed"))
        if result.count(o)]
    return Text(f"{len(result.items)} agent{'s' if len(result.items) != 1 else ''} selected: " + ", ".join(counts))


_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")


def _toml_key(key: str) -> str:
    return key if _BARE_KEY.fullmatch(key) else json.dumps(key)


def _toml_value(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)  # strings, numbers, booleans and arrays read as TOML


def toml_text(settings: dict[str, Any], prefix: str = "") -> list[str]:
    """Settings as TOML lines (as settings.toml would say them); None values are left out."""
    lines: list[str] = []
    tables: list[tuple[str, dict[str, Any]]] = []
    arrays: list[tuple[str, list[dict[str, Any]]]] = []
    for key, value in settings.items():
        name = prefix + _toml_key(str(key))
        if value is None:
            continue
        if isinstance(value, dict):
            tables.append((name, value))
        elif isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
            arrays.append((name, value))
        else:
            lines.append(f"{_toml_key(str(key))} = {_toml_value(value)}")
    for name, table in tables:
        body = toml_text(table, name + ".")
        if body and body[0]:  # keys of its own (a table of only tables needs no header)
            lines += ["", f"[{name}]"]
        lines += body
    for name, array in arrays:
        for entry in array:
            lines += ["", f"[[{name}]]", *toml_text(entry, name + ".")]
    return lines


def settings_text(view: api.SettingsView) -> Text:
    """``palot settings``: where the file is, when it was read, its mistake (red), the settings in use."""
    loaded = (time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(view.loaded_at)) + f" ({elapsed(view.loaded_at)} ago)"
              if view.loaded_at else "never: the defaults hold" + ("" if view.error else " (no settings file)"))
    text = Text.assemble(("file      ", "bold"), view.path, "\n", ("loaded    ", "bold"), loaded)
    if view.error:
        text.append("\n")
        text.append("error     ", "bold red")
        text.append(view.error, "red")
    body = "\n".join(toml_text(view.settings)).strip("\n")
    text.append("\n\n" + (body or "# no settings: every default holds"))
    return text


class EventPrinter:
    """Palot events as lines for ``palot agents watch``: status changes, finished steps, permissions, moves."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self.titles: dict[str, str] = {}
        self.statuses: dict[str, AgentStatus] = {}
        self.shown: set[str] = set()

    def _who(self, agent_id: str | None) -> Text:
        name = self.titles.get(agent_id or "", agent_id or "palot")
        return Text(f"{name[:24]:>24} ", "bold cyan")

    def line(self, event: api.Event) -> Text | None:
        """The line of ``event``, or None when it adds nothing (a repeated status, an unfinished step)."""
        if event.agent is not None:
            self.titles[event.agent.id] = event.agent.title
        kind = event.type
        if kind in (api.AGENT_CREATED, api.AGENT_UPDATED) and event.agent is not None:
            agent = event.agent
            if self.statuses.get(agent.id) == agent.status:
                return None
            self.statuses[agent.id] = agent.status
            line = Text.assemble(self._who(agent.id), status_text(agent.status))
            if agent.error and agent.status == AgentStatus.FAILED:
                line.append(f"  {agent.error}", style="red")
            return line
        if kind == api.AGENT_REMOVED:
            return Text.assemble(self._who(event.agent_id), ("removed", "bright_black"))
        if kind == api.ACTIVITY and event.item is not None:
            item = event.item
            if item.state not in ("completed", "error") or item.kind == "thinking" or item.id in self.shown:
                return None
            self.shown.add(item.id)
            return Text.assemble(self._who(event.agent_id), activity_line(item))
        if kind == api.FILE_CHANGED and event.path:
            return Text.assemble(self._who(event.agent_id), ("changed ", "bright_black"), event.path)
        if kind == api.PERMISSION_ASKED and event.permission is not None:
            p = event.permission
            return Text.assemble(self._who(event.agent_id), ("waiting for permission", "yellow"),
                                 f" {p.id}: {p.summary} — `palot agents reply {event.agent_id} once|always|reject`")
        if kind == api.PERMISSION_ANSWERED:
            return Text.assemble(self._who(event.agent_id), f"permission {event.permission_id}: {event.reply}")
        if kind == api.MOVE_PROGRESS:
            return Text.assemble(self._who(event.agent_id), (f"move {event.step or ''}: ", "magenta"),
                                 event.message or "")
        if kind == api.NOTIFICATION and event.notification is not None:
            n = event.notification
            return Text.assemble(self._who(event.agent_id), (n.title, "bold"), f"  {n.body}" if n.body else "",
                                 f"  → {n.action}" if n.action else "")
        if kind == api.RESYNC:
            return Text(event.message or "the Palot service restarted", "yellow")
        return None

    def show(self, event: api.Event) -> None:
        line = self.line(event)
        if line is not None:
            self.console.print(line, soft_wrap=True)


# --- templates ---------------------------------------------------------------------------------

_TEMPLATE_DEFAULTS = ("title", "environment", "model", "permission_mode", "setup_script")


def template_scope(template: api.Template) -> str:
    return template.project or "every project"


def template_spawn_command(template: api.Template) -> str:
    """The command line that spawns an agent from the template (PATH stands for the project)."""
    where = template.project or "PATH"
    fills = "".join(f" --var {name}=…" for name in template.variables)
    return f"palot agents spawn {where} --template {template.name}{fills}"


def templates_text(templates: list[api.Template]) -> Text:
    """One block per template: its name and scope, the variables it needs, its prompt's first line."""
    out = Text()
    for t in templates:
        out.append(t.name, "bold")
        out.append(f"  {template_scope(t)}\n", "bright_black")
        out.append("  needs: " + (", ".join(t.variables) if t.variables else "no variables") + "\n")
        lines = t.prompt.strip().splitlines() or [""]
        more = "…" if len(lines[0]) > 100 or len(lines) > 1 else ""
        out.append(f"  {lines[0][:100]}{more}\n", "bright_black")
    return out


def template_text(template: api.Template) -> Text:
    """The whole template: scope, variables, defaults, prompt, and how to spawn from it."""
    out = Text()
    out.append(template.name, "bold")
    out.append(f"  {template_scope(template)}\n", "bright_black")
    out.append("variables: " + (", ".join(template.variables) if template.variables else "none") + "\n")
    for name in _TEMPLATE_DEFAULTS:
        value = getattr(template, name)
        if value is not None:
            out.append(f"{name}: {value}\n")
    out.append("prompt:\n", "bright_black")
    out.append(template.prompt.rstrip("\n") + "\n")
    out.append(f"spawn with: {template_spawn_command(template)}", "bright_black")
    return out


def gc_text(report: api.GcReport) -> Text:
    """``palot gc``: one block per orphan (kind, name, size, why; the work it holds and the command that keeps
    it), then what was done. Names and commands are never cut: they are what you copy."""
    out = Text()
    if not report.orphans:
        out.append("Nothing is orphaned: every worktree, palot/* branch, container and file of Palot has an agent.\n")
    for o in report.orphans:
        mark = ("removed", "green") if o.removed else (("failed", "red") if o.error else
                                                       (("safe", "blue") if o.safe else ("holds work", "yellow")))
        out.append_text(Text.assemble((o.kind, "bold"), f"  {o.name}  ", (api.human_bytes(o.size), "cyan"), "  ",
                                      mark, "\n"))
        out.append_text(Text.assemble("  ", (o.why, "bright_black"), "\n"))
        if o.project and o.kind in ("branch", "worktree"):
            out.append_text(Text.assemble("  in ", o.project, "\n"))
        if o.work:
            out.append_text(Text.assemble("  ", ("work: ", "yellow"), o.work, "\n"))
        if o.keep and not o.removed:
            out.append_text(Text.assemble("  keep it: ", (o.keep, "bold"), "\n"))
        if o.error:
            out.append_text(Text.assemble("  ", ("could not remove: ", "red"), o.error, "\n"))
    total = sum(o.size or 0 for o in report.orphans)
    safe = [o for o in report.orphans if o.safe and not o.removed]
    unsafe = [o for o in report.orphans if not o.safe and not o.removed]
    if report.removing:
        out.append(f"removed {report.removed} of {len(report.orphans)} ({api.human_bytes(report.freed)})")
        if unsafe:
            out.append(f"; kept {len(unsafe)} that hold work: keep it with the commands above, "
                       "or remove them with `palot gc --yes --force` (their work is lost)")
        out.append("\n")
    elif report.orphans:
        out.append(f"{len(report.orphans)} orphan(s), {api.human_bytes(total)}; "
                   f"`palot gc --yes` removes the {len(safe)} safe one(s)"
                   + (f", not the {len(unsafe)} that hold work" if unsafe else "") + "\n")
    for why in report.unchecked:
        out.append_text(Text.assemble(("not checked: ", "yellow"), why, "\n"))
    return out


def du_text(use: api.DiskUse, agents: dict[str, str] | None = None) -> Text:
    """``palot du``: per agent (with its title when known), per project, per environment type, then each item."""
    out = Text()
    for heading, sums in (("agent", use.by_agent), ("project", use.by_project),
                          ("environment", use.by_environment)):
        out.append_text(Text(f"by {heading}\n", "bold"))
        for key, size in sorted(sums.items(), key=lambda kv: -kv[1]):
            title = f" “{agents[key]}”" if agents and key in agents else ""
            out.append_text(Text.assemble(f"  {api.human_bytes(size):>9}  ", key, title, "\n"))
        if not sums:
            out.append("  (nothing)\n")
    out.append_text(Text("items\n", "bold"))
    for i in use.items:
        out.append_text(Text.assemble(f"  {api.human_bytes(i.bytes):>9}  ", (i.kind, "cyan"), f"  {i.name}",
                                      (f"  {i.agent_id}" if i.agent_id else ""), "\n"))
    out.append_text(Text.assemble(("total ", "bold"), api.human_bytes(use.total), "\n"))
    for why in use.unchecked:
        out.append_text(Text.assemble(("not measured: ", "yellow"), why, "\n"))
    return out
