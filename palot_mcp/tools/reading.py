"""Tools that read: the service, projects, models, agents and what each did (activity, conversation, diff,
environment, moves, audit), the inbox and the settings."""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Annotated, Literal

from mcp.server.mcpserver import Context
from pydantic import Field

from palot import api
from palot.errors import AgentNotFound

from ..arguments import Override
from ..models import ActivityPage, AgentList, AuditLog, Inbox, MessageList, ModelList, MoveList, Project, ProjectList
from .registry import READ_ONLY, ToolsBase, tool


class ReadingTools(ToolsBase):
    """The tools that change nothing."""

    @tool("status", "Palot status", READ_ONLY)
    async def service_status(self, ctx: Context, request: api.Empty) -> api.ServiceStatus:
        """How the Palot service and its OpenCode server are doing: versions, whether OpenCode is connected
        (and how often it restarted), how many agents and clients there are, today's spend against the day's
        budget, how many permission requests wait for a person (list_inbox), and a mistake in settings.toml."""
        return await self._palot.status()

    @tool("projects", "List projects", READ_ONLY)
    async def list_projects(self, ctx: Context, request: api.Empty) -> ProjectList:
        """List the git repositories Palot has run agents in, with how many agents (not archived) each has.

        A project is added the first time an agent is spawned in it."""
        projects, agents = await asyncio.gather(self._palot.projects(), self._palot.list(include_external=False))
        counts = Counter(a.project_id for a in agents)
        return ProjectList(projects=[Project(id=p.id, name=p.name, path=p.path, agents=counts[p.id])
                                     for p in projects])

    @tool("models", "List models", READ_ONLY)
    async def list_models(self, ctx: Context, request: api.ModelsRequest) -> ModelList:
        """The provider/model names agents can use, as OpenCode's config (of the project, when given) has them."""
        return ModelList(models=await self._palot.call("models", request))

    @tool("list", "List agents", READ_ONLY,
          status=Override(api.AgentStatus | list[api.AgentStatus] | None,
                          description="only agents in this status (or these statuses)",
                          coerce=lambda v: [v] if isinstance(v, api.AgentStatus) else v),
          environment=Override(Literal["worktree", "container", "cloud", "external"] | None,
                               description="only agents in this environment type"),
          project=Override(description="A project's path, name or id, as list_projects shows them"))
    async def list_agents(
        self,
        ctx: Context,
        request: api.ListRequest,
        limit: Annotated[int, Field(ge=1, le=1000, description="agents per page")] = 50,
        offset: Annotated[int, Field(ge=0, description="agents to skip (from next_offset)")] = 0,
    ) -> AgentList:
        """List agents across all projects, newest first, optionally filtered by project, status and environment.

        Each agent shows its status (running, waiting for a permission, completed, failed, paused…),
        environment and branch, pending permission requests, tokens and cost. Agents of type
        "external" are OpenCode sessions Palot found but did not start: they can be read, not steered."""
        # Only the page crosses the socket: reading 1,000 agents to show 50 was most of this tool's time.
        agents, total = await self._palot.page("list", request, offset=offset, limit=limit)
        end = offset + limit
        return AgentList(agents=agents, total=total, next_offset=end if end < total else None)

    @tool("get", "Get an agent", READ_ONLY)
    async def get_agent(self, ctx: Context, request: api.AgentRef) -> api.Agent:
        """One agent, with its status, environment, branch, pending permissions, and tokens and cost fresh from
        OpenCode."""
        return await self._palot.call("get", request)

    @tool("activity", "Read an agent's activity", READ_ONLY,
          since=Override(description="cursor: the next_cursor of the previous call; 0 for all"))
    async def get_activity(
        self,
        ctx: Context,
        request: api.ActivityRequest,
        limit: Annotated[int, Field(ge=1, le=1000, description="items per call")] = 200,
    ) -> ActivityPage:
        """What the agent did, oldest first: files read, edited and written, commands run, todos, its messages
        and errors.

        Pass the returned next_cursor as `since` to read only what is new since the last call."""
        agent = await self._palot.get(request.agent)
        items = await self._palot.activity(agent.id, since=request.since)
        page = items[:limit]
        return ActivityPage(agent_id=agent.id, items=page, next_cursor=page[-1].index + 1 if page else request.since,
                            more=len(items) > limit)

    @tool("messages", "Read an agent's conversation", READ_ONLY)
    async def get_messages(self, ctx: Context, request: api.AgentRef) -> MessageList:
        """The agent's conversation, oldest first: each message's role, text, error and the tools it used."""
        agent = await self._palot.get(request.agent)
        return MessageList(agent_id=agent.id, messages=await self._palot.messages(agent.id))

    @tool("diff", "Show an agent's diff", READ_ONLY,
          path=Override(description="only this file (path relative to the repository)"))
    async def get_diff(self, ctx: Context, request: api.DiffRequest) -> api.AgentDiff:
        """The agent's changes against the commit it started from, new untracked files included: a per-file
        summary and the unified patch."""
        return await self._palot.call("diff", request)

    @tool("environment", "Environment status", READ_ONLY)
    async def environment_status(self, ctx: Context, request: api.AgentRef) -> api.EnvironmentStatus:
        """Where the agent runs and how that environment is doing: type (worktree, container, cloud), state
        (running, stopped, missing), directory, branch, base commit, and resource use where measurable (disk,
        memory, CPU)."""
        return await self._palot.call("environment", request)

    @tool("moves", "List an agent's moves", READ_ONLY)
    async def list_moves(self, ctx: Context, request: api.AgentRef) -> MoveList:
        """The agent's moves between environments (move_agent), oldest first: target, state (completed,
        rolled_back, failed …), the step it reached and the error of a failed one."""
        agent = await self._palot.get(request.agent)
        return MoveList(agent_id=agent.id, moves=await self._palot.moves(agent.id))

    @tool("audit", "Read the audit log", READ_ONLY,
          agent=Override(description="only this agent's events: its id, a unique prefix of it, or its branch"))
    async def get_audit_log(self, ctx: Context, request: api.AuditRequest) -> AuditLog:
        """What Palot did, oldest first: agents spawned, prompted, answered, moved, archived, destroyed, and
        their status changes."""
        agent_id, missing = request.agent, None
        if request.agent is not None:
            try:
                agent_id = (await self._palot.get(request.agent)).id
            except AgentNotFound as e:  # a destroyed agent has no view, but its audit entries stay
                missing = e
        entries = await self._palot.audit(agent_id, limit=request.limit)
        if missing is not None and not entries:
            raise missing
        return AuditLog(entries=entries)

    @tool("inbox", "List pending permission requests", READ_ONLY,
          project=Override(description="only this project's requests: its path, name or id (list_projects)"))
    async def list_inbox(self, ctx: Context, request: api.InboxRequest) -> Inbox:
        """Every permission request waiting for a person, across all agents, oldest first: the agent, the
        project, the tool (bash, edit …), the exact command(s) or path(s) it asks for, when it asked, and the
        deadline when a settings rule will answer it by itself.

        Answer them with reply_inbox (many at once) or reply_permission (one agent's)."""
        items = await self._palot.call("inbox", request)
        return Inbox(items=items, total=len(items))

    @tool("settings", "Read Palot's settings", READ_ONLY)
    async def get_settings(self, ctx: Context, request: api.Empty) -> api.SettingsView:
        """The settings the Palot service runs with (settings.toml): budgets, permission rules and
        notifications, where the file is and when it was read, and its mistake if it has one (the last good
        settings then hold)."""
        return await self._palot.call("settings", request)
