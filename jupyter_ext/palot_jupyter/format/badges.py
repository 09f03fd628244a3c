"""Numbers, times and badges: the small pieces every part of the dashboard shows (pure).

Icons are the API's (``palot.api.STATUS_STYLE``), as in the terminal; colours are the seed's status system.
"""

from __future__ import annotations

import html
import time

from palot.api import STATUS_STYLE, Agent, AgentStatus
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
#: Statuses whose elapsed time keeps growing (the list ticks these rows).
LIVE = (AgentStatus.PROVISIONING, AgentStatus.RUNNING, AgentStatus.WAITING, AgentStatus.MIGRATING)


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
