"""Deriving an agent's status from what OpenCode reports (pure, tested without a server)."""

from __future__ import annotations

from dataclasses import dataclass, field

from .models import AgentStatus


@dataclass
class LiveState:
    """What the event stream has told Palot about one agent's session."""

    busy: bool = False
    prompt_pending: bool = False  # a prompt was sent and its turn has not started yet
    aborted: bool = False
    error: str | None = None
    permissions: dict[str, dict] = field(default_factory=dict)
    tokens: int = 0
    cost: float = 0.0
    provisioning: bool = False
    migrating: bool = False


def derive_status(live: LiveState, *, archived: bool = False) -> AgentStatus:
    """Map session status, pending permissions and errors to one agent status.

    Order matters: a pending permission means waiting even though the session
    is busy; an abort is a pause (the user can resume), any other error a failure.
    """
    if archived:
        return AgentStatus.ARCHIVED
    if live.migrating:
        return AgentStatus.MIGRATING
    if live.provisioning:
        return AgentStatus.PROVISIONING
    if live.permissions:
        return AgentStatus.WAITING
    if live.busy or live.prompt_pending:
        return AgentStatus.RUNNING
    if live.aborted:
        return AgentStatus.PAUSED
    if live.error:
        return AgentStatus.FAILED
    return AgentStatus.COMPLETED
