"""Moves: an agent taken, code and conversation, to another environment; its steps, result and history."""

from __future__ import annotations

from pydantic import BaseModel, Field

from .agents import AgentRef, ContainerOptions
from .words import EnvironmentType

#: The steps of a move, in order. Every step is journaled before and after it runs.
STEPS = ("pause", "checkpoint", "export", "provision", "import_code", "import_session", "setup", "resume",
         "cleanup")


class MigrationResult(BaseModel):
    """What a finished move reports."""

    migration_id: str
    agent_id: str
    source: str  # environment type
    target: str
    state: str  # "completed"
    environment_id: str
    directory: str
    branch: str
    messages: int
    files_changed: int
    processes_restarted: list[str]
    resumed: bool
    resume_note: str | None = None
    seconds: float


class MoveRecord(BaseModel):
    """One move of an agent, as the history shows it."""

    id: str
    agent_id: str
    target_type: str
    state: str  # running, committed, completed, rolled_back, failed
    step: str | None = None
    error: str | None = None
    created_at: float
    updated_at: float


class MoveRequest(AgentRef):
    target: EnvironmentType = Field(description="worktree, container or cloud")
    options: ContainerOptions | None = Field(None, description="container limits (target container)")
    resume: bool | None = Field(None, description="resume the agent's turn after the move (default: if it was running)")
