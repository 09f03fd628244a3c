"""The detail panel of one agent: its header, which actions make sense, its activity, diff and pending
permissions (pure)."""

from __future__ import annotations

import time
from typing import Any

from palot.api import KIND_ICON, ActivityItem, Agent, AgentDiff, AgentStatus, parse_hunks

from .badges import cost, elapsed, environment_badge, esc, note, status_badge, tokens

DIFF_LINES_PER_FILE = 400


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
        # Only a cloud agent's environment can be paused (its work saved, its container stopped) and resumed.
        "pause": steerable and agent.environment.type == "cloud" and agent.status != AgentStatus.PAUSED,
        "resume": steerable and agent.environment.type == "cloud" and agent.status == AgentStatus.PAUSED,
    }


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
    notice = (f'<div class="palot-muted">{esc(agent.notice)}</div>'
              if agent.notice and not (error and agent.notice == agent.error) else "")
    return (
        f'<div class="palot-detail-title">{esc(agent.title)}</div>'
        f'<div class="palot-detail-line">{status_badge(agent.status, note(agent))} · '
        f'{environment_badge(env.type)} · <span title="{esc(agent.project_path)}">{esc(agent.project_name)}</span>'
        f' · <span class="palot-muted">{esc(agent.id)}</span></div>'
        f'<div class="palot-detail-line">{elapsed(agent, now)} · {tokens(agent.tokens)} tokens · '
        f'{cost(agent.cost)}{budget_text(agent)}{model}</div>'
        f'<div class="palot-detail-line">{branch}{base}</div>{error}{paused}{notice}{read_only}'
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
