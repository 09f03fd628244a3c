"""Retiring agents: archiving (the work kept on its branch) and destroying (refused while work would be lost).

Owns :class:`Retiring`: stopping an agent's session cleanly before its environment goes, archiving and
destroying the environment with the agent's records, and telling whether destroying would lose changes
that were neither applied nor merged.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

from .. import git
from ..backends import RuntimeBackend
from ..errors import PalotError, UnmergedWork
from ..events import EventHub, make_event
from ..store import AgentRecord, EnvironmentRecord, Store
from .commands import Commands
from .conversation import Conversation, patch_sha
from .devports import DevPorts
from .live import AGENT_REMOVED, LiveAgents
from .models import Agent, AgentStatus
from .tracker import Tracker
from .views import AgentViews

log = logging.getLogger(__name__)


class Retiring:
    """Archives and destroys agents."""

    def __init__(self, store: Store, hub: EventHub, backends: dict[str, RuntimeBackend], live: LiveAgents,
                 views: AgentViews, tracker: Tracker, commands: Commands, conversation: Conversation,
                 dev_ports: DevPorts) -> None:
        self.store = store
        self.hub = hub
        self.backends = backends
        self.live = live
        self.views = views
        self.tracker = tracker
        self.commands = commands
        self.conversation = conversation
        self.dev_ports = dev_ports

    async def archive(self, agent_ref: str, *, reason: str | None = None) -> Agent:
        """Stop the agent and remove its environment; every change stays on its branch. ``reason``: why Palot
        archived it by itself (a policy), kept in the audit log."""
        rec, env = self.views.managed(agent_ref, "archive")
        if rec.archived_at is not None:
            return self.views.by_id(rec.id)
        self.commands.not_moving(rec, "archive")
        await self._stop_session(rec, env)
        await self.backends[env.type].archive(env)
        self.store.update_environment(env.id, state="archived")  # its dev-server ports are free again
        self.store.update_agent(rec.id, archived_at=time.time(), status=AgentStatus.ARCHIVED.value)
        await self.dev_ports.write_env_map()
        self.live.states.pop(rec.id, None)
        self.store.audit("archived", agent_id=rec.id, project_id=rec.project_id, branch=env.branch,
                         **({"reason": reason} if reason else {}))
        self.tracker.announce(rec.id)
        return self.views.by_id(rec.id)

    async def destroy(self, agent_ref: str, *, force: bool = False) -> None:
        """Remove the agent, its environment, session and branch; refuses to drop unapplied work unless forced."""
        rec, env = self.views.managed(agent_ref, "destroy")
        self.commands.not_moving(rec, "destroy")
        if not force:
            await self._check_no_unmerged_work(rec, env)
        await self._stop_session(rec, env)
        if rec.session_id and env.state == "active":
            try:
                await self.backends[env.type].client_for(env).delete_session(rec.session_id, env.directory)
            except PalotError as e:
                log.info("could not delete session %s: %s", rec.session_id, e)
        await self.backends[env.type].destroy(env)
        self.store.update_environment(env.id, state="destroyed")
        await self.dev_ports.write_env_map()
        self.store.audit("destroyed", agent_id=rec.id, project_id=rec.project_id, branch=env.branch, forced=force)
        self.store.delete_agent(rec.id)
        self.live.states.pop(rec.id, None)
        if rec.session_id:
            self.live.by_session.pop(rec.session_id, None)
        self.hub.publish(make_event(AGENT_REMOVED, env.directory, agentID=rec.id, sessionID=rec.session_id))

    async def unmerged_work(self, agent_ref: str) -> str | None:
        """What destroying the agent would lose (its changes neither applied nor merged), or None."""
        rec, env = self.views.managed(agent_ref, "destroy")
        try:
            await self._check_no_unmerged_work(rec, env)
        except UnmergedWork as e:
            return e.message
        return None

    async def _check_no_unmerged_work(self, rec: AgentRecord, env: EnvironmentRecord) -> None:
        try:
            d = await self.conversation.git_diff(env)
        except PalotError:
            return  # the environment is already gone: nothing left to lose
        if d.is_empty or rec.applied_patch_sha == patch_sha(d.patch):
            return
        project = self.store.get_project(rec.project_id)
        assert project is not None and env.branch
        directory = self.backends[env.type].host_path(env)
        clean = not (env.state == "active" and directory.is_dir() and await git.is_dirty(directory))
        if clean and await git.is_ancestor(Path(project.path), env.branch, "HEAD"):
            return  # merged into the user's branch
        raise UnmergedWork(
            f"agent {rec.id} has {len(d.files)} changed files (+{d.additions} -{d.deletions}) "
            "that were neither applied nor merged",
            f"apply them (`palot agents apply {rec.id}`), archive the agent to keep its branch, or destroy with --force",
        )

    async def _stop_session(self, rec: AgentRecord, env: EnvironmentRecord) -> None:
        live = self.live.states.get(rec.id)
        if not rec.session_id or env.state != "active":
            return
        client = self.backends[env.type].client_for(env)
        try:
            if live is None or live.busy or live.prompt_pending or live.permissions:
                await client.abort(rec.session_id, env.directory)
            # Release OpenCode's watchers on the directory before it disappears.
            await client.dispose_instance(env.directory)
        except PalotError as e:
            log.info("could not stop session %s cleanly: %s", rec.session_id, e)
