"""The words of the vocabulary: environment types, permission modes, replies, an agent's statuses and
how front ends show them, and the base of every request.

Every other module of :mod:`palot.api` builds on these; this one imports only pydantic.
"""

from __future__ import annotations

import time
from enum import Enum
from typing import Literal

from pydantic import BaseModel, ConfigDict

#: Changes whenever a request, response or event changes incompatibly.
API_VERSION = 1

ENVIRONMENT_TYPES = ("worktree", "container", "cloud", "external")
#: Where a new agent (or a move) can go; ``external`` sessions are only discovered, never created.
TARGET_TYPES = ("worktree", "container", "cloud")
PERMISSION_MODES = ("default", "ask", "auto")
REPLIES = ("once", "always", "reject")

EnvironmentType = Literal["worktree", "container", "cloud"]
PermissionMode = Literal["default", "ask", "auto"]
Reply = Literal["once", "always", "reject"]


class AgentStatus(str, Enum):
    """An agent's state, derived from its session, permissions and errors."""

    PROVISIONING = "provisioning"
    RUNNING = "running"
    WAITING = "waiting"  # a permission request needs a person
    PAUSED = "paused"  # aborted; prompt it again to resume
    COMPLETED = "completed"
    FAILED = "failed"
    MIGRATING = "migrating"
    ARCHIVED = "archived"

    @property
    def active(self) -> bool:
        return self in (AgentStatus.PROVISIONING, AgentStatus.RUNNING, AgentStatus.MIGRATING)


SETTLED = frozenset({AgentStatus.COMPLETED, AgentStatus.FAILED, AgentStatus.PAUSED, AgentStatus.WAITING,
                     AgentStatus.ARCHIVED})

#: How every front end shows a status: icon and colour (a rich/CSS colour name).
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
#: The icon of each kind of activity item.
KIND_ICON = {
    "read": "📖", "write": "📝", "edit": "✏️ ", "bash": "▶", "grep": "🔍", "glob": "🔍", "todo": "☑",
    "task": "⇢", "web": "🌐", "message": "💬", "thinking": "…", "error": "✕", "tool": "•",
}


def elapsed(since: float, now: float | None = None) -> str:
    """``42s``, ``3m05s``, ``2h10m``: how long ago ``since`` was."""
    secs = int((now or time.time()) - since)
    if secs < 60:
        return f"{secs}s"
    if secs < 3600:
        return f"{secs // 60}m{secs % 60:02d}s"
    return f"{secs // 3600}h{(secs % 3600) // 60:02d}m"


def human_bytes(n: int | None) -> str:
    """``512 B``, ``3.4 MB``, ``1.2 GB`` (1024-based); ``?`` when unknown."""
    if n is None:
        return "?"
    size = float(n)
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1024 or unit == "TB":
            break
        size /= 1024
    else:
        unit = "TB"
    return f"{int(size)} B" if unit == "B" else f"{size:.1f} {unit}"


class _Request(BaseModel):
    """The base of every request: an unknown field is a mistake, never ignored."""

    model_config = ConfigDict(extra="forbid")


class Done(BaseModel):
    """The answer of an action that returns nothing but its success."""

    ok: bool = True
    message: str = ""


class Empty(_Request):
    pass
