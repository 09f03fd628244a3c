"""``palot.api``: Palot's one vocabulary — every view, option, request, response and event, defined once.

The service (``palot serve``) answers these requests; ``palot.client`` sends them; every front end (CLI,
MCP, LSP, notebook) builds its commands, tools and forms from :data:`ACTIONS`, so none can lack an option
another has. This module imports nothing of the core (only pydantic and Palot's error types), so a front
end that imports it stays thin.

Versioned: :data:`API_VERSION` changes whenever a request, response or event changes incompatibly.
"""

from __future__ import annotations

import re
import time
from enum import Enum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from .errors import PalotError  # noqa: F401 - re-exported: clients raise these with message + fix
from .hunks import Hunk, parse_hunks  # noqa: F401 - re-exported: a diff's hunks, for editors

API_VERSION = 1

# --- the words -------------------------------------------------------------------------------

ENVIRONMENT_TYPES = ("worktree", "container", "cloud", "external")
#: Where a new agent (or a move) can go; ``external`` sessions are only discovered, never created.
TARGET_TYPES = ("worktree", "container", "cloud")
PERMISSION_MODES = ("default", "ask", "auto")
REPLIES = ("once", "always", "reject")
#: The steps of a move, in order. Every step is journaled before and after it runs.
STEPS = ("pause", "checkpoint", "export", "provision", "import_code", "import_session", "setup", "resume",
         "cleanup")

#: The tools OpenCode 1.18 asks permission for (``permission`` of a request), as permission rules name them.
PERMISSION_TOOLS = ("bash", "edit", "read", "glob", "grep", "list", "task", "webfetch", "websearch", "codesearch",
                    "external_directory", "todowrite", "todoread", "lsp", "skill", "doom_loop", "question")
#: The two kinds of notification: an agent waits on a person, or something finished.
NOTIFICATION_KINDS = ("needs_you", "done")
#: A template's name: letters, digits, - and _ (unique per project). Its prompt's variables are ``{name}``.
TEMPLATE_NAME = r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}"
TEMPLATE_VARIABLE = r"[A-Za-z_][A-Za-z0-9_-]{0,63}"

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


# --- views -----------------------------------------------------------------------------------


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
    branch: str | None = None
    base_commit: str | None = None
    resources: dict[str, Any] | None = None
    # The agent's own dev-server ports (its processes see PALOT_PORT and PALOT_PORTS); None once archived.
    dev_port: int | None = None
    dev_ports: str | None = None  # e.g. "41000-41009"


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


class Project(BaseModel):
    id: str
    name: str
    path: str
    created_at: float | None = None


class AuditEntry(BaseModel):
    id: int
    ts: float
    agent_id: str | None = None
    project_id: str | None = None
    event: str
    detail: dict[str, Any] = Field(default_factory=dict)


class Spend(BaseModel):
    """What the fleet spent today (local calendar day): every agent's cost and tokens, cloud running time."""

    day: str  # YYYY-MM-DD
    usd: float = 0.0
    tokens: int = 0
    budget_usd: float | None = None  # the day's limit across all agents, when set
    budget_tokens: int | None = None


class InboxItem(BaseModel):
    """One pending permission request, as the inbox lists it (oldest first)."""

    permission_id: str
    agent_id: str
    agent_title: str
    project_name: str
    project_path: str
    tool: str  # the permission OpenCode asks for: bash, edit, …
    patterns: list[str] = Field(default_factory=list)  # the exact command(s) or path(s)
    summary: str
    asked_at: float
    # A rule with a timeout that will answer it: "reject in 4m (rule 2: bash 'git push*')".
    deadline: float | None = None
    rule: str | None = None
    # Set when the agent's OpenCode server restarted while the request waited: OpenCode forgot it, Palot
    # did not. Allowing it resumes the agent (its repeat of the request is answered the same way).
    note: str | None = None


class BulkItem(BaseModel):
    """One agent a bulk action selected, and what happened to it (or would, in a dry run)."""

    agent_id: str
    title: str
    status: AgentStatus  # as it was when selected
    project_name: str
    environment: str
    branch: str | None = None
    updated_at: float
    # would (a dry run's plan), done, skipped (the action does not apply to it), failed (its error in message)
    outcome: Literal["would", "done", "skipped", "failed"]
    message: str


class BulkResult(BaseModel):
    """The answer of ``bulk``: each selected agent with its outcome; a dry run changes nothing."""

    operation: str
    dry_run: bool
    items: list[BulkItem] = Field(default_factory=list)

    def count(self, outcome: str) -> int:
        return sum(1 for i in self.items if i.outcome == outcome)


class Orphan(BaseModel):
    """Something Palot made that no agent record owns any more (``palot gc``)."""

    kind: str  # worktree, branch, container, volume, relay_socket, environment_files, cloud, move, lock, record
    name: str  # a path, branch, container, volume or environment id, or an agent id (a record)
    project: str | None = None  # the project's path, when it belongs to one
    size: int | None = None  # bytes on disk; None when it cannot be measured
    why: str  # why it is an orphan
    safe: bool  # holds no unmerged, unapplied or uncommitted work: `palot gc --yes` removes it
    work: str | None = None  # the work it holds, when not safe
    keep: str | None = None  # the command that keeps that work (then `palot gc --yes` can remove the rest)
    removed: bool = False
    error: str | None = None  # why removing it failed


class GcReport(BaseModel):
    """What ``palot gc`` found and, with ``yes``, did."""

    orphans: list[Orphan] = Field(default_factory=list)
    removing: bool = False  # yes was given: safe orphans (all, with force) were removed
    removed: int = 0
    freed: int = 0  # bytes removed
    unchecked: list[str] = Field(default_factory=list)  # what could not be looked at, and why


class DiskUseItem(BaseModel):
    """One thing on disk that belongs to an agent (or to Palot as a whole: the agent image)."""

    kind: str  # worktree, clone, container_layer, image, move
    name: str  # a path, container or image
    bytes: int
    agent_id: str | None = None
    project: str | None = None  # the project's name
    environment: str | None = None  # the environment type


class DiskUse(BaseModel):
    """Disk used per agent, project and environment type (``palot du``)."""

    items: list[DiskUseItem] = Field(default_factory=list)
    by_agent: dict[str, int] = Field(default_factory=dict)
    by_project: dict[str, int] = Field(default_factory=dict)
    by_environment: dict[str, int] = Field(default_factory=dict)
    total: int = 0
    unchecked: list[str] = Field(default_factory=list)  # what could not be measured, and why


class SettingsView(BaseModel):
    """The settings the service runs with, and whether the file on disk could be read."""

    path: str
    loaded_at: float | None = None  # when the settings in use were read (None: defaults, no file)
    error: str | None = None  # the problem of the file on disk, when it has one (the last good settings hold)
    settings: dict[str, Any] = Field(default_factory=dict)


class ServiceStatus(BaseModel):
    """How the Palot service is doing (``palot service status``, ``palot doctor``)."""

    palot_version: str
    api_version: int
    pid: int
    home: str
    started_at: float
    opencode_url: str | None = None
    opencode_pid: int | None = None
    opencode_connected: bool
    opencode_restarts: int
    agents: int
    clients: int  # event-stream clients attached now
    upstream_subscriptions: int  # event streams the service holds open to OpenCode servers
    tcp: str | None = None  # the optional loopback listener, when on
    spend: Spend | None = None  # today's spending across the fleet
    inbox: int = 0  # permission requests waiting for a person
    settings_error: str | None = None  # settings.toml has a mistake (the last good settings hold)
    warm_containers: int = 0  # container environments started ahead of need, ready for a spawn or a move


class Template(BaseModel):
    """A reusable prompt of one project (or of every project), with ``{variable}`` placeholders and defaults
    for the spawn options worth keeping."""

    name: str
    project: str | None = None  # the project's path; None: usable in every project
    prompt: str
    variables: list[str] = Field(default_factory=list)  # the {names} a spawn must fill, in order of first use
    title: str | None = None
    environment: EnvironmentType | None = None
    model: str | None = None
    permission_mode: PermissionMode | None = None
    setup_script: str | None = None
    created_at: float
    updated_at: float


class TemplateSaved(BaseModel):
    """The outcome of ``template_add``: the template as stored, and whether it replaced one of that name."""

    template: Template
    replaced: bool
    message: str


class Done(BaseModel):
    """The answer of an action that returns nothing but its success."""

    ok: bool = True
    message: str = ""


# --- options and requests --------------------------------------------------------------------


class _Request(BaseModel):
    model_config = ConfigDict(extra="forbid")


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


def _template_name(v: str | None) -> str | None:
    if v is not None and not re.fullmatch(TEMPLATE_NAME, v):
        raise ValueError(f"'{v}' is not a template name: use letters, digits, - and _ (e.g. fix-issue)")
    return v


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


class MoveRequest(AgentRef):
    target: EnvironmentType = Field(description="worktree, container or cloud")
    options: ContainerOptions | None = Field(None, description="container limits (target container)")
    resume: bool | None = Field(None, description="resume the agent's turn after the move (default: if it was running)")


class BudgetRequest(AgentRef):
    usd: float | None = Field(None, gt=0, description="the agent's new budget in USD (what it spent counts)")
    tokens: int | None = Field(None, gt=0, description="the agent's new budget in tokens")

    @model_validator(mode="after")
    def _something(self) -> "BudgetRequest":
        if self.usd is None and self.tokens is None:
            raise ValueError("give a budget: usd (e.g. 1.00) and/or tokens (e.g. 500000)")
        return self


class InboxRequest(_Request):
    project: str | None = Field(None, description="only this project's requests (path, name or id)")


class InboxReplyRequest(_Request):
    reply: Reply = Field(description="once, always or reject")
    permission_ids: list[str] | None = Field(None, description="these requests")
    agent: str | None = Field(None, description="every request of this agent (id, prefix or branch)")
    tool: str | None = Field(None, description="every request for this tool, e.g. bash")
    project: str | None = Field(None, description="only requests of this project")
    message: str | None = Field(None, description="a note to the agents with a rejection")

    @model_validator(mode="after")
    def _selected(self) -> "InboxReplyRequest":
        if not self.permission_ids and self.agent is None and self.tool is None:
            raise ValueError("say which requests: permission_ids, agent (all from one agent) and/or tool")
        return self


class TemplatesRequest(_Request):
    project: str | None = Field(None, description="only the templates usable in this project (path, name or id)")


class TemplateRef(_Request):
    name: str = Field(description="the template's name")
    project: str | None = Field(None, description="the project it belongs to (default: the one for every project, "
                                                  "or the only one of that name)")

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        return _template_name(v) or v


class TemplateAddRequest(_Request):
    name: str = Field(description="the template's name: letters, digits, - and _ (unique per project)")
    prompt: str = Field(description="the prompt, with {variable} placeholders ({{ and }} for literal braces)")
    project: str | None = Field(None, description="the project it belongs to (a git repository's path); "
                                                  "default: every project")
    title: str | None = Field(None, description="the agents' title (default: from the prompt)")
    environment: EnvironmentType | None = Field(None, description="where its agents run (default: worktree)")
    model: str | None = Field(None, description="provider/model its agents use (default: OpenCode's)")
    permission_mode: PermissionMode | None = Field(None, description="default, ask or auto for its agents")
    setup_script: str | None = Field(None, description="shell command run in each new environment first")

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        return _template_name(v) or v

    @field_validator("prompt")
    @classmethod
    def _prompt(cls, v: str) -> str:
        if not v.strip():
            raise ValueError("the prompt is empty: say what the template's agents should work on")
        return v


class ReviewComment(_Request):
    """One review comment on the agent's diff: a file, a line (or lines) of it, and what should change."""

    path: str = Field(description="a file of the agent's diff, relative to the project")
    line: int = Field(ge=1, description="the line (1-based) of the file as the agent left it")
    end_line: int | None = Field(None, ge=1, description="the last line of a range (default: line)")
    comment: str = Field(description="what should change there")

    @field_validator("path", "comment")
    @classmethod
    def _not_empty(cls, v: str) -> str:
        if not v.strip():
            raise ValueError("must not be empty: give the file and say what should change")
        return v

    @model_validator(mode="after")
    def _range(self) -> "ReviewComment":
        if self.end_line is not None and self.end_line < self.line:
            raise ValueError(f"end_line {self.end_line} is before line {self.line}: give the range first to last")
        return self


_COMMENT_LINE = r"^(?P<path>[^\n]+?):(?P<line>\d+)(?:-(?P<end>\d+))?:(?P<comment>.*)$"


def review_comment(text: str) -> ReviewComment:
    """``src/app.py:12:use a constant`` or ``src/app.py:10-14:split this`` as a comment (how the command line and
    the notebook write one); InvalidInput naming the form otherwise."""
    import re

    from pydantic import ValidationError

    from .errors import InvalidInput

    found = re.match(_COMMENT_LINE, text.strip(), re.S)
    if found is None or not found["comment"].strip():
        raise InvalidInput(f"'{text}' is not a review comment of the form PATH:LINE:COMMENT",
                           "e.g. 'src/app.py:12:use a constant' or 'src/app.py:10-14:split this function'")
    try:
        return ReviewComment(path=found["path"], line=int(found["line"]),
                             end_line=int(found["end"]) if found["end"] else None, comment=found["comment"].strip())
    except ValidationError as e:  # e.g. a range given last to first
        msg = str(e.errors()[0].get("msg", "invalid")).removeprefix("Value error, ")
        raise InvalidInput(f"review comment '{text}': {msg}", "give lines as FIRST-LAST, counting from 1") from None


class RequestChangesRequest(AgentRef):
    comments: list[ReviewComment] = Field(
        description="review comments on the agent's diff: each a path, line (end_line) and comment")
    note: str | None = Field(None, description="a general note sent after the comments")

    @field_validator("comments")
    @classmethod
    def _some(cls, v: list[ReviewComment]) -> list[ReviewComment]:
        if not v:
            raise ValueError("no comments: give at least one (path, line, comment); for a plain message use prompt")
        return v


#: What ``bulk`` can do to many agents at once.
BULK_OPERATIONS = ("archive", "abort", "destroy")
_AGE = r"(\d+(?:\.\d+)?)\s*([smhdw])"
_AGE_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def age_seconds(text: str) -> float:
    """``7d``, ``12h``, ``30m``, ``90s``, ``2w`` → seconds; ValueError naming the form otherwise."""
    import re

    found = re.fullmatch(_AGE, text.strip().lower())
    if found is None:
        raise ValueError(f"'{text}' is not an age: use a number and a unit, e.g. 7d, 12h, 30m, 90s or 2w")
    return float(found.group(1)) * _AGE_UNITS[found.group(2)]


class BulkRequest(_Request):
    operation: Literal["archive", "abort", "destroy"] = Field(description="what to do to each selected agent")
    status: list[AgentStatus] | None = Field(None, description="only agents in these statuses")
    project: str | None = Field(None, description="only this project's agents (path, name or id)")
    environment: Literal["worktree", "container", "cloud"] | None = Field(
        None, description="only agents in this environment type")
    older_than: str | None = Field(None, description="only agents unchanged for this long, e.g. 7d, 12h, 30m")
    title: str | None = Field(None, description="only agents whose title contains this (any case)")
    agents: list[str] | None = Field(None, description="only these agents (ids), e.g. those a dry run listed")
    force: bool = Field(False, description="destroy: also agents with work neither applied nor merged (lost)")
    dry_run: bool = Field(True, description="only list what would happen (the default); false to do it")

    @field_validator("older_than")
    @classmethod
    def _age(cls, v: str | None) -> str | None:
        if v is not None:
            age_seconds(v)
        return v

    @model_validator(mode="after")
    def _selected(self) -> "BulkRequest":
        if not (self.status or self.project or self.environment or self.older_than or self.title or self.agents):
            raise ValueError("say which agents: status, project, environment, older_than, title and/or agents "
                             "(a bulk action never applies to every agent unasked)")
        return self


class AuditRequest(_Request):
    agent: str | None = Field(None, description="only this agent's events")
    limit: int = Field(200, ge=0, le=10000)


class ModelsRequest(_Request):
    project: str | None = Field(None, description="the project whose OpenCode config counts")


class GcRequest(_Request):
    yes: bool = Field(False, description="remove the orphans that hold no unmerged or uncommitted work")
    force: bool = Field(False, description="with yes: remove the others too (their work is lost)")

    @model_validator(mode="after")
    def _force_needs_yes(self) -> "GcRequest":
        if self.force and not self.yes:
            raise ValueError("force only applies with yes: add yes (`palot gc --yes --force`), or drop force to look")
        return self


class Empty(_Request):
    pass


# --- actions ---------------------------------------------------------------------------------


class Action(BaseModel):
    """One thing a client can ask the service: ``POST /v1/<name>`` with ``request``, answered with ``response``."""

    model_config = ConfigDict(arbitrary_types_allowed=True, frozen=True)

    name: str
    request: type[BaseModel]
    response: Any  # a model, or list[model]
    summary: str
    changes: bool = False  # changes something (front ends confirm these where that is their way)
    long: bool = False  # may take minutes; the service streams progress


def _a(name: str, request: type[BaseModel], response: Any, summary: str, *, changes: bool = False,
       long: bool = False) -> tuple[str, Action]:
    return name, Action(name=name, request=request, response=response, summary=summary, changes=changes,
                        long=long)


#: Every action of the API. Front ends offer each one, with each of its request's fields.
ACTIONS: dict[str, Action] = dict([
    _a("status", Empty, ServiceStatus, "how the Palot service and its OpenCode server are doing"),
    _a("projects", Empty, list[Project], "the projects Palot knows"),
    _a("models", ModelsRequest, list[str], "the provider/model names agents can use"),
    _a("list", ListRequest, list[Agent], "every agent, newest first, filtered"),
    _a("get", AgentRef, Agent, "one agent, with fresh tokens and cost"),
    _a("spawn", SpawnRequest, Agent, "start an agent on a new branch in a new environment", changes=True, long=True),
    _a("prompt", PromptRequest, Agent, "send an agent a follow-up message", changes=True),
    _a("abort", AgentRef, Agent, "stop the agent's current turn (it is paused)", changes=True),
    _a("reply", ReplyRequest, Agent, "answer a pending permission request", changes=True),
    _a("wait", WaitRequest, Agent, "wait until the agent settles", long=True),
    _a("activity", ActivityRequest, list[ActivityItem], "the agent's structured activity"),
    _a("messages", AgentRef, list[AgentMessage], "the agent's conversation"),
    _a("diff", DiffRequest, AgentDiff, "the agent's changes against its base commit"),
    _a("apply", ApplyRequest, list[str], "apply the agent's changes (or one file's) to your checkout", changes=True),
    _a("create_pr", PullRequestRequest, PullRequest, "push the agent's branch and open a PR", changes=True,
       long=True),
    _a("archive", AgentRef, Agent, "keep the branch, remove the environment", changes=True, long=True),
    _a("destroy", DestroyRequest, Done, "remove the agent, its environment and its branch", changes=True),
    _a("environment", AgentRef, EnvironmentStatus, "where the agent runs and how that is doing"),
    _a("move", MoveRequest, MigrationResult, "move the agent to another environment, code and conversation",
       changes=True, long=True),
    _a("moves", AgentRef, list[MoveRecord], "the agent's moves"),
    _a("audit", AuditRequest, list[AuditEntry], "the audit log, oldest first"),
    _a("budget", BudgetRequest, Agent, "set an agent's budget (USD and/or tokens); a paused agent may go on",
       changes=True),
    _a("inbox", InboxRequest, list[InboxItem], "every pending permission request of every agent, oldest first"),
    _a("inbox_reply", InboxReplyRequest, list[InboxItem], "answer many pending permission requests at once",
       changes=True),
    _a("settings", Empty, SettingsView, "the settings in use (budgets, permission rules, notifications)"),
    _a("templates", TemplatesRequest, list[Template], "the prompt templates (of one project, and those of every "
                                                      "project)"),
    _a("template_show", TemplateRef, Template, "one prompt template, with the variables it needs"),
    _a("template_add", TemplateAddRequest, TemplateSaved, "add a prompt template, or replace one of that name",
       changes=True),
    _a("template_remove", TemplateRef, Done, "remove a prompt template", changes=True),
    _a("retry", AgentRef, Agent, "a new agent from the same prompt, base and options (the old one stays)",
       changes=True, long=True),
    _a("request_changes", RequestChangesRequest, Agent, "send the agent review comments on its diff as one prompt",
       changes=True),
    _a("bulk", BulkRequest, BulkResult, "archive, abort or destroy every agent a filter selects (a dry run first)",
       changes=True, long=True),
    _a("du", Empty, DiskUse, "disk used per agent, project and environment type"),
    _a("gc", GcRequest, GcReport, "find what no agent owns (worktrees, palot/* branches, containers …); "
       "with yes remove what holds no unmerged work", changes=True, long=True),
])

# --- events ----------------------------------------------------------------------------------

AGENT_CREATED = "agent.created"
AGENT_UPDATED = "agent.updated"
AGENT_REMOVED = "agent.removed"
ACTIVITY = "agent.activity"
FILE_CHANGED = "agent.file"
PERMISSION_ASKED = "permission.asked"
PERMISSION_ANSWERED = "permission.answered"
MOVE_PROGRESS = "move.progress"
NOTIFICATION = "notification"
#: The service's connection to OpenCode came back: views may have missed changes, re-read them.
RESYNC = "resync"
EVENT_TYPES = (AGENT_CREATED, AGENT_UPDATED, AGENT_REMOVED, ACTIVITY, FILE_CHANGED, PERMISSION_ASKED,
               PERMISSION_ANSWERED, MOVE_PROGRESS, NOTIFICATION, RESYNC)


class Notification(BaseModel):
    """Something a person should hear of: an agent needs them, or something is done. Several of one kind
    within a moment are one notification (``agent_ids`` names them all)."""

    kind: Literal["needs_you", "done", "info"]
    title: str
    body: str = ""
    action: str | None = None  # the next thing to do, e.g. a command
    reason: str = ""  # permission, budget_warning, budget_reached, failed, move_failed, environment_lost, gc,
    #                   completed, moved, archived, auto_archived, auto_archive_failed, rule_timeout, settings
    agent_ids: list[str] = Field(default_factory=list)
    time: float = Field(default_factory=time.time)


class Event(BaseModel):
    """One Palot-level event on the service's stream. Which fields are set depends on ``type``."""

    type: str
    time: float = Field(default_factory=time.time)
    agent_id: str | None = None
    agent: Agent | None = None  # agent.created / agent.updated: the full view
    item: ActivityItem | None = None  # agent.activity: the item, when it could be read from the event
    path: str | None = None  # agent.file: relative to the agent's environment
    host_path: str | None = None  # agent.file: the file on this machine
    ranges: list[tuple[int, int]] | None = None  # agent.file: changed lines (1-based, inclusive) of the new file
    patch: str | None = None  # agent.file: the file's diff against the agent's base, as read for ``ranges``
    permission: PermissionView | None = None  # permission.asked
    permission_id: str | None = None  # permission.answered
    reply: str | None = None
    step: str | None = None  # move.progress
    target: str | None = None  # move.progress: the environment type the agent moves to
    message: str | None = None  # move.progress, resync
    notification: Notification | None = None


def request_for(action: str, arguments: dict[str, Any]) -> BaseModel:
    """Validate ``arguments`` for ``action``; a clear :class:`InvalidInput` names the field and the fix."""
    from pydantic import ValidationError

    from .errors import InvalidInput

    spec = ACTIONS.get(action)
    if spec is None:
        raise InvalidInput(f"unknown action '{action}'", f"use one of: {', '.join(ACTIONS)}")
    try:
        return spec.request.model_validate(arguments)
    except ValidationError as e:
        first = e.errors()[0]
        where = ".".join(str(p) for p in first.get("loc", ()))
        msg = str(first.get("msg", "invalid")).removeprefix("Value error, ")
        if not where:  # a check of several fields together (e.g. a prompt or a template): its message says which
            raise InvalidInput(f"{action}: {msg}", f"fix the arguments ({len(e.errors())} problem(s) in all)") from None
        raise InvalidInput(f"{action}: {where}: {msg}",
                           f"fix the '{where}' argument ({len(e.errors())} problem(s) in all)") from None
