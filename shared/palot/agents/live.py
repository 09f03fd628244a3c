"""What Palot knows about agents right now, and the events it says it in.

Owns :class:`LiveAgents`: each agent's :class:`~.status.LiveState` (kept by the tracker from the hub's
events), which agent a session belongs to, the OpenCode sessions Palot did not start (external sessions)
with their own live states, and the projects by path. Every other part of the package reads these; only
the tracker and the commands change them.
"""

from __future__ import annotations

import time

from ..events import make_event
from ..opencode import GlobalEvent, Session
from ..store import AgentRecord, ProjectRecord, Store
from .models import Agent, AgentStatus
from .status import LiveState

#: Event Palot publishes on the hub whenever an agent's status or record changes.
AGENT_UPDATED = "palot.agent.updated"
#: Event Palot publishes when an agent is removed (destroyed).
AGENT_REMOVED = "palot.agent.removed"
#: Event Palot publishes when an agent edited a file: ``agentID``, ``path`` (relative to its environment's
#: root) and ``hostPath`` (the file on this machine). OpenCode's ``file.edited`` names only a path inside
#: the environment, and every container and cloud environment is ``/workspace``: front ends route by this.
AGENT_FILE = "palot.agent.file"


def agent_event(agent: Agent) -> GlobalEvent:
    """The ``palot.agent.updated`` event carrying the agent's view."""
    # sessionID lets subscribers filtered to the agent's session receive it too.
    return make_event(AGENT_UPDATED, agent.environment.directory, agentID=agent.id, sessionID=agent.session_id,
                      agent=agent.model_dump(mode="json"))


def seeded(rec: AgentRecord, status: str) -> LiveState:
    """A fresh live state for an agent last known with ``status``: paused stays paused, failed keeps its error."""
    return LiveState(tokens=rec.tokens, cost=rec.cost, aborted=status == AgentStatus.PAUSED.value,
                     error=rec.error if status == AgentStatus.FAILED.value else None)


class LiveAgents:
    """Live states of agents and external sessions, and the maps that route a session to its agent."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.states: dict[str, LiveState] = {}  # by agent id
        self.by_session: dict[str, str] = {}  # session id → agent id
        self.external: dict[str, tuple[Session, ProjectRecord]] = {}  # sessions Palot did not start
        self.external_states: dict[str, LiveState] = {}  # by session id, derived like an agent's
        self.project_paths: dict[str, ProjectRecord] = {}
        self._unknown_sessions: dict[str, float] = {}
        for rec in store.list_agents():
            if rec.session_id:
                self.by_session[rec.session_id] = rec.id
        for project in store.list_projects():
            self.project_paths[project.path] = project

    def agent_for_session(self, session_id: str) -> str | None:
        """The agent of a session, including agents another Palot process (CLI, MCP, editor) spawned."""
        agent_id = self.by_session.get(session_id)
        if agent_id is not None:
            return agent_id
        now = time.monotonic()
        # Look in the store at most every 2 s per unknown session (external sessions stay unknown;
        # a new agent's session id is recorded a moment after OpenCode announces the session).
        if now - self._unknown_sessions.get(session_id, 0.0) < 2.0:
            return None
        rec = self.store.find_agent_by_session(session_id)
        if rec is None:
            self._unknown_sessions[session_id] = now
            return None
        self._unknown_sessions.pop(session_id, None)
        self.by_session[session_id] = rec.id
        self.external.pop(session_id, None)
        return rec.id

    def live_of(self, agent_id: str) -> LiveState:
        """The agent's live state. The first one in this process is seeded from the store, so an agent that
        was paused (e.g. at its budget) or failed stays so after a restart until OpenCode says otherwise."""
        live = self.states.get(agent_id)
        if live is None:
            rec = self.store.get_agent(agent_id)
            live = self.states[agent_id] = seeded(rec, rec.status)
        return live
