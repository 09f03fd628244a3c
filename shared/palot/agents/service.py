"""The agent service: spawn, list, steer, review and retire agents across projects.

State lives in three places, each authoritative for one thing: the store
(what agents exist, where, and their last known status), OpenCode (sessions,
messages, permissions) and the event hub (what is happening now). The
service keeps a small live state per agent from the hub's events and derives
each agent's status from it.

:class:`AgentService` is the one public face of the package: it builds the parts that each own one
concept (see the package README) and hands every call to the part that owns it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from ..api import MigrationResult
from ..backends import RuntimeBackend
from ..events import EventHub
from ..install import Progress, quiet
from ..opencode import OpenCodeClient
from ..store import AgentRecord, EnvironmentRecord, Store
from .commands import Commands
from .conversation import Conversation
from .devports import DevPorts
from .live import AGENT_FILE, AGENT_REMOVED, AGENT_UPDATED, LiveAgents
from .models import (
    ActivityItem,
    Agent,
    AgentDiff,
    AgentMessage,
    AgentStatus,
    EnvironmentStatus,
    PullRequest,
    ReviewComment,
)
from .moving import MoveCallbacks, Mover
from .pausing import Pausing
from .publishing import GH_TIMEOUT, Publisher
from .retiring import Retiring
from .spawning import Spawner, check_model
from .tracker import Tracker
from .views import AgentViews

__all__ = ["AGENT_FILE", "AGENT_REMOVED", "AGENT_UPDATED", "GH_TIMEOUT", "AgentService", "Mover"]


class AgentService:
    """Every agent action, for every front end."""

    def __init__(
        self,
        store: Store,
        hub: EventHub,
        backends: dict[str, RuntimeBackend],
        client: Callable[[], OpenCodeClient],
    ) -> None:
        self.store = store
        self.hub = hub
        self.backends = backends
        self._client = client
        live = self._live = LiveAgents(store)
        views = self._views = AgentViews(store, backends, live)
        tracker = self._tracker = Tracker(store, hub, backends, client, live, views)
        ports = self._ports = DevPorts(store)
        self._spawner = Spawner(store, backends, client, live, views, tracker, ports)
        conversation = self._conversation = Conversation(store, backends, client, live, views, tracker)
        commands = self._commands = Commands(store, hub, backends, live, views, tracker, conversation)
        self._retiring = Retiring(store, hub, backends, live, views, tracker, commands, conversation, ports)
        self._publisher = Publisher(store, backends, views, conversation)
        self._pausing = Pausing(store, backends, live, views, tracker, commands)
        self._moves = MoveCallbacks(store, backends, live, tracker, commands, ports)

    # --- settings Palot wires in --------------------------------------------

    @property
    def mover(self) -> Mover | None:
        """The migration engine, set by Palot."""
        return self._moves.mover

    @mover.setter
    def mover(self, mover: Mover | None) -> None:
        self._moves.mover = mover

    @property
    def port_base(self) -> int:
        """Where dev-server port ranges start (settings.toml ``[ports]``)."""
        return self._ports.base

    @port_base.setter
    def port_base(self, base: int) -> None:
        self._ports.base = base

    @property
    def ports_per_agent(self) -> int:
        """How many dev-server ports each agent gets."""
        return self._ports.per_agent

    @ports_per_agent.setter
    def ports_per_agent(self, count: int) -> None:
        self._ports.per_agent = count

    @property
    def env_map(self) -> Path | None:
        """The file the shared server's plugin reads each worktree agent's variables from (set by Palot)."""
        return self._ports.env_map

    @env_map.setter
    def env_map(self, path: Path | None) -> None:
        self._ports.env_map = path

    # --- lifecycle and tracking ---------------------------------------------

    async def start(self) -> None:
        """Bring every unfinished agent's status up to date and discover external sessions."""
        await self.write_env_map()
        await self.resync()

    async def close(self) -> None:
        """Stop background work (a resync waiting to try again)."""
        await self._tracker.close()

    async def resync(self) -> None:
        """Re-read status, permissions and last outcome from OpenCode for agents that may have moved on."""
        await self._tracker.resync()

    async def write_env_map(self) -> None:
        """Tell the shared server's plugin each worktree agent's own variables (keyed by its directory)."""
        await self._ports.write_env_map()

    def agent_for_session(self, session_id: str) -> str | None:
        """The agent of a session, including agents another Palot process (CLI, MCP, editor) spawned."""
        return self._live.agent_for_session(session_id)

    def announce(self, agent_id: str) -> None:
        """Publish the agent's view again (a policy changed something it shows)."""
        self._tracker.announce(agent_id)

    # --- views --------------------------------------------------------------

    def view(self, agent_ref: str) -> Agent:
        """The agent's view as Palot knows it now (no call to OpenCode)."""
        return self._views.by_id(self.resolve(agent_ref))

    def resolve(self, agent_ref: str) -> str:
        """An agent id from an id, a unique id prefix, or the agent's branch."""
        return self._views.resolve(agent_ref)

    def list(
        self,
        *,
        project: str | None = None,
        status: str | list[str] | None = None,
        environment: str | None = None,
        include_archived: bool = False,
        include_external: bool = True,
    ) -> list[Agent]:
        """Agents across all projects, newest first, filtered by project (path, name or id), status, environment."""
        return self._views.list(project=project, status=status, environment=environment,
                                include_archived=include_archived, include_external=include_external)

    async def get(self, agent_ref: str) -> Agent:
        """One agent, with tokens and cost fresh from OpenCode."""
        return await self._views.get(agent_ref)

    def managed(self, agent_ref: str, action: str) -> tuple[AgentRecord, EnvironmentRecord]:
        """The agent's record and environment, for ``action``; refused for sessions Palot did not start."""
        return self._views.managed(agent_ref, action)

    async def environment(self, agent_ref: str) -> EnvironmentStatus:
        """The agent's environment: type, state, directory, branch, and resource use where measurable."""
        return await self._views.environment(agent_ref)

    def audit_log(self, agent_ref: str | None = None, limit: int = 200) -> list[dict[str, Any]]:
        """The audit log, newest first: every agent's, or one agent's."""
        agent_id = self.resolve(agent_ref) if agent_ref else None
        return [e.model_dump() for e in self.store.audit_log(agent_id=agent_id, limit=limit)]

    # --- spawning -----------------------------------------------------------

    @property
    def spawning(self) -> bool:
        """A spawn is in progress: its environment exists before its record does."""
        return self._spawner.spawning

    def reserved_branches(self) -> set[tuple[str, str]]:
        """(repository, branch) of the spawns in progress: their branches have no record yet."""
        return self._spawner.reserved_branches()

    async def spawn(
        self,
        project: str | Path,
        prompt: str,
        *,
        title: str | None = None,
        model: str | None = None,
        base_branch: str | None = None,
        branch: str | None = None,
        setup_script: str | None = None,
        permission_mode: str = "default",
        environment: str = "worktree",
        options: dict[str, Any] | None = None,
        budget_usd: float | None = None,
        budget_tokens: int | None = None,
        template: str | None = None,
        progress: Progress = quiet,
    ) -> Agent:
        """Create an environment on a new branch, a session in it, and send the prompt (asynchronously)."""
        return await self._spawner.spawn(
            project, prompt, title=title, model=model, base_branch=base_branch, branch=branch,
            setup_script=setup_script, permission_mode=permission_mode, environment=environment, options=options,
            budget_usd=budget_usd, budget_tokens=budget_tokens, template=template, progress=progress)

    async def models(self, project: str | Path | None = None) -> list[str]:
        """The ``provider/model`` names agents can use in ``project`` (your OpenCode config and the project's)."""
        return await self._spawner.models(project)

    check_model = staticmethod(check_model)

    def retry_spawn(self, agent_ref: str) -> dict[str, Any]:
        """What a retry of the agent spawns (the arguments of :meth:`spawn`)."""
        return self._spawner.retry_spawn(agent_ref)

    def retried(self, old_id: str, new: Agent) -> None:
        """Note in the audit log that ``new`` retries ``old_id`` (the old agent is left as it is)."""
        self._spawner.retried(old_id, new)

    # --- steering -----------------------------------------------------------

    async def prompt(self, agent_ref: str, text: str, *, model: str | None = None) -> Agent:
        """Send the agent another prompt (request changes, answer a question, resume after abort)."""
        return await self._commands.prompt(agent_ref, text, model=model)

    async def abort(self, agent_ref: str, *, reason: str | None = None) -> Agent:
        """Stop the agent's current turn; it is paused until prompted again."""
        return await self._commands.abort(agent_ref, reason=reason)

    def set_budget(self, agent_ref: str, *, usd: float | None = None, tokens: int | None = None) -> Agent:
        """Set the agent's own budget (either limit left out stays as it was)."""
        return self._commands.set_budget(agent_ref, usd=usd, tokens=tokens)

    async def reply_permission(
        self, agent_ref: str, reply: str, *, permission_id: str | None = None, message: str | None = None
    ) -> Agent:
        """Answer a pending permission request: ``once``, ``always`` or ``reject``."""
        return await self._commands.reply_permission(agent_ref, reply, permission_id=permission_id, message=message)

    async def wait(
        self, agent_ref: str, *, timeout: float = 300.0, until: Iterable[AgentStatus] | None = None
    ) -> Agent:
        """Block until the agent settles (completed, failed, paused, waiting, archived) or ``timeout``."""
        return await self._commands.wait(agent_ref, timeout=timeout, until=until)

    async def request_changes(self, agent_ref: str, comments: list[ReviewComment], *,
                              note: str | None = None) -> Agent:
        """Send the agent one prompt built from review comments on its diff."""
        return await self._commands.request_changes(agent_ref, comments, note=note)

    # --- reading and completing ---------------------------------------------

    async def activity(self, agent_ref: str, *, since: int = 0) -> list[ActivityItem]:
        """Structured activity, oldest first; ``since`` skips items already seen (a cursor)."""
        return await self._conversation.activity(agent_ref, since=since)

    async def messages(self, agent_ref: str) -> list[AgentMessage]:
        """The agent's conversation, simplified; empty when it is no longer available (see the agent's view)."""
        return await self._conversation.messages(agent_ref)

    async def diff(self, agent_ref: str, *, path: str | None = None) -> AgentDiff:
        """The agent's changes against its base commit, untracked files included."""
        return await self._conversation.diff(agent_ref, path=path)

    async def apply(self, agent_ref: str, *, path: str | None = None) -> list[str]:
        """Apply the agent's changes (or only ``path``'s) to the user's checkout, uncommitted."""
        return await self._conversation.apply(agent_ref, path=path)

    async def create_pr(
        self, agent_ref: str, *, title: str | None = None, body: str | None = None, remote: str = "origin",
        base: str | None = None,
    ) -> PullRequest:
        """Commit the agent's work on its branch, push it, and open a PR with ``gh`` when it is installed (a paused
        cloud agent is resumed first)."""
        await self._pausing.wake_if_paused(agent_ref, "create a PR for")
        return await self._publisher.create_pr(agent_ref, title=title, body=body, remote=remote, base=base)

    # --- retiring -----------------------------------------------------------

    async def archive(self, agent_ref: str, *, reason: str | None = None) -> Agent:
        """Stop the agent and remove its environment; every change stays on its branch (a paused cloud agent is
        resumed first: its work is committed there)."""
        await self._pausing.wake_if_paused(agent_ref, "archive")
        return await self._retiring.archive(agent_ref, reason=reason)

    async def pause(self, agent_ref: str) -> Agent:
        """Save a cloud agent's code and conversation outside its container and stop it (no running costs)."""
        return await self._pausing.pause(agent_ref)

    async def resume(self, agent_ref: str) -> Agent:
        """Start a paused cloud agent again, its code and conversation put back before it gets a prompt."""
        return await self._pausing.resume(agent_ref)

    async def destroy(self, agent_ref: str, *, force: bool = False) -> None:
        """Remove the agent, its environment, session and branch; refuses to drop unapplied work unless forced."""
        await self._retiring.destroy(agent_ref, force=force)

    async def unmerged_work(self, agent_ref: str) -> str | None:
        """What destroying the agent would lose (its changes neither applied nor merged), or None."""
        return await self._retiring.unmerged_work(agent_ref)

    # --- moving (the migration engine drives these) -------------------------

    async def move(self, agent_ref: str, target: str, *, options: dict[str, Any] | None = None,
                   resume: bool | None = None, progress: Progress = quiet) -> MigrationResult:
        """Move the agent to a new environment of type ``target`` (see :class:`palot.migration.MigrationEngine`);
        a paused cloud agent is resumed first (its code and conversation are exported from it)."""
        await self._pausing.wake_if_paused(agent_ref, "move")
        return await self._moves.move(agent_ref, target, options=options, resume=resume, progress=progress)

    def set_migrating(self, agent_id: str, on: bool) -> None:
        """Mark the agent as moving (commands are refused meanwhile), or no longer."""
        self._moves.set_migrating(agent_id, on)

    async def pause_for_move(self, agent_id: str) -> bool:
        """Stop the agent's turn if it has one (and wait until OpenCode says it stopped); True if it had one."""
        return await self._moves.pause_for_move(agent_id)

    async def moved(self, agent_id: str, status: str, *, note: str | None = None) -> None:
        """The agent now lives in its new environment: start its live state afresh, and resume it with ``note``."""
        await self._moves.moved(agent_id, status, note=note)

    def moved_back(self, agent_id: str, status: str) -> None:
        """A move was rolled back: the agent is in its old environment, with ``status``."""
        self._moves.moved_back(agent_id, status)
