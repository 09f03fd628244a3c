"""The MCP tools: every action a person can take with Palot, one thin call into ``palot.agents`` each.

This module is the table of the tool surface. Each tool is a method of
``Tools`` marked with ``@tool(title, hints)``; its docstring is the
description the assistant reads, its typed arguments (built from the shared
argument types below) are the input schema, and its return model is the
output schema. ``TOOLS`` lists them in the order ``tools/list`` shows them.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any, Literal, TypeVar

from mcp.server.mcpserver import Context
from mcp_types import ToolAnnotations
from pydantic import Field

from palot.agents import Agent, AgentDiff, AgentService, AgentStatus, EnvironmentStatus, PullRequest
from palot.migration import STEPS, MigrationResult

from .app import PalotApp
from .models import ActivityPage, AgentList, ApplyResult, DestroyResult, Project, ProjectList, WaitResult
from .progress import Progress

# --- shared argument types ---------------------------------------------------------

AgentId = Annotated[str, Field(
    min_length=1,
    description="The agent's id (e.g. ag_1a2b3c4d), a unique prefix of it, or its branch (palot/…)",
)]
ProjectRef = Annotated[str, Field(
    min_length=1, description="A project's path, name or id, as list_projects shows them",
)]
Model = Annotated[str, Field(
    pattern=r"^[^/\s]+/\S+$",
    description="provider/model as in the OpenCode config, e.g. anthropic/claude-sonnet-4-5; default: OpenCode's",
)]
EnvironmentType = Literal["worktree", "container", "cloud"]
PermissionMode = Literal["default", "ask", "auto"]

# --- tool hints --------------------------------------------------------------------

READ_ONLY = ToolAnnotations(read_only_hint=True, destructive_hint=False, idempotent_hint=True, open_world_hint=False)


def changes(*, destructive: bool = False, idempotent: bool = False, open_world: bool = False) -> ToolAnnotations:
    """Hints of a tool that changes something."""
    return ToolAnnotations(read_only_hint=False, destructive_hint=destructive, idempotent_hint=idempotent,
                           open_world_hint=open_world)


@dataclass(frozen=True)
class ToolSpec:
    name: str
    title: str
    hints: ToolAnnotations


TOOLS: list[ToolSpec] = []
_F = TypeVar("_F", bound=Callable[..., Any])


def tool(title: str, hints: ToolAnnotations) -> Callable[[_F], _F]:
    """Mark a ``Tools`` method as an MCP tool."""

    def mark(method: _F) -> _F:
        TOOLS.append(ToolSpec(method.__name__, title, hints.model_copy(update={"title": title})))
        return method

    return mark


#: How often ``wait_for_agent`` reports that it is still waiting (progress keeps clients from giving up).
WAIT_HEARTBEAT = 5.0


class Tools:
    """The tool implementations, bound to one ``PalotApp``."""

    def __init__(self, app: PalotApp) -> None:
        self._app = app

    @property
    def _agents(self) -> AgentService:
        return self._app.palot.agents

    # --- reading ---------------------------------------------------------------

    @tool("List projects", READ_ONLY)
    async def list_projects(self) -> ProjectList:
        """List the git repositories Palot has run agents in, with how many agents (not archived) each has.

        A project is added the first time an agent is spawned in it."""
        palot = self._app.palot
        counts = Counter(a.project_id for a in palot.agents.list(include_external=False))
        return ProjectList(projects=[
            Project(id=p.id, name=p.name, path=p.path, created_at=p.created_at, agents=counts[p.id])
            for p in palot.store.list_projects()
        ])

    @tool("List agents", READ_ONLY)
    async def list_agents(
        self,
        project: ProjectRef | None = None,
        status: AgentStatus | list[AgentStatus] | None = None,
        environment: Literal["worktree", "container", "cloud", "external"] | None = None,
        include_archived: Annotated[bool, Field(description="also list archived agents")] = False,
        limit: Annotated[int, Field(ge=1, le=1000, description="agents per page")] = 50,
        offset: Annotated[int, Field(ge=0, description="agents to skip (from next_offset)")] = 0,
    ) -> AgentList:
        """List agents across all projects, newest first, optionally filtered by project, status and environment.

        Each agent shows its status (running, waiting for a permission, completed, failed, paused…),
        environment and branch, pending permission requests, tokens and cost. Agents of type
        "external" are OpenCode sessions Palot found but did not start: they can be read, not steered."""
        statuses = [s.value for s in ([status] if isinstance(status, AgentStatus) else status or [])]
        agents = self._agents.list(project=project, status=statuses or None, environment=environment,
                                   include_archived=include_archived)
        end = offset + limit
        return AgentList(agents=agents[offset:end], total=len(agents), next_offset=end if end < len(agents) else None)

    @tool("Get an agent", READ_ONLY)
    async def get_agent(self, agent_id: AgentId) -> Agent:
        """One agent, with its status, environment, branch, pending permissions, and tokens and cost fresh from
        OpenCode."""
        return await self._agents.get(agent_id)

    @tool("Read an agent's activity", READ_ONLY)
    async def get_activity(
        self,
        agent_id: AgentId,
        since: Annotated[int, Field(ge=0, description="cursor: the next_cursor of the previous call; 0 for all")] = 0,
        limit: Annotated[int, Field(ge=1, le=1000, description="items per call")] = 200,
    ) -> ActivityPage:
        """What the agent did, oldest first: files read, edited and written, commands run, todos, its messages
        and errors.

        Pass the returned next_cursor as `since` to read only what is new since the last call."""
        resolved = self._agents.resolve(agent_id)
        items = await self._agents.activity(resolved, since=since)
        page = items[:limit]
        return ActivityPage(agent_id=resolved, items=page, next_cursor=page[-1].index + 1 if page else since,
                            more=len(items) > limit)

    @tool("Show an agent's diff", READ_ONLY)
    async def get_diff(
        self,
        agent_id: AgentId,
        path: Annotated[str | None, Field(description="only this file (path relative to the repository)")] = None,
    ) -> AgentDiff:
        """The agent's changes against the commit it started from, new untracked files included: a per-file
        summary and the unified patch."""
        return await self._agents.diff(agent_id, path=path)

    @tool("Environment status", READ_ONLY)
    async def environment_status(self, agent_id: AgentId) -> EnvironmentStatus:
        """Where the agent runs and how that environment is doing: type (worktree, container, cloud), state
        (running, stopped, missing), directory, branch, base commit, and resource use where measurable (disk,
        memory, CPU)."""
        return await self._agents.environment(agent_id)

    # --- starting and steering -------------------------------------------------

    @tool("Spawn an agent", changes())
    async def spawn_agent(
        self,
        ctx: Context,
        project: Annotated[str, Field(min_length=1, description="Path of a git repository on this machine")],
        prompt: Annotated[str, Field(min_length=1, description="What the agent should do")],
        environment: Annotated[EnvironmentType, Field(description="where the agent runs")] = "worktree",
        model: Model | None = None,
        base_branch: Annotated[str | None, Field(description="branch or commit to start from; default: HEAD")] = None,
        branch: Annotated[str | None, Field(description="name of the agent's new branch; default: palot/<slug>")]
        = None,
        title: Annotated[str | None, Field(description="short title; default: the prompt's first line")] = None,
        setup_script: Annotated[str | None, Field(
            description="shell script run in the new environment before the agent starts "
                        "(e.g. `cp \"$PALOT_PROJECT\"/.env* .`)")] = None,
        permission_mode: Annotated[PermissionMode, Field(
            description="default: OpenCode's rules; ask: edits, commands and web fetches wait for approval "
                        "(reply_permission); auto: allow everything")] = "default",
    ) -> Agent:
        """Start a coding agent: a new branch and environment (a git worktree by default) from the project,
        an OpenCode session in it, and the prompt sent.

        Returns at once with the agent running; follow it with wait_for_agent, get_activity or the
        palot://agents/{id} resource. Sends progress notifications while it provisions."""
        async with Progress(ctx) as progress:
            agent = await self._agents.spawn(
                project, prompt, title=title, model=model, base_branch=base_branch, branch=branch,
                setup_script=setup_script, permission_mode=permission_mode, environment=environment,
                progress=progress,
            )
            progress(f"agent {agent.id} is {agent.status.value} on branch {agent.branch}")
        return agent

    @tool("Send a prompt", changes())
    async def send_prompt(
        self,
        agent_id: AgentId,
        text: Annotated[str, Field(min_length=1, description="the message to the agent")],
        model: Model | None = None,
    ) -> Agent:
        """Send the agent another message: request changes, answer its question, or resume it after an abort."""
        return await self._agents.prompt(agent_id, text, model=model)

    @tool("Abort an agent", changes(idempotent=True))
    async def abort_agent(self, agent_id: AgentId) -> Agent:
        """Stop the agent's current turn. It is then paused, with its work kept, until it gets another prompt."""
        return await self._agents.abort(agent_id)

    @tool("Answer a permission request", changes())
    async def reply_permission(
        self,
        agent_id: AgentId,
        reply: Annotated[Literal["once", "always", "reject"], Field(
            description="once: allow this request; always: allow such requests from now on; reject: deny it "
                        "(the agent is then paused)")],
        permission_id: Annotated[str | None, Field(
            description="which request; needed only when the agent has several pending")] = None,
        message: Annotated[str | None, Field(description="optional note to the agent with a rejection")] = None,
    ) -> Agent:
        """Answer an agent that waits for permission (its status is "waiting"; get_agent lists its pending
        requests)."""
        return await self._agents.reply_permission(agent_id, reply, permission_id=permission_id, message=message)

    @tool("Wait for an agent", READ_ONLY)
    async def wait_for_agent(
        self,
        ctx: Context,
        agent_id: AgentId,
        timeout: Annotated[float, Field(gt=0, le=3600, description="seconds to wait at most")] = 50,
    ) -> WaitResult:
        """Block until the agent stops working: it completed, failed, was paused, was archived, or waits for a
        permission, or until the timeout (then `settled` is false; call again to keep waiting).

        Sends a progress notification every few seconds while it waits."""
        agents = self._agents
        resolved = agents.resolve(agent_id)
        started = time.monotonic()
        waiting = asyncio.ensure_future(agents.wait(resolved, timeout=timeout))
        try:
            while not (await asyncio.wait({waiting}, timeout=WAIT_HEARTBEAT))[0]:
                elapsed = time.monotonic() - started
                await ctx.report_progress(round(elapsed, 1), timeout, f"agent {resolved} is still working")
        finally:
            waiting.cancel()
        agent = waiting.result()
        return WaitResult(agent=agent, settled=not agent.status.active,
                          waited_seconds=round(time.monotonic() - started, 3))

    # --- completing ------------------------------------------------------------

    @tool("Apply locally", changes())
    async def apply_agent(self, agent_id: AgentId) -> ApplyResult:
        """Apply the agent's changes to the project's own checkout, uncommitted, for you to review and commit.

        Refuses, changing nothing, when the checkout has uncommitted changes or the patch does not apply."""
        resolved = self._agents.resolve(agent_id)
        files = await self._agents.apply(resolved)
        agent = await self._agents.get(resolved)
        return ApplyResult(agent_id=resolved, project_path=agent.project_path, files=files)

    @tool("Create a pull request", changes(open_world=True))
    async def create_pr(
        self,
        ctx: Context,
        agent_id: AgentId,
        title: Annotated[str | None, Field(description="PR title and commit message; default: the agent's title")]
        = None,
        body: Annotated[str | None, Field(description="PR description; default: the agent's prompt")] = None,
        remote: Annotated[str, Field(min_length=1, description="git remote to push the branch to")] = "origin",
        base: Annotated[str | None, Field(description="branch the PR targets; default: the repository's")] = None,
    ) -> PullRequest:
        """Commit the agent's work on its branch, push the branch, and open a pull request with the GitHub CLI
        (gh) when it is installed. Without gh the branch is still pushed and `message` says exactly what is
        missing."""
        async with Progress(ctx) as progress:
            progress(f"committing and pushing the branch of {agent_id} to {remote}")
            pr = await self._agents.create_pr(agent_id, title=title, body=body, remote=remote, base=base)
            progress(pr.message)
        return pr

    @tool("Archive an agent", changes(idempotent=True))
    async def archive_agent(self, ctx: Context, agent_id: AgentId) -> Agent:
        """Stop the agent and remove its environment, keeping every change committed on its branch (the diff
        stays readable). Use this to retire an agent without losing work."""
        async with Progress(ctx) as progress:
            progress(f"stopping {agent_id} and checkpointing its work on its branch")
            agent = await self._agents.archive(agent_id)
            progress(f"archived; the work is on branch {agent.branch}")
        return agent

    @tool("Move an agent", changes())
    async def move_agent(
        self,
        ctx: Context,
        agent_id: AgentId,
        target: Annotated[EnvironmentType, Field(
            description="the new environment: worktree (a git worktree on this machine), container (its own "
                        "container from the agent image) or cloud (a Cloudflare Container behind Palot's Worker; "
                        "`palot cloud deploy` first)")],
        memory: Annotated[str | None, Field(pattern=r"^[0-9]+[bkmgBKMG]?$",
                                            description="container memory limit, e.g. 2g")] = None,
        cpus: Annotated[float | None, Field(gt=0, le=256, description="container CPU limit, e.g. 1.5")] = None,
        network: Annotated[Literal["full", "none"] | None, Field(
            description="container network; default full")] = None,
        ports: Annotated[list[Annotated[int, Field(ge=1, le=65535)]] | None, Field(
            description="container ports to publish on 127.0.0.1 (dev servers); default: the ports of the "
                        "processes that were running")] = None,
        resume: Annotated[bool | None, Field(
            description="send the agent a note to carry on; default: only if the move stopped a turn")] = None,
    ) -> MigrationResult:
        """Move a live agent to another kind of environment, with its branch, commits, uncommitted and untracked
        files and its whole conversation; processes that were running are restarted there.

        Each step is journaled: a failure (or a crash) leaves the agent back where it was, nothing lost. The
        agent's status is "migrating" meanwhile. Sends progress notifications for each of the 9 steps."""
        options = {k: v for k, v in (("memory", memory), ("cpus", cpus), ("network", network), ("ports", ports))
                   if v is not None}
        async with Progress(ctx, total=len(STEPS)) as progress:
            result = await self._agents.move(agent_id, target, options=options or None, resume=resume,
                                             progress=progress)
            progress(f"{result.agent_id} now runs in a {result.target} at {result.directory}")
        return result

    @tool("Destroy an agent", changes(destructive=True))
    async def destroy_agent(
        self,
        ctx: Context,
        agent_id: AgentId,
        force: Annotated[bool, Field(
            description="also drop changes that were neither applied nor merged (they are lost)")] = False,
    ) -> DestroyResult:
        """Delete the agent with its environment, session and branch.

        Refuses when the agent has changes that were neither applied nor merged, unless force is true;
        archive_agent keeps the work instead."""
        resolved = self._agents.resolve(agent_id)
        async with Progress(ctx) as progress:
            progress(f"destroying {resolved}")
            await self._agents.destroy(resolved, force=force)
        return DestroyResult(agent_id=resolved, destroyed=True,
                             message=f"destroyed agent {resolved}: its environment, session and branch are gone")
