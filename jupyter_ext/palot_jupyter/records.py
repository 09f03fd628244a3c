"""HTML for the detail panel's record tabs (messages, environment, moves, audit) and the service's status.

Pure, like :mod:`format`: every user or model text is escaped (shown as text, never as markup).
"""

from __future__ import annotations

import json
import time

from palot.api import (
    AgentMessage,
    AuditEntry,
    DiskUse,
    EnvironmentStatus,
    GcReport,
    MoveRecord,
    Project,
    PullRequest,
    ServiceStatus,
    SettingsView,
)

from palot.api import human_bytes

from .format import ago, environment_badge, esc


def _when(t: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(t))


def messages_html(messages: list[AgentMessage]) -> str:
    if not messages:
        return '<div class="palot-muted">No messages yet.</div>'
    out = []
    for m in messages:
        tools = f' <span class="palot-muted">tools: {esc(", ".join(m.tools))}</span>' if m.tools else ""
        error = f'<div class="palot-error">✕ {esc(m.error)}</div>' if m.error else ""
        out.append(f'<div class="palot-msg palot-msg-{esc(m.role)}"><b>{esc(m.role)}</b> '
                   f'<span class="palot-muted">{_when(m.time)}</span>{tools}'
                   f'<pre class="palot-msg-text">{esc(m.text)}</pre>{error}</div>')
    return "".join(out)


def environment_html(env: EnvironmentStatus) -> str:
    rows = [("type", environment_badge(env.type)), ("state", esc(env.state)), ("directory", f"<code>{esc(env.directory)}</code>")]
    if env.host_path:
        rows.append(("on this machine", f"<code>{esc(env.host_path)}</code>"))
    if env.branch:
        rows.append(("branch", f"<code>{esc(env.branch)}</code>"))
    if env.base_commit:
        rows.append(("base", f"<code>{esc(env.base_commit[:12])}</code>"))
    if env.dev_ports:
        rows.append(("dev-server ports", f"<code>{esc(env.dev_ports)}</code> (PALOT_PORT={env.dev_port})"))
    for key, value in (env.resources or {}).items():
        rows.append((esc(key), esc(json.dumps(value) if not isinstance(value, str) else value)))
    table = "".join(f'<tr><td class="palot-muted">{k}</td><td>{v}</td></tr>' for k, v in rows)
    note = f'<div class="palot-muted">{esc(env.unavailable)}</div>' if env.unavailable else ""
    return f'<table class="palot-env">{table}</table>{note}'


def moves_html(moves: list[MoveRecord], now: float | None = None) -> str:
    if not moves:
        return '<div class="palot-muted">This agent has not moved.</div>'
    rows = "".join(
        f'<tr><td>{environment_badge(m.target_type)}</td><td>{esc(m.state)}</td>'
        f'<td class="palot-muted">{esc(m.step or "")}</td><td class="palot-muted">{ago(m.created_at, now)}</td>'
        f'<td class="palot-error">{esc(m.error or "")}</td></tr>' for m in moves)
    return f'<table class="palot-moves">{rows}</table>'


def audit_html(entries: list[AuditEntry]) -> str:
    if not entries:
        return '<div class="palot-muted">Nothing in the audit log.</div>'
    rows = "".join(
        f'<tr><td class="palot-muted">{_when(e.ts)}</td><td>{esc(e.event)}</td>'
        f'<td class="palot-muted">{esc(json.dumps(e.detail)[:200]) if e.detail else ""}</td></tr>' for e in entries)
    return f'<table class="palot-audit">{rows}</table>'


def service_html(status: ServiceStatus | None, projects: list[Project], models: list[str]) -> str:
    """The overview's service line: Palot, OpenCode, clients; and what projects and models there are."""
    if status is None:
        return ""
    opencode = (f'OpenCode <span class="palot-ok">connected</span> at <code>{esc(status.opencode_url)}</code>'
                if status.opencode_connected else '<span class="palot-error">OpenCode not connected</span>')
    restarts = f" · {status.opencode_restarts} restart(s)" if status.opencode_restarts else ""
    names = ", ".join(esc(p.name) for p in projects) or "none yet"
    settings = f'<div class="palot-error">{esc(status.settings_error)}</div>' if status.settings_error else ""
    return (f'<div class="palot-service"><span class="palot-muted">Palot {esc(status.palot_version)} service '
            f'(pid {status.pid}, up {ago(status.started_at)})</span> · {opencode}{restarts} · '
            f'{status.clients} client(s)<div class="palot-muted">Projects: {names} · '
            f'{len(models)} model(s) available</div>{settings}</div>')


def settings_html(view: SettingsView) -> str:
    """The settings in use, folded: where the file is, when it was read, its mistake (shown, not folded)."""
    loaded = f"read {ago(view.loaded_at)}" if view.loaded_at else (
        "the defaults hold" if view.error else "no file: the defaults hold")
    error = f'<div class="palot-error">{esc(view.error)}</div>' if view.error else ""
    body = esc(json.dumps(view.settings, indent=2)) if view.settings else "(every default)"
    return (f'{error}<details><summary class="palot-muted">Settings: <code>{esc(view.path)}</code> · {loaded}'
            f'</summary><pre class="palot-settings">{body}</pre></details>')


def pull_request_text(pr: PullRequest) -> str:
    return f"{pr.message} {pr.url}" if pr.url and pr.url not in pr.message else pr.message


def disk_use_html(use: DiskUse) -> str:
    """Disk use per agent, project and environment type, each item folded below."""
    def table(title: str, sums: dict[str, int]) -> str:
        rows = "".join(f'<tr><td>{esc(k)}</td><td>{human_bytes(v)}</td></tr>'
                       for k, v in sorted(sums.items(), key=lambda kv: -kv[1]))
        return f'<div class="palot-muted">{title}</div><table class="palot-du">{rows}</table>'

    items = "".join(f'<tr><td>{esc(i.kind)}</td><td><code>{esc(i.name)}</code></td><td>{human_bytes(i.bytes)}</td>'
                    f'<td class="palot-muted">{esc(i.agent_id or "")}</td></tr>' for i in use.items)
    unchecked = "".join(f'<div class="palot-muted">not measured: {esc(u)}</div>' for u in use.unchecked)
    return (f'<div><b>Disk use: {human_bytes(use.total)}</b></div>{table("by agent", use.by_agent)}'
            f'{table("by project", use.by_project)}{table("by environment", use.by_environment)}'
            f'<details><summary class="palot-muted">{len(use.items)} item(s)</summary>'
            f'<table class="palot-du">{items}</table></details>{unchecked}')


def gc_html(report: GcReport) -> str:
    """Each orphan: kind, name, size, why; the work it holds and the command that keeps it; what was done."""
    if not report.orphans:
        body = '<div class="palot-ok">Nothing is orphaned: everything Palot made has an agent.</div>'
    else:
        rows = []
        for o in report.orphans:
            state = ("removed" if o.removed else "could not remove: " + o.error if o.error
                     else "safe" if o.safe else "holds work")
            keep = f'<div>keep it: <code>{esc(o.keep)}</code></div>' if o.keep and not o.removed else ""
            work = f'<div class="palot-error">{esc(o.work)}</div>' if o.work else ""
            rows.append(f'<tr><td>{esc(o.kind)}</td><td><code>{esc(o.name)}</code><div class="palot-muted">'
                        f'{esc(o.why)}</div>{work}{keep}</td><td>{human_bytes(o.size)}</td>'
                        f'<td>{esc(state)}</td></tr>')
        done = (f'<div>Removed {report.removed} ({human_bytes(report.freed)}).</div>' if report.removing else "")
        body = f'<table class="palot-gc">{"".join(rows)}</table>{done}'
    unchecked = "".join(f'<div class="palot-muted">not checked: {esc(u)}</div>' for u in report.unchecked)
    return body + unchecked
