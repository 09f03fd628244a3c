"""Which agent edited which file: OpenCode's ``file.edited`` routed to ``palot.agent.file``.

Owns :class:`FileEdits`: the map from where an event comes from (an environment's own server, or a
worktree's directory on the shared server) to the agent working there, re-read from the store when a place
is not known yet, and the event that names the edited file both in the environment and on this machine.
"""

from __future__ import annotations

import asyncio
import os
import time

from ..backends import RuntimeBackend
from ..errors import AgentNotFound, PalotError
from ..events import EventHub, event_source, make_event
from ..opencode import GlobalEvent
from ..store import AgentRecord, EnvironmentRecord, Store
from .live import AGENT_FILE


def publish_soon(hub: EventHub, event: GlobalEvent) -> None:
    """Publish ``event`` after the current one, so subscribers see OpenCode's event before Palot's reading of it."""
    try:
        asyncio.get_running_loop().call_soon(hub.publish, event)
    except RuntimeError:
        pass


class FileEdits:
    """Routes file edits to the agents that made them."""

    def __init__(self, store: Store, hub: EventHub, backends: dict[str, RuntimeBackend]) -> None:
        self.store = store
        self.hub = hub
        self.backends = backends
        # Where file events come from → (agent id, environment id): an environment id (container and cloud
        # servers are event sources of their own) or a worktree's directory (the shared server's events).
        self._owners: dict[str, tuple[str, str]] = {}
        self._misses: dict[str, float] = {}  # places that belonged to no agent, when last looked

    def edited(self, event: GlobalEvent) -> None:
        """Say which agent edited which file (``palot.agent.file``), from the environment the event came from."""
        file = event.payload.properties.get("file")
        found = self._owner(event)
        if not isinstance(file, str) or found is None:
            return
        rec, env = found
        root = os.path.normpath(env.directory)
        path = os.path.normpath(os.path.join(root, file))
        if not path.startswith(root + os.sep):
            return  # outside the agent's working directory
        rel = os.path.relpath(path, root).replace(os.sep, "/")
        try:
            host = self.backends[env.type].host_path(env) / rel
        except (KeyError, PalotError):
            return
        # Deferred, like agent updates, so subscribers see OpenCode's event before Palot's reading of it.
        publish_soon(self.hub, make_event(AGENT_FILE, env.directory, agentID=rec.id, sessionID=rec.session_id,
                                          path=rel, hostPath=str(host)))

    def _owner(self, event: GlobalEvent) -> tuple[AgentRecord, EnvironmentRecord] | None:
        # The shared server may name a worktree by its resolved path (symlinks in the data dir's path).
        key = event_source(event) or (os.path.realpath(event.directory) if event.directory else None)
        if not key:
            return None
        found = self._active_owner(key)
        if found is None:
            # A new or moved agent (perhaps spawned by another Palot process): read who owns what again, but
            # at most every 2 s for a place that belongs to no agent (a session Palot did not start).
            now = time.monotonic()
            if now - self._misses.get(key, 0.0) < 2.0:
                return None
            self._owners = {}
            for rec, env, _ in self.store.list_agents_with_environments(include_archived=False):
                if env is not None and env.state == "active":
                    self._owners[env.id] = (rec.id, env.id)
                    if env.type == "worktree":
                        self._owners[os.path.realpath(env.directory)] = (rec.id, env.id)
            found = self._active_owner(key)
            if found is None:
                self._misses[key] = now
                return None
        self._misses.pop(key, None)
        return found

    def _active_owner(self, key: str) -> tuple[AgentRecord, EnvironmentRecord] | None:
        owner = self._owners.get(key)
        if owner is None:
            return None
        agent_id, env_id = owner
        try:
            rec = self.store.get_agent(agent_id)
        except AgentNotFound:
            return None
        env = self.store.get_environment(env_id) if rec.environment_id == env_id else None
        return (rec, env) if env is not None and env.state == "active" else None
