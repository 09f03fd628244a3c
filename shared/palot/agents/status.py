"""Deriving an agent's status from what OpenCode reports (pure, tested without a server)."""

from __future__ import annotations

from dataclasses import dataclass, field

from .models import AgentStatus

# The error of an agent whose turn ended because its OpenCode server stopped (killed, crashed) mid-turn.
INTERRUPTED = "interrupted: the OpenCode server stopped during this turn; prompt the agent to continue"


@dataclass
class LiveState:
    """What the event stream has told Palot about one agent's session."""

    busy: bool = False
    prompt_pending: bool = False  # a prompt was sent and its turn has not started yet
    aborted: bool = False
    error: str | None = None
    env_error: str | None = None  # the environment failed the agent (out of memory, engine gone); sticky until prompted
    permissions: dict[str, dict] = field(default_factory=dict)
    tokens: int = 0
    cost: float = 0.0
    provisioning: bool = False
    migrating: bool = False


def derive_status(live: LiveState, *, archived: bool = False) -> AgentStatus:
    """Map session status, pending permissions and errors to one agent status.

    Order matters: a pending permission means waiting even though the session
    is busy; an abort is a pause (the user can resume), any other error a failure;
    an environment that failed its agent overrides a "busy" it can no longer report.
    """
    if archived:
        return AgentStatus.ARCHIVED
    if live.migrating:
        return AgentStatus.MIGRATING
    if live.provisioning:
        return AgentStatus.PROVISIONING
    if live.permissions:
        return AgentStatus.WAITING
    if (live.busy or live.prompt_pending) and not live.env_error:
        return AgentStatus.RUNNING
    if live.aborted:
        return AgentStatus.PAUSED
    if live.error or live.env_error:
        return AgentStatus.FAILED
    return AgentStatus.COMPLETED
