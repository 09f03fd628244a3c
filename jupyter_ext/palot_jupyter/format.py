"""What the dashboard shows, as plain data and HTML strings (pure: tested without a kernel or browser).

Icons are the API's (``palot.api.STATUS_STYLE``, ``KIND_ICON``), as in the terminal; colours are the seed's status
system. Widgets only put these strings on screen.
"""

from __future__ import annotations

import html
import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from palot.api import (
    KIND_ICON,
    STATUS_STYLE,
    ActivityItem,
    Agent,
    AgentDiff,
    AgentStatus,
    InboxItem,
    MigrationResult,
    Notification,
    Spend,
    parse_hunks,
)
from palot.api import elapsed as _elapsed

#: The seed's status colours (terminal style names mapped to CSS).
STATUS_COLOR = {
    AgentStatus.PROVISIONING: "#1b7c83",
    AgentStatus.RUNNING: "#1a7f37",
    AgentStatus.WAITING: "#9a6700",
    AgentStatus.PAUSED: "#6e7781",
    AgentStatus.COMPLETED: "#0969da",
    AgentStatus.FAILED: "#cf222e",
    AgentStatus.MIGRATING: "#8250df",
    AgentStatus.ARCHIVED: "#6e7781",
}
#: Environment badges: icon and the word users say ("local" for a worktree on this machine).
#: Text symbols rather than emoji, so the badge renders even where no emoji font is installed.
ENVIRONMENT_BADGE = {
    "worktree": ("⌂", "local"),
    "container": ("⬢", "container"),
    "cloud": ("☁", "cloud"),
    "external": ("↪", "external"),
    "none": ("·", "none"),
}
#: Sort rank: what needs a person first (failed, waiting), then work in progress, then done.
_RANK = {
    AgentStatus.FAILED: 0, AgentStatus.WAITING: 0,
    AgentStatus.RUNNING: 1, AgentStatus.PROVISIONING: 1, AgentStatus.MIGRATING: 1,
    AgentStatus.PAUSED: 2, AgentStatus.COMPLETED: 3, AgentStatus.ARCHIVED: 4,
}
ATTENTION = (AgentStatus.FAILED, AgentStatus.WAITING)
#: Statuses whose elapsed time keeps growing (the list ticks these rows).
LIVE = (AgentStatus.PROVISIONING, AgentStatus.RUNNING, AgentStatus.WAITING, AgentStatus.MIGRATING)
DIFF_LINES_PER_FILE = 400


def esc(text: object) -> str:
    return html.escape(str(text), quote=True)


# --- numbers and badges -------------------------------------------------------


def tokens(n: int) -> str:
    """``980``, ``45.2k``, ``1.2M``."""
    if n < 1000:
        return str(n)
    if n < 1_000_000:
        return f"{n / 1000:.1f}k".replace(".0k", "k")
    return f"{n / 1_000_000:.1f}M".replace(".0M", "M")


def cost(usd: float) -> str:
    """``$2.34``; cents' fractions for the small costs of one agent (``$0.0042``)."""
    if 0 < usd < 0.01:
        return f"${usd:.4f}"
    return f"${usd:.2f}"


def elapsed(agent: Agent, now: float | None = None) -> str:
    """How long the agent has been working: until now while live, until its last change once settled."""
    end = (now or time.time()) if agent.status in LIVE else max(agent.updated_at, agent.created_at)
    return _elapsed(agent.created_at, end)


def ago(t: float, now: float | None = None) -> str:
    """Coarse on purpose (``just now``, ``3m ago``, ``2h ago``), so the overview does not change every second."""
    secs = int((now or time.time()) - t)
    if secs < 60:
        return "just now"
    if secs < 3600:
        return f"{secs // 60}m ago"
    if secs < 86400:
        return f"{secs // 3600}h ago"
    return f"{secs // 86400}d ago"


def status_icon(status: AgentStatus) -> str:
    return STATUS_STYLE[status][0]


def status_badge(status: AgentStatus, title: str = "") -> str:
    """``<span …>✓ completed</span>`` coloured by status; ``title`` becomes its tooltip."""
    tip = f' title="{esc(title)}"' if title else ""
    return (f'<span class="palot-badge palot-st-{status.value}" style="color:{STATUS_COLOR[status]}"{tip}>'
            f"{status_icon(status)} {status.value}</span>")


def environment_badge(env_type: str) -> str:
    icon, word = ENVIRONMENT_BADGE.get(env_type, ("·", env_type))
    return f'<span class="palot-badge palot-env" title="{esc(env_type)}">{icon} {esc(word)}</span>'


def note(agent: Agent) -> str:
    """The one line that says why an agent needs a person (error, pending permission), else ''."""
    if agent.status == AgentStatus.FAILED and agent.error:
        return agent.error
    if agent.status == AgentStatus.WAITING and agent.permissions:
        return "needs approval: " + "; ".join(p.summary for p in agent.permissions)
    if agent.status == AgentStatus.PAUSED and agent.pause_reason:
        return f"paused by Palot: {agent.pause_reason}"
    return ""


# --- the agent list -------------------------------------------------------------

ROW_CELLS = ("status", "title", "environment", "project", "elapsed", "tokens", "cost")


def row_cells(agent: Agent, now: float | None = None) -> dict[str, str]:
    """The text of each cell of the agent's row (``title`` is plain text, the rest HTML)."""
    return {
        "status": status_badge(agent.status, note(agent)),
        "title": agent.title,
        "environment": environment_badge(agent.environment.type),
        "project": f'<span title="{esc(agent.project_path)}">{esc(agent.project_name)}</span>',
        "elapsed": elapsed(agent, now),
        "tokens": f'{tokens(agent.tokens)} <span class="palot-muted">tokens</span>',
        "cost": cost(agent.cost),
    }


def actions(agent: Agent) -> dict[str, bool]:
    """Which of the detail panel's actions make sense for the agent now."""
    # While it moves, the core refuses to steer the agent, and its files are changing hands.
    steerable = not agent.read_only and agent.status not in (AgentStatus.ARCHIVED, AgentStatus.MIGRATING)
    return {
        "abort": steerable and agent.status in (AgentStatus.RUNNING, AgentStatus.PROVISIONING, AgentStatus.WAITING),
        "apply": not agent.read_only and agent.status not in (AgentStatus.PROVISIONING, AgentStatus.MIGRATING),
        "archive": steerable,
        "send": steerable,
        "permission": steerable and bool(agent.permissions),
        # A retry starts a new agent from a settled one (the service refuses one at work or waiting).
        "retry": not agent.read_only and agent.status in (AgentStatus.FAILED, AgentStatus.PAUSED,
                                                          AgentStatus.COMPLETED, AgentStatus.ARCHIVED),
        "request_changes": steerable,
        # An archived agent's branch can still be proposed; nothing is done to an agent while it moves.
        "create_pr": not agent.read_only and agent.status not in (AgentStatus.PROVISIONING, AgentStatus.MIGRATING),
        "destroy": not agent.read_only and agent.status != AgentStatus.MIGRATING,
    }


# --- moving an agent to another environment -----------------------------------------

#: What the move control calls each environment ("Move to Local Container", "… to a local container").
MOVE_NOUN = {"worktree": "local worktree", "container": "local container", "cloud": "cloud environment"}


def _move_noun(env_type: str) -> str:
    return MOVE_NOUN.get(env_type, env_type)


def can_move(agent: Agent) -> bool:
    """Only Palot's own agents move, and not while they are archived, being set up or already moving."""
    return not agent.read_only and agent.status not in (
        AgentStatus.ARCHIVED, AgentStatus.PROVISIONING, AgentStatus.MIGRATING)


def move_targets(agent: Agent, environments: Iterable[str]) -> tuple[tuple[str, str], ...]:
    """The move dropdown's (label, value) options: every environment but the one the agent is in."""
    return tuple((f"Move to {_move_noun(e).title()}", e) for e in environments if e != agent.environment.type)


def move_plan_html(agent: Agent, target: str) -> str:
    """What a move will do, shown before the user confirms it."""
    branch = f" <code>{esc(agent.environment.branch)}</code>" if agent.environment.branch else ""
    return (
        f'<div class="palot-move-plan"><b>Move to a {esc(_move_noun(target))}?</b> Palot pauses the agent '
        f"(a turn in progress stops, and the agent carries on after the move), then takes its branch{branch} "
        f"with every uncommitted and untracked file, its whole conversation and its running processes into a "
        f"new {esc(_move_noun(target))}, and removes the old {esc(_move_noun(agent.environment.type))}. "
        "Your checkout is not touched. Click <b>Confirm move</b> to start.</div>"
    )


def move_progress_html(target: str, message: str) -> str:
    """A move that is running: its latest step (``[3/9] exporting the conversation …``)."""
    return (f'<div class="palot-moving">{status_icon(AgentStatus.MIGRATING)} Moving to a {esc(_move_noun(target))}'
            f"… {esc(message)}</div>")


def move_result_text(result: MigrationResult) -> str:
    """What a finished move did, in one line."""
    files = "1 changed file" if result.files_changed == 1 else f"{result.files_changed} changed files"
    text = (f"Moved to a {_move_noun(result.target)} in {result.seconds:.1f} s: branch {result.branch}, "
            f"{result.messages} messages, {files}.")
    if result.processes_restarted:
        text += f" Restarted: {', '.join(result.processes_restarted)}."
    if result.resumed:
        text += " The agent carries on where it stopped."
    return text


def sort_key(agent: Agent) -> tuple[int, float, str]:
    """Failed and waiting first, then running, paused, completed, archived; newest first in each."""
    return _RANK.get(agent.status, 5), -agent.created_at, agent.id


@dataclass(frozen=True)
class Filters:
    """The sidebar's choices; ``None`` means any. Archived agents show only when asked for."""

    project: str | None = None  # a project id
    status: str | None = None
    environment: str | None = None

    def matches(self, agent: Agent) -> bool:
        if self.project is not None and agent.project_id != self.project:
            return False
        if self.environment is not None and agent.environment.type != self.environment:
            return False
        if self.status is None:
            return agent.status != AgentStatus.ARCHIVED
        return agent.status.value == self.status


def visible(agents: dict[str, Agent] | list[Agent], filters: Filters) -> list[str]:
    """Ids of the agents the list shows, in display order."""
    values = agents.values() if isinstance(agents, dict) else agents
    return [a.id for a in sorted((a for a in values if filters.matches(a)), key=sort_key)]


ALL = ""  # the value of each filter's "All …" option


@dataclass(frozen=True)
class Facets:
    """Options (label, value) of the sidebar's filters, with counts (of agents that are not archived)."""

    projects: tuple[tuple[str, str], ...]
    statuses: tuple[tuple[str, str], ...]
    environments: tuple[tuple[str, str], ...]


def facets(agents: list[Agent], filters: Filters = Filters()) -> Facets:
    current = [a for a in agents if a.status != AgentStatus.ARCHIVED]
    names = {a.project_id: a.project_name for a in agents}
    by_project = Counter(a.project_id for a in current)
    by_status = Counter(a.status for a in agents)
    by_env = Counter(a.environment.type for a in current)
    projects = [(f"All projects ({len(current)})", ALL)]
    for pid in sorted(names, key=lambda p: (names[p].lower(), p or "")):
        if pid and (by_project[pid] or pid == filters.project):
            projects.append((f"{names[pid]} ({by_project[pid]})", pid))
    statuses = [(f"All but archived ({len(current)})", ALL)]
    for st in AgentStatus:
        if by_status[st] or st.value == filters.status:
            statuses.append((f"{status_icon(st)} {st.value} ({by_status[st]})", st.value))
    environments = [(f"All environments ({len(current)})", ALL)]
    for env in sorted(set(by_env) | ({filters.environment} if filters.environment else set())):
        icon, word = ENVIRONMENT_BADGE.get(env, ("·", env))
        environments.append((f"{icon} {word} ({by_env[env]})", env))
    return Facets(tuple(projects), tuple(statuses), tuple(environments))


# --- overview (nothing selected) -------------------------------------------------


@dataclass(frozen=True)
class OverviewItem:
    agent_id: str
    title: str
    status: AgentStatus
    line: str


@dataclass(frozen=True)
class Overview:
    total: int
    counts: tuple[tuple[AgentStatus, int], ...]
    tokens_today: int
    cost_today: float
    attention: tuple[OverviewItem, ...] = ()
    recent: tuple[OverviewItem, ...] = ()
    running: tuple[OverviewItem, ...] = field(default=())
    spend: Spend | None = None  # today's spend as the service counts it (else the agents' usage is the estimate)
    inbox: int = 0  # permission requests waiting for a person


def start_of_day(now: float | None = None) -> float:
    t = time.localtime(now or time.time())
    return time.mktime((t.tm_year, t.tm_mon, t.tm_mday, 0, 0, 0, 0, 0, -1))


def overview(agents: list[Agent], now: float | None = None, *, recent: int = 3) -> Overview:
    """Counts by status, usage of the agents active today, what needs attention, recent completions.

    "Today" counts the whole usage of every agent that changed since local midnight
    (the core keeps usage per agent, not per day).
    """
    now = now or time.time()
    current = [a for a in agents if a.status != AgentStatus.ARCHIVED]
    by_status = Counter(a.status for a in current)
    counts = tuple((st, by_status[st]) for st in AgentStatus if by_status[st])
    midnight = start_of_day(now)
    today = [a for a in agents if a.updated_at >= midnight]
    attention = tuple(
        OverviewItem(a.id, a.title, a.status, f"{a.status.value} {ago(a.updated_at, now)}: {note(a) or 'see details'}")
        for a in sorted(current, key=sort_key) if a.status in ATTENTION
    )
    running = tuple(
        OverviewItem(a.id, a.title, a.status, f"{a.status.value} for {elapsed(a, now)}")
        for a in sorted(current, key=sort_key) if a.status in LIVE and a.status not in ATTENTION
    )
    done = sorted((a for a in current if a.status == AgentStatus.COMPLETED), key=lambda a: -a.updated_at)
    recent_items = tuple(
        OverviewItem(a.id, a.title, a.status,
                     f"completed {ago(a.updated_at, now)} · {tokens(a.tokens)} tokens · {cost(a.cost)}")
        for a in done[:recent]
    )
    return Overview(
        total=len(current), counts=counts,
        tokens_today=sum(a.tokens for a in today), cost_today=sum(a.cost for a in today),
        attention=attention, recent=recent_items, running=running,
    )


def _today(ov: Overview) -> tuple[str, str, bool]:
    """Today's cost and tokens (with the day's budget, when set), and whether a budget is reached."""
    spend = ov.spend
    if spend is None:
        return cost(ov.cost_today), tokens(ov.tokens_today), False
    usd = cost(spend.usd) + (f" of {cost(spend.budget_usd)}" if spend.budget_usd is not None else "")
    toks = tokens(spend.tokens) + (f" of {tokens(spend.budget_tokens)}" if spend.budget_tokens is not None else "")
    over = ((spend.budget_usd is not None and spend.usd >= spend.budget_usd)
            or (spend.budget_tokens is not None and spend.tokens >= spend.budget_tokens))
    return usd, toks, over


def inbox_count_html(count: int) -> str:
    """``⏳ 3 permission requests wait for you`` (nothing when none does)."""
    if not count:
        return ""
    noun = "permission request waits" if count == 1 else "permission requests wait"
    return f'<div class="palot-inbox-count">⏳ <b>{count}</b> {noun} for you</div>'


def overview_html(ov: Overview) -> str:
    counts = "  ".join(
        f'<span style="color:{STATUS_COLOR[st]}">{status_icon(st)} {st.value}: <b>{n}</b></span>'
        for st, n in ov.counts) or "no agents yet: spawn one with <b>+ Agent</b>"
    noun = "agent" if ov.total == 1 else "agents"
    usd, toks, over = _today(ov)
    return (
        f'<div class="palot-h">OVERVIEW <span class="palot-muted">{ov.total} {noun}</span></div>'
        f'<div class="palot-counts">{counts}</div>'
        f'<div class="palot-today{" palot-over" if over else ""}">Today: <b>{usd}</b> · <b>{toks}</b> tokens</div>'
        f'{inbox_count_html(ov.inbox)}'
    )


def sidebar_today_html(ov: Overview) -> str:
    usd, toks, over = _today(ov)
    return (f'<div class="palot-side-h">TODAY</div><div class="palot-today-big{" palot-over" if over else ""}">'
            f'{usd}</div><div class="palot-muted">{toks} tokens</div>{inbox_count_html(ov.inbox)}')


def overview_item_html(item: OverviewItem) -> str:
    return (f'{status_badge(item.status)} <b>{esc(item.title)}</b>'
            f'<div class="palot-muted palot-item-line">{esc(item.line)}</div>')


# --- detail panel ----------------------------------------------------------------


def detail_header_html(agent: Agent, now: float | None = None) -> str:
    env = agent.environment
    branch = f"Branch: <code>{esc(env.branch)}</code>" if env.branch else ""
    base = f' <span class="palot-muted">from {esc(env.base_commit[:8])}</span>' if env.base_commit else ""
    model = f' · model <code>{esc(agent.model)}</code>' if agent.model else ""
    error = (f'<div class="palot-error">✕ {esc(agent.error)}</div>'
             if agent.status == AgentStatus.FAILED and agent.error else "")
    read_only = ('<div class="palot-muted">An OpenCode session Palot did not start: read only.</div>'
                 if agent.read_only else "")
    paused = (f'<div class="palot-paused">⏸ Paused by Palot: {esc(agent.pause_reason)}</div>'
              if agent.pause_reason and agent.status == AgentStatus.PAUSED else "")
    return (
        f'<div class="palot-detail-title">{esc(agent.title)}</div>'
        f'<div class="palot-detail-line">{status_badge(agent.status, note(agent))} · '
        f'{environment_badge(env.type)} · <span title="{esc(agent.project_path)}">{esc(agent.project_name)}</span>'
        f' · <span class="palot-muted">{esc(agent.id)}</span></div>'
        f'<div class="palot-detail-line">{elapsed(agent, now)} · {tokens(agent.tokens)} tokens · '
        f'{cost(agent.cost)}{budget_text(agent)}{model}</div>'
        f'<div class="palot-detail-line">{branch}{base}</div>{error}{paused}{read_only}'
    )


def budget_text(agent: Agent) -> str:
    """`` · budget $0.50`` / `` · budget 500k tokens`` when the agent has one."""
    limits = [cost(agent.budget_usd) if agent.budget_usd is not None else "",
              f"{tokens(agent.budget_tokens)} tokens" if agent.budget_tokens is not None else ""]
    shown = " and ".join(x for x in limits if x)
    return f' · <span class="palot-muted">budget</span> {shown}' if shown else ""


def activity_entry(item: ActivityItem) -> dict[str, Any]:
    """One line of the activity stream, as the activity widget draws it."""
    return {
        "id": item.id,
        "time": time.strftime("%H:%M:%S", time.localtime(item.time)) if item.time else "",
        "icon": KIND_ICON.get(item.kind, "•").strip(),
        "kind": item.kind,
        "verb": item.verb,
        "target": item.target,
        "summary": item.summary,
        "state": item.state,
    }


_FILE_MARK = {"added": "+", "deleted": "−", "renamed": "→", "modified": "~"}


def diff_html(diff: AgentDiff, *, max_lines: int = DIFF_LINES_PER_FILE) -> str:
    """Files changed with per-file +/−, then each file's hunks, coloured line by line."""
    if not diff.files:
        return '<div class="palot-muted palot-diff-empty">No changes yet.</div>'
    noun = "file" if len(diff.files) == 1 else "files"
    out = [f'<div class="palot-diff"><div class="palot-h">FILES CHANGED ({len(diff.files)}) '
           f'<span class="palot-muted">{len(diff.files)} {noun}, '
           f'<span class="palot-add">+{diff.additions}</span> <span class="palot-del">−{diff.deletions}</span>'
           f'</span></div><table class="palot-files">']
    for f in diff.files:
        counts = "binary" if f.binary else (
            f'<span class="palot-add">+{f.additions}</span> <span class="palot-del">−{f.deletions}</span>')
        label = f"{esc(f.old_path)} → {esc(f.path)}" if f.old_path else esc(f.path)
        tag = {"added": "new", "deleted": "deleted", "renamed": "renamed"}.get(f.status, "")
        out.append(f'<tr class="palot-file"><td class="palot-mark">{_FILE_MARK.get(f.status, "~")}</td>'
                   f'<td class="palot-path">{label}</td><td class="palot-num">{counts}</td>'
                   f'<td class="palot-muted">{tag}</td></tr>')
    out.append("</table>")
    hunks = parse_hunks(diff.patch)
    for f in diff.files:
        file_hunks = hunks.get(f.path)
        body: list[str] = []
        if f.binary:
            body.append('<div class="palot-muted">binary file</div>')
        elif file_hunks is None or not file_hunks.hunks:
            body.append(f'<div class="palot-muted">{"file deleted" if f.status == "deleted" else "no text changes"}'
                        "</div>")
        else:
            shown = 0
            lines: list[str] = []
            for h in file_hunks.hunks:
                lines.append(f'<span class="palot-hunk">@@ -{h.old_start},{h.old_count} '
                             f'+{h.new_start},{h.new_count} @@</span>')
                for line in h.lines:
                    if shown >= max_lines:
                        break
                    cls = {"+": "palot-line-add", "-": "palot-line-del"}.get(line[:1], "palot-line-ctx")
                    lines.append(f'<span class="{cls}">{esc(line) or " "}</span>')
                    shown += 1
            total = sum(len(h.lines) for h in file_hunks.hunks)
            if total > shown:
                lines.append(f'<span class="palot-muted">… {total - shown} more lines</span>')
            body.append(f'<pre class="palot-patch">{"".join(lines)}</pre>')
        out.append(f'<details class="palot-file-diff" open><summary><b>{esc(f.path)}</b> '
                   f'<span class="palot-muted">({"binary" if f.binary else f"+{f.additions} −{f.deletions}"})'
                   f'</span></summary>{"".join(body)}</details>')
    out.append("</div>")
    return "".join(out)


def permission_html(agent: Agent) -> str:
    if not agent.permissions:
        return ""
    items = "".join(f"<li><b>{esc(p.permission)}</b> {esc(', '.join(p.patterns))}</li>" for p in agent.permissions)
    return f'<div class="palot-h">⏳ WAITING FOR APPROVAL</div><ul class="palot-perms">{items}</ul>'


# --- notifications, the inbox --------------------------------------------------------

#: How each kind of notification looks: icon and CSS class (needs you stands out; done is calm).
NOTE_STYLE = {"needs_you": ("⚠", "palot-note-needs-you"), "done": ("✓", "palot-note-done"),
              "info": ("ℹ", "palot-note-info")}


def notification_html(note: Notification) -> str:
    """A notification as the dashboard's toast: "needs you" in amber with ⚠, "done" in green with ✓."""
    icon, cls = NOTE_STYLE.get(note.kind, NOTE_STYLE["info"])
    body = f'<div class="palot-note-body">{esc(note.body)}</div>' if note.body else ""
    action = f'<div class="palot-muted">→ <code>{esc(note.action)}</code></div>' if note.action else ""
    return (f'<div class="palot-note {cls}" title="{esc(note.reason)}">{icon} <b>{esc(note.title)}</b>'
            f'{body}{action}</div>')


def inbox_item_html(item: InboxItem, now: float | None = None) -> str:
    """One pending request: the agent, the exact command or path, how long it waits, a rule's deadline."""
    asks = "\n".join(item.patterns) if item.patterns else item.summary
    deadline = ""
    if item.deadline is not None:
        left = max(0.0, item.deadline - (now or time.time()))
        deadline = (f'<div class="palot-error">{esc(item.rule or "a rule answers it")} in '
                    f'{_elapsed(0, left)}</div>')
    return (f'<b>{esc(item.agent_title)}</b> <span class="palot-muted">{esc(item.agent_id)} · '
            f'{esc(item.project_name)} · waiting {_elapsed(item.asked_at, now)}</span>'
            f'<div><span class="palot-badge">{esc(item.tool)}</span> <code class="palot-asks">{esc(asks)}</code></div>'
            f'{deadline}' + (f'<div class="palot-muted">{esc(item.note)}</div>' if item.note else ''))
