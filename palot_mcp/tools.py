"""The MCP tools: one per action of ``palot.api.ACTIONS``, each a thin call through the ``PalotClient``.

This module is the table of the tool surface. Each tool is a method of ``Tools`` marked with
``@tool(action, title, hints)``; its docstring is the description the assistant reads, its return model
the output schema. Its input schema is the action's request model (``palot.arguments``): every field,
with the API's name, type and default, plus the tool's own extras (a page's ``limit``). ``TOOLS`` lists
the tools in the order ``tools/list`` shows them; ``ACTION_TOOLS`` maps each API action to its tool.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal, TypeVar

from mcp.server.mcpserver import Context
from mcp_types import ToolAnnotations
from pydantic import Field

from palot import api
from palot.client import PalotClient
from palot.errors import AgentNotFound

from .app import PalotApp
from .arguments import Override
from .models import (ActivityPage, AgentList, ApplyResult, AuditLog, DestroyResult, Inbox, InboxReplies, MessageList,
                     ModelList, MoveList, Project, ProjectList, TemplateList, WaitResult)
from .progress import Progress

# --- tool hints --------------------------------------------------------------------

READ_ONLY = ToolAnnotations(read_only_hint=True, destructive_hint=False, idempotent_hint=True, open_world_hint=False)


def changes(*, destructive: bool = False, idempotent: bool = False, open_world: bool = False) -> ToolAnnotations:
    """Hints of a tool that changes something."""
    return ToolAnnotations(read_only_hint=False, destructive_hint=destructive, idempotent_hint=idempotent,
                           open_world_hint=open_world)


@dataclass(frozen=True)
class ToolSpec:
    name: str
    action: str
    title: str
    hints: ToolAnnotations
    overrides: Mapping[str, Override] = field(default_factory=dict)


TOOLS: list[ToolSpec] = []
_F = TypeVar("_F", bound=Callable[..., Any])

# How tools describe an agent argument (the API's words, with an example an assistant can pattern-match).
AGENT = Override(description="The agent's id (e.g. ag_1a2b3c4d), a unique prefix of it, or its branch (palot/…)")
MODEL = Override(description="provider/model as in the OpenCode config (list_models shows them), e.g. "
                             "anthropic/claude-sonnet-4-5; default: OpenCode's")


def tool(action: str, title: str, hints: ToolAnnotations, /, **overrides: Override) -> Callable[[_F], _F]:
    """Mark a ``Tools`` method as the MCP tool of ``action``; ``overrides`` change how fields are shown."""

    def mark(method: _F) -> _F:
        TOOLS.append(ToolSpec(method.__name__, action, title, hints.model_copy(update={"title": title}),
                              {"agent": AGENT, **overrides}))
        return method

    return mark


#: How often ``wait_for_agent`` reports that it is still waiting (progress keeps clients from giving up).
WAIT_HEARTBEAT = 5.0


class Tools:
    """The tool implementations, bound to one ``PalotApp``."""

    def __init__(self, app: PalotApp) -> None:
        self._app = app

    @property
    def _palot(self) -> PalotClient:
        return self._app.client

    # --- reading ---------------------------------------------------------------

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

    # --- prompt templates ------------------------------------------------------

    @tool("templates", "List prompt templates", READ_ONLY,
          project=Override(description="only the templates usable in this project: its path, name or id"))
    async def list_templates(self, ctx: Context, request: api.TemplatesRequest) -> TemplateList:
        """The reusable prompts agents can be spawned from (spawn_agent with `template` and `vars`): each with
        its project (null: every project), the {variables} it needs and its defaults (title, environment, model,
        permission mode, setup script). With a project, a template of the project hides one of the same name
        for every project."""
        templates = await self._palot.call("templates", request)
        return TemplateList(templates=templates, total=len(templates))

    @tool("template_show", "Get a prompt template", READ_ONLY,
          project=Override(description="the project whose template it is (default: the one for every project, or "
                                       "the only one of that name)"))
    async def get_template(self, ctx: Context, request: api.TemplateRef) -> api.Template:
        """One template: its whole prompt, the {variables} a spawn must give in `vars`, and its defaults."""
        return await self._palot.call("template_show", request)

    @tool("template_add", "Save a prompt template", changes(idempotent=True),
          prompt=Override(description="the prompt, with {variable} placeholders; {{ and }} are literal braces"),
          project=Override(description="the git repository it belongs to (path); default: every project"),
          model=MODEL)
    async def save_template(self, ctx: Context, request: api.TemplateAddRequest) -> api.TemplateSaved:
        """Add a prompt template, or replace the one of that name in that project (`replaced` says which).
        Spawn agents from it with spawn_agent(template=name, vars={...})."""
        return await self._palot.call("template_add", request)

    @tool("template_remove", "Remove a prompt template", changes(destructive=True))
    async def remove_template(self, ctx: Context, request: api.TemplateRef) -> api.Done:
        """Remove a prompt template (agents spawned from it are not touched)."""
        return await self._palot.call("template_remove", request)

    # --- starting and steering -------------------------------------------------

    @tool("spawn", "Spawn an agent", changes(),
          project=Override(description="Path of a git repository on this machine"),
          prompt=Override(description="What the agent should do (or give a template)"),
          template=Override(description="start from this prompt template (list_templates) instead of a prompt; "
                                        "its defaults apply to the options not given"),
          vars=Override(description="a value for each of the template's {variables}, e.g. {\"issue\": \"42\"}"),
          model=MODEL,
          setup_script=Override(description="shell script run in the new environment before the agent starts "
                                            "(e.g. `cp \"$PALOT_PROJECT\"/.env* .`)"),
          permission_mode=Override(description="default: OpenCode's rules; ask: edits, commands and web fetches "
                                               "wait for approval (reply_permission); auto: allow everything"),
          options=Override(description="container limits and network (environment container): memory, cpus, "
                                       "pids, network, ports"))
    async def spawn_agent(self, ctx: Context, request: api.SpawnRequest) -> api.Agent:
        """Start a coding agent: a new branch and environment (a git worktree by default) from the project,
        an OpenCode session in it, and the prompt sent (or a template's, with its variables filled in).

        Returns at once with the agent running; follow it with wait_for_agent, get_activity or the
        palot://agents/{id} resource. Sends progress notifications while it provisions."""
        async with Progress(ctx) as progress:
            agent = await self._palot.call("spawn", request, progress=progress)
            progress(f"agent {agent.id} is {agent.status.value} on branch {agent.branch}")
        return agent

    @tool("prompt", "Send a prompt", changes(), model=MODEL)
    async def send_prompt(self, ctx: Context, request: api.PromptRequest) -> api.Agent:
        """Send the agent another message: request changes, answer its question, or resume it after an abort."""
        return await self._palot.call("prompt", request)

    @tool("abort", "Abort an agent", changes(idempotent=True))
    async def abort_agent(self, ctx: Context, request: api.AgentRef) -> api.Agent:
        """Stop the agent's current turn. It is then paused, with its work kept, until it gets another prompt."""
        return await self._palot.call("abort", request)

    @tool("reply", "Answer a permission request", changes(),
          reply=Override(description="once: allow this request; always: allow such requests from now on; "
                                     "reject: deny it (the agent is then paused)"),
          permission_id=Override(description="which request; needed only when the agent has several pending"))
    async def reply_permission(self, ctx: Context, request: api.ReplyRequest) -> api.Agent:
        """Answer an agent that waits for permission (its status is "waiting"; get_agent lists its pending
        requests)."""
        return await self._palot.call("reply", request)

    @tool("inbox_reply", "Answer many permission requests", changes(),
          reply=Override(description="once: allow these requests; always: allow such requests from now on; "
                                     "reject: deny them (the agents are then paused)"),
          permission_ids=Override(description="these requests (permission_id of list_inbox's items)"),
          agent=Override(description="every pending request of this agent: its id, a unique prefix of it, or its "
                                     "branch"),
          tool=Override(description="every pending request for this tool, e.g. bash or edit"),
          project=Override(description="only requests of this project (path, name or id)"))
    async def reply_inbox(self, ctx: Context, request: api.InboxReplyRequest) -> InboxReplies:
        """Answer many pending permission requests at once: those named by id, and/or every request of one
        agent, and/or every request for one tool, optionally within one project. Returns the requests that
        were answered (list_inbox shows what waits)."""
        answered = await self._palot.call("inbox_reply", request)
        return InboxReplies(reply=request.reply, answered=answered)

    @tool("budget", "Set an agent's budget", changes(idempotent=True),
          usd=Override(description="the agent's new budget in USD, e.g. 2.50 (what it spent so far counts)"),
          tokens=Override(description="the agent's new budget in tokens, e.g. 500000"))
    async def set_budget(self, ctx: Context, request: api.BudgetRequest) -> api.Agent:
        """Set an agent's budget in USD and/or tokens: Palot pauses the agent when it reaches it (its
        pause_reason then says so). Raising the budget of an agent paused for its budget lets it go on when it
        is prompted again."""
        return await self._palot.call("budget", request)

    # Short by default: many MCP clients give up on a request after about a minute.
    @tool("wait", "Wait for an agent", READ_ONLY, timeout=Override(default=50.0))
    async def wait_for_agent(self, ctx: Context, request: api.WaitRequest) -> WaitResult:
        """Block until the agent stops working: it completed, failed, was paused, was archived, or waits for a
        permission (or until it reaches one of `until`), or until the timeout (then `settled` is false; call
        again to keep waiting).

        Sends a progress notification every few seconds while it waits."""
        started = time.monotonic()
        waiting = asyncio.ensure_future(self._palot.call("wait", request))
        try:
            while not (await asyncio.wait({waiting}, timeout=WAIT_HEARTBEAT))[0]:
                elapsed = time.monotonic() - started
                await ctx.report_progress(round(elapsed, 1), request.timeout, f"agent {request.agent} is still working")
        finally:
            waiting.cancel()
        agent: api.Agent = waiting.result()
        settled = agent.status in request.until if request.until else not agent.status.active
        return WaitResult(agent=agent, settled=settled, waited_seconds=round(time.monotonic() - started, 3))

    # --- completing ------------------------------------------------------------

    @tool("apply", "Apply locally", changes())
    async def apply_agent(self, ctx: Context, request: api.AgentRef) -> ApplyResult:
        """Apply the agent's changes to the project's own checkout, uncommitted, for you to review and commit.

        Refuses, changing nothing, when the checkout has uncommitted changes or the patch does not apply."""
        agent = await self._palot.get(request.agent)
        files = await self._palot.apply(agent.id)
        return ApplyResult(agent_id=agent.id, project_path=agent.project_path, files=files)

    @tool("create_pr", "Create a pull request", changes(open_world=True),
          title=Override(description="PR title and commit message; default: the agent's title"),
          body=Override(description="PR description; default: the agent's prompt"),
          remote=Override(description="git remote to push the branch to"),
          base=Override(description="branch the PR targets; default: the repository's"))
    async def create_pr(self, ctx: Context, request: api.PullRequestRequest) -> api.PullRequest:
        """Commit the agent's work on its branch, push the branch, and open a pull request with the GitHub CLI
        (gh) when it is installed. Without gh the branch is still pushed and `message` says exactly what is
        missing."""
        async with Progress(ctx) as progress:
            progress(f"committing and pushing the branch of {request.agent} to {request.remote}")
            pr: api.PullRequest = await self._palot.call("create_pr", request, progress=progress)
            progress(pr.message)
        return pr

    @tool("archive", "Archive an agent", changes(idempotent=True))
    async def archive_agent(self, ctx: Context, request: api.AgentRef) -> api.Agent:
        """Stop the agent and remove its environment, keeping every change committed on its branch (the diff
        stays readable). Use this to retire an agent without losing work."""
        async with Progress(ctx) as progress:
            progress(f"stopping {request.agent} and checkpointing its work on its branch")
            agent: api.Agent = await self._palot.call("archive", request, progress=progress)
            progress(f"archived; the work is on branch {agent.branch}")
        return agent

    @tool("move", "Move an agent", changes(),
          target=Override(description="the new environment: worktree (a git worktree on this machine), container "
                                      "(its own container from the agent image) or cloud (a Cloudflare Container "
                                      "behind Palot's Worker; `palot cloud deploy` first)"),
          options=Override(description="container limits and network (target container): memory, cpus, pids, "
                                       "network, ports (default: the ports of the processes that were running)"),
          resume=Override(description="send the agent a note to carry on; default: only if the move stopped a turn"))
    async def move_agent(self, ctx: Context, request: api.MoveRequest) -> api.MigrationResult:
        """Move a live agent to another kind of environment, with its branch, commits, uncommitted and untracked
        files and its whole conversation; processes that were running are restarted there.

        Each step is journaled: a failure (or a crash) leaves the agent back where it was, nothing lost. The
        agent's status is "migrating" meanwhile. Sends progress notifications for each of the 9 steps."""
        async with Progress(ctx, total=len(api.STEPS)) as progress:
            result: api.MigrationResult = await self._palot.call("move", request, progress=progress)
            progress(f"{result.agent_id} now runs in a {result.target} at {result.directory}")
        return result

    @tool("destroy", "Destroy an agent", changes(destructive=True),
          force=Override(description="also drop changes that were neither applied nor merged (they are lost)"))
    async def destroy_agent(self, ctx: Context, request: api.DestroyRequest) -> DestroyResult:
        """Delete the agent with its environment, session and branch.

        Refuses when the agent has changes that were neither applied nor merged, unless force is true;
        archive_agent keeps the work instead."""
        agent_id = (await self._palot.get(request.agent)).id
        async with Progress(ctx) as progress:
            progress(f"destroying {agent_id}")
            await self._palot.destroy(agent_id, force=request.force)
        return DestroyResult(agent_id=agent_id, destroyed=True,
                             message=f"destroyed agent {agent_id}: its environment, session and branch are gone")

    @tool("retry", "Retry an agent", changes())
    async def retry_agent(self, ctx: Context, request: api.AgentRef) -> api.Agent:
        """Start a new agent from a failed (or paused, completed, archived) agent's prompt, base commit, model,
        permission mode, budget, environment type and options, on a new branch; its title ends in "(retry)".

        The old agent is left exactly as it is (its branch, conversation and status). An agent still running
        or waiting for a permission is refused: abort it first."""
        async with Progress(ctx) as progress:
            agent: api.Agent = await self._palot.call("retry", request, progress=progress)
            progress(f"agent {agent.id} retries {request.agent} on branch {agent.branch}")
        return agent

    @tool("request_changes", "Request changes", changes(),
          comments=Override(description="review comments on the agent's diff (get_diff): each {path, line, "
                                        "end_line?, comment}, lines as the agent left the file"),
          note=Override(description="a general note sent after the comments"))
    async def request_changes(self, ctx: Context, request: api.RequestChangesRequest) -> api.Agent:
        """Send the agent one prompt built from review comments on its diff: each comment's file, lines, the
        quoted diff lines and what should change, then the note. A comment on a file the agent did not change,
        or on lines outside its change, is refused (naming what it could be on) and nothing is sent."""
        return await self._palot.call("request_changes", request)

    @tool("bulk", "Archive, abort or destroy many agents", changes(destructive=True),
          operation=Override(description="archive (keeps each branch), abort (stops running turns) or destroy "
                                         "(deletes; agents with unmerged work are skipped unless force)"),
          status=Override(api.AgentStatus | list[api.AgentStatus] | None,
                          description="only agents in this status (or these statuses)",
                          coerce=lambda v: [v] if isinstance(v, api.AgentStatus) else v),
          older_than=Override(description="only agents unchanged for this long: 7d, 12h, 30m, 90s, 2w"),
          agents=Override(description="only these agent ids, e.g. the items of the dry run you showed the user"),
          dry_run=Override(description="true (the default): only list what would happen. Show that list to the "
                                       "user and call again with dry_run false and agents = its ids to do it"))
    async def bulk_agents(self, ctx: Context, request: api.BulkRequest) -> api.BulkResult:
        """Archive, abort or destroy every agent the filters select (status, project, environment, older_than,
        title, agents; at least one). By default a dry run: each selected agent with what would happen ("would")
        or why it is skipped; with dry_run false each one's outcome (done, skipped, failed with its error: one
        agent's error does not stop the others)."""
        if request.dry_run:
            return await self._palot.call("bulk", request)
        async with Progress(ctx) as progress:
            return await self._palot.call("bulk", request, progress=progress)


    # --- housekeeping --------------------------------------------------------------

    @tool("du", "Show Palot's disk use", READ_ONLY)
    async def disk_use(self, ctx: Context, request: api.Empty) -> api.DiskUse:
        """Disk used on this machine, in bytes, per agent, per project and per environment type (worktree,
        container, cloud, images), with each item: a worktree's files, a container's workspace clone and
        writable layer, a cloud agent's mirror, moves in progress, the agent image."""
        return await self._palot.call("du", request)

    @tool("gc", "Clean up what no agent owns", changes(destructive=True),
          yes=Override(description="remove the orphans that hold no unmerged or uncommitted work (default: "
                                   "only list them)"),
          force=Override(description="with yes: also remove the orphans that hold work (it is lost); "
                                     "prefer each orphan's keep command"))
    async def collect_garbage(self, ctx: Context, request: api.GcRequest) -> api.GcReport:
        """Find what Palot made that no agent owns any more: worktrees, palot/* branches, containers and
        volumes labelled by Palot, relay sockets, cloud environments, move leftovers, stale locks, and agents
        whose environment is gone. Each says its size, why it is an orphan, whether it holds work (unmerged
        commits, uncommitted changes) and the command that keeps that work.

        Without yes nothing changes; with yes the safe ones are removed and the rest are listed. Never
        touches anything without a Palot label or record."""
        async with Progress(ctx) as progress:
            return await self._palot.call("gc", request, progress=progress)


#: Each action of ``palot.api.ACTIONS`` → the name of the tool that offers it.
ACTION_TOOLS: dict[str, str] = {spec.action: spec.name for spec in TOOLS}
