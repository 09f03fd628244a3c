"""Tools that start and steer an agent: spawn, prompt, abort, answer its permission requests (one or many), set
its budget, pause and resume a cloud agent, and wait for it."""

from __future__ import annotations

import asyncio
import time

from mcp.server.mcpserver import Context

from palot import api

from ..arguments import Override
from ..models import InboxReplies, WaitResult
from ..progress import Progress
from .registry import MODEL, READ_ONLY, ToolsBase, changes, tool

#: How often ``wait_for_agent`` reports that it is still waiting (progress keeps clients from giving up).
WAIT_HEARTBEAT = 5.0


class SteeringTools(ToolsBase):
    """The tools that start an agent and steer it while it works."""

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

    @tool("pause", "Pause a cloud agent", changes(idempotent=True))
    async def pause_agent(self, ctx: Context, request: api.AgentRef) -> api.Agent:
        """Save a cloud agent's code (commits, uncommitted and untracked files) and conversation outside its
        container, then stop the container: a paused agent costs no running time. Only cloud agents can be
        paused; resume_agent starts it again with everything put back."""
        async with Progress(ctx) as progress:
            agent: api.Agent = await self._palot.call("pause", request, progress=progress)
        return agent

    @tool("resume", "Resume a paused cloud agent", changes(idempotent=True))
    async def resume_agent(self, ctx: Context, request: api.AgentRef) -> api.Agent:
        """Start a paused cloud agent's environment again; its code and conversation are put back before it
        takes a prompt."""
        async with Progress(ctx) as progress:
            agent: api.Agent = await self._palot.call("resume", request, progress=progress)
        return agent

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
