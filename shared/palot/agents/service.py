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

from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..backends import RuntimeBackend
from ..events import EventHub
from ..api import MigrationResult
from ..forwarding import Forward
from ..install import Progress, quiet
from ..opencode import OpenCodeClient
from ..store import Store
from .commands import Commands
from .conversation import Conversation
from .devports import DevPorts
from .live import AGENT_FILE, AGENT_REMOVED, AGENT_UPDATED, LiveAgents
from .models import Agent, PullRequest
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

    close = Forward("_tracker", Tracker.close)
    resync = Forward("_tracker", Tracker.resync)
    write_env_map = Forward("_ports", DevPorts.write_env_map)
    agent_for_session = Forward("_live", LiveAgents.agent_for_session)
    announce = Forward("_tracker", Tracker.announce)

    # --- views --------------------------------------------------------------

    def view(self, agent_ref: str) -> Agent:
        """The agent's view as Palot knows it now (no call to OpenCode)."""
        return self._views.by_id(self.resolve(agent_ref))

    resolve = Forward("_views", AgentViews.resolve)
    list = Forward("_views", AgentViews.list)
    get = Forward("_views", AgentViews.get)
    managed = Forward("_views", AgentViews.managed)
    environment = Forward("_views", AgentViews.environment)

    def audit_log(self, agent_ref: str | None = None, limit: int = 200) -> list[dict[str, Any]]:
        """The audit log, newest first: every agent's, or one agent's."""
        agent_id = self.resolve(agent_ref) if agent_ref else None
        return [e.model_dump() for e in self.store.audit_log(agent_id=agent_id, limit=limit)]

    # --- spawning -----------------------------------------------------------

    @property
    def spawning(self) -> bool:
        """A spawn is in progress: its environment exists before its record does."""
        return self._spawner.spawning

    reserved_branches = Forward("_spawner", Spawner.reserved_branches)
    spawn = Forward("_spawner", Spawner.spawn)
    models = Forward("_spawner", Spawner.models)

    check_model = staticmethod(check_model)

    retry_spawn = Forward("_spawner", Spawner.retry_spawn)
    retried = Forward("_spawner", Spawner.retried)

    # --- steering -----------------------------------------------------------

    prompt = Forward("_commands", Commands.prompt)
    abort = Forward("_commands", Commands.abort)
    set_budget = Forward("_commands", Commands.set_budget)
    reply_permission = Forward("_commands", Commands.reply_permission)
    wait = Forward("_commands", Commands.wait)
    request_changes = Forward("_commands", Commands.request_changes)

    # --- reading and completing ---------------------------------------------

    activity = Forward("_conversation", Conversation.activity)
    messages = Forward("_conversation", Conversation.messages)
    diff = Forward("_conversation", Conversation.diff)
    apply = Forward("_conversation", Conversation.apply)

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

    pause = Forward("_pausing", Pausing.pause)
    resume = Forward("_pausing", Pausing.resume)
    destroy = Forward("_retiring", Retiring.destroy)
    unmerged_work = Forward("_retiring", Retiring.unmerged_work)

    # --- moving (the migration engine drives these) -------------------------

    async def move(self, agent_ref: str, target: str, *, options: dict[str, Any] | None = None,
                   resume: bool | None = None, progress: Progress = quiet) -> MigrationResult:
        """Move the agent to a new environment of type ``target`` (see :class:`palot.migration.MigrationEngine`);
        a paused cloud agent is resumed first (its code and conversation are exported from it)."""
        await self._pausing.wake_if_paused(agent_ref, "move")
        return await self._moves.move(agent_ref, target, options=options, resume=resume, progress=progress)

    set_migrating = Forward("_moves", MoveCallbacks.set_migrating)
    pause_for_move = Forward("_moves", MoveCallbacks.pause_for_move)
    moved = Forward("_moves", MoveCallbacks.moved)
    moved_back = Forward("_moves", MoveCallbacks.moved_back)
