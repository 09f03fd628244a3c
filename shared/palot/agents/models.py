"""What Palot says about an agent: the public, typed view front ends show."""

from __future__ import annotations

from enum import Enum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


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


PERMISSION_MODES = ("default", "ask", "auto")
ENVIRONMENT_TYPES = ("worktree", "container", "cloud", "external")


class EnvironmentView(BaseModel):
    id: str | None
    type: str
    directory: str  # as the agent's OpenCode server sees it (a container's is always /workspace)
    branch: str | None = None
    base_commit: str | None = None
    # Where the agent's files are on this machine (a worktree, a container's workspace clone, a cloud
    # agent's mirror); None once the environment is gone. Unique per agent, unlike ``directory``.
    host_path: str | None = None
    # What can no longer be read about the agent, and why (e.g. the conversation of an archived container).
    unavailable: str | None = None


class PermissionView(BaseModel):
    """A pending permission request of an agent."""

    id: str
    permission: str  # e.g. "edit", "bash"
    patterns: list[str] = Field(default_factory=list)
    summary: str


class Agent(BaseModel):
    """One agent: one OpenCode session in one environment (a snapshot; frozen because views are shared)."""

    model_config = ConfigDict(frozen=True)

    id: str
    title: str
    status: AgentStatus
    project_id: str | None
    project_path: str
    project_name: str
    environment: EnvironmentView
    session_id: str | None
    prompt: str = ""
    model: str | None = None
    permission_mode: str = "default"
    error: str | None = None
    permissions: list[PermissionView] = Field(default_factory=list)
    tokens: int = 0
    cost: float = 0.0
    created_at: float
    updated_at: float
    read_only: bool = False  # an OpenCode session Palot discovered but does not manage

    @property
    def branch(self) -> str | None:
        return self.environment.branch


class ActivityItem(BaseModel):
    """One structured line of an agent's activity (icon + verb + target + summary)."""

    index: int  # position in the agent's activity, a cursor for "what is new"
    id: str
    time: float
    kind: str  # read, edit, write, bash, grep, glob, todo, task, web, message, thinking, error, tool
    verb: str
    target: str = ""
    summary: str = ""
    state: str = "completed"  # pending, running, completed, error


class AgentMessage(BaseModel):
    id: str
    role: str
    time: float
    text: str
    error: str | None = None
    tools: list[str] = Field(default_factory=list)


class FileChange(BaseModel):
    path: str
    status: str
    additions: int
    deletions: int
    binary: bool = False
    old_path: str | None = None


class AgentDiff(BaseModel):
    """The agent's changes against its base commit, untracked files included."""

    agent_id: str
    base_commit: str | None
    files: list[FileChange]
    additions: int
    deletions: int
    patch: str
    # Set when this is not the environment's live state: e.g. an archived agent's branch as kept in the
    # user's repository, or a cloud mirror as last synced.
    unavailable: str | None = None


class PullRequest(BaseModel):
    """The outcome of "Create PR": the branch is pushed; ``url`` is set when a PR was opened."""

    agent_id: str
    branch: str
    remote: str
    remote_url: str
    pushed: bool
    url: str | None = None
    message: str


class EnvironmentStatus(BaseModel):
    """Where an agent runs and how that environment is doing."""

    agent_id: str
    type: str
    state: str  # running, stopped, missing, archived, engine unreachable …
    directory: str
    host_path: str | None = None
    unavailable: str | None = None  # what cannot be read about the environment now, and why
    branch: str | None
    base_commit: str | None
    resources: dict[str, Any] | None = None
