"""Tools that finish with agents and clean up: apply, pull request, archive, move, destroy, retry, request
changes, bulk operations, disk use and garbage collection."""

from __future__ import annotations

from mcp.server.mcpserver import Context

from palot import api

from ..arguments import Override
from ..models import ApplyResult, DestroyResult
from ..progress import Progress
from .registry import READ_ONLY, ToolsBase, changes, tool


class FinishingTools(ToolsBase):
    """The tools that complete, move, remove or retry agents, and the housekeeping."""

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
