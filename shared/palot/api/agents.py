"""Agents: the view of one agent (its environment, pending permissions, costs), what it did (activity,
messages, diff), where it runs, and the requests that list, spawn, steer and review it."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from .templates import _template_name
from .words import AgentStatus, EnvironmentType, PermissionMode, Reply, _Request


class EnvironmentView(BaseModel):
    id: str | None = None
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


def permission_summary(permission: str, patterns: list[str]) -> str:
    """How a permission request reads everywhere: ``bash: npm test`` (the tool, then what it asks for)."""
    return f"{permission}: {', '.join(patterns)}"


class Agent(BaseModel):
    """One agent: one OpenCode session in one environment (a snapshot; frozen because views are shared)."""

    model_config = ConfigDict(frozen=True)

    id: str
    title: str
    status: AgentStatus
    project_id: str | None = None
    project_path: str
    project_name: str
    environment: EnvironmentView
    session_id: str | None = None
    prompt: str = ""
    model: str | None = None
    permission_mode: str = "default"
    error: str | None = None
    permissions: list[PermissionView] = Field(default_factory=list)
    tokens: int = 0
    cost: float = 0.0  # the model's cost, as OpenCode reports it (USD)
    # The estimated cost of its environments' running time so far (cloud: an upper bound from
    # palot.cloud.costs, counted every budgets.cloud_poll_seconds); it counts toward budget_usd.
    environment_cost: float = 0.0
    budget_usd: float | None = None  # the agent's own limit (None: the project's or the default, if any)
    budget_tokens: int | None = None
    pause_reason: str | None = None  # why Palot paused it, e.g. "budget reached: $0.52 of $0.50"
    # What the user should know about its environment, in one sentence: e.g. that its cloud container stopped
    # unexpectedly, and what the restart restored and lost.
    notice: str | None = None
    created_at: float
    updated_at: float
    read_only: bool = False  # an OpenCode session Palot discovered but does not manage

    @property
    def branch(self) -> str | None:
        return self.environment.branch

    @property
    def total_cost(self) -> float:
        """What the agent cost in all: its model and its environments' running time (what budgets judge)."""
        return self.cost + self.environment_cost


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
    base_commit: str | None = None
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
    notice: str | None = None  # what else the user should know about it (as Agent.notice, asked just now)
    branch: str | None = None
    base_commit: str | None = None
    resources: dict[str, Any] | None = None
    # The agent's own dev-server ports (its processes see PALOT_PORT and PALOT_PORTS); None once archived.
    dev_port: int | None = None
    dev_ports: str | None = None  # e.g. "41000-41009"


class ContainerOptions(_Request):
    """Limits and network of a container environment (spawn or move to ``container``)."""

    memory: str | None = Field(None, description="memory limit, e.g. 2g")
    cpus: float | None = Field(None, gt=0, description="CPU limit, e.g. 1.5")
    pids: int | None = Field(None, gt=0, description="process limit")
    network: Literal["full", "none"] | None = Field(None, description="network access (default full)")
    ports: list[int] | None = Field(None, description="container ports to publish on 127.0.0.1")

    def as_dict(self) -> dict[str, Any] | None:
        values = self.model_dump(exclude_none=True)
        return values or None


class AgentRef(_Request):
    agent: str = Field(description="an agent id, a unique prefix of one, or its branch")


class ListRequest(_Request):
    project: str | None = Field(None, description="a project's path, name or id")
    status: list[AgentStatus] | None = Field(None, description="only agents in these statuses")
    environment: Literal["worktree", "container", "cloud", "external"] | None = Field(
        None, description="only agents in this environment type")
    include_archived: bool = Field(False, description="include archived agents")
    include_external: bool = Field(True, description="include OpenCode sessions Palot did not start")


class SpawnRequest(_Request):
    project: str = Field(description="the project's path (a git repository)")
    prompt: str | None = Field(None, description="what the agent should work on (or give a template)")
    environment: EnvironmentType | None = Field(None, description="where the agent runs (default: the template's, "
                                                                  "else worktree)")
    title: str | None = Field(None, description="a short title (default: from the prompt)")
    model: str | None = Field(None, description="provider/model (default: OpenCode's)")
    base_branch: str | None = Field(None, description="branch or commit to start from (default: HEAD)")
    branch: str | None = Field(None, description="the agent's branch (default: palot/<slug>)")
    setup_script: str | None = Field(None, description="shell command run in the new environment first")
    permission_mode: PermissionMode | None = Field(None, description="default, ask (every edit/bash) or auto "
                                                                     "(default: the template's, else default)")
    options: ContainerOptions | None = Field(None, description="container limits (environment container)")
    budget_usd: float | None = Field(None, gt=0, description="stop the agent when it has cost this much (USD)")
    budget_tokens: int | None = Field(None, gt=0, description="stop the agent when it has used this many tokens")
    template: str | None = Field(None, description="start from this template (its prompt and defaults) instead "
                                                   "of a prompt")
    vars: dict[str, str] | None = Field(None, description="the template's variables: name → value")

    @field_validator("prompt")
    @classmethod
    def _prompt(cls, v: str | None) -> str | None:
        if v is not None and not v.strip():
            raise ValueError("the prompt is empty: say what the agent should work on")
        return v

    @field_validator("template")
    @classmethod
    def _template(cls, v: str | None) -> str | None:
        return _template_name(v)

    @model_validator(mode="after")
    def _prompt_or_template(self) -> "SpawnRequest":
        if self.template is None:
            if self.prompt is None:
                raise ValueError("the prompt is empty: say what the agent should work on, or give a template")
            if self.vars:
                raise ValueError("vars fill a template's variables: give the template too, or drop them")
        elif self.prompt is not None:
            raise ValueError("give a prompt or a template, not both (the template's prompt is the agent's)")
        return self


class PromptRequest(AgentRef):
    text: str = Field(description="the follow-up message")
    model: str | None = Field(None, description="provider/model for this turn")


class ReplyRequest(AgentRef):
    reply: Reply = Field(description="once, always or reject")
    permission_id: str | None = Field(None, description="which request (needed when several are pending)")
    message: str | None = Field(None, description="a note to the agent with a rejection")


class WaitRequest(AgentRef):
    timeout: float = Field(300.0, ge=0, le=3600, description="seconds to wait at most")
    until: list[AgentStatus] | None = Field(None, description="statuses to wait for (default: any settled one)")


class ActivityRequest(AgentRef):
    since: int = Field(0, ge=0, description="only items from this index on")


class DiffRequest(AgentRef):
    path: str | None = Field(None, description="only this file (relative to the project)")


class ApplyRequest(AgentRef):
    path: str | None = Field(None, description="only this file (relative to the project); default: every file")


class DestroyRequest(AgentRef):
    force: bool = Field(False, description="also when the agent has unmerged work")


class PullRequestRequest(AgentRef):
    title: str | None = None
    body: str | None = None
    remote: str = "origin"
    base: str | None = None


class BudgetRequest(AgentRef):
    usd: float | None = Field(None, gt=0, description="the agent's new budget in USD (what it spent counts)")
    tokens: int | None = Field(None, gt=0, description="the agent's new budget in tokens")

    @model_validator(mode="after")
    def _something(self) -> "BudgetRequest":
        if self.usd is None and self.tokens is None:
            raise ValueError("give a budget: usd (e.g. 1.00) and/or tokens (e.g. 500000)")
        return self
