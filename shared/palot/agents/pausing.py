"""Pausing a cloud agent to stop paying for it, and resuming it with everything put back.

Owns :class:`Pausing`: the checks (a managed cloud agent, not archived, not moving), the agent's turn stopped
before its environment is, the environment marked paused in the store (``data["paused"]``: prompts are
refused and the agent shows as paused until the resume) and the audit entries. What pausing does to the
environment (the save with the Worker, the stop, the restore) is the cloud backend's
(:meth:`palot.backends.cloud.CloudBackend.pause_environment`).
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from ..backends import RuntimeBackend
from ..errors import InvalidInput, InvalidState
from ..store import AgentRecord, EnvironmentRecord, Store
from .commands import Commands
from .live import LiveAgents
from .models import Agent
from .tracker import Tracker
from .views import AgentViews

PAUSED_REASON = "its cloud environment is paused (no running costs); `palot agents resume {id}` starts it again"


@runtime_checkable
class PausableBackend(Protocol):
    """A tier whose environments can be stopped with their work saved, and started again with it."""

    async def pause_environment(self, env: EnvironmentRecord) -> None: ...

    async def resume_environment(self, env: EnvironmentRecord) -> None: ...


def is_paused(env: EnvironmentRecord | None) -> bool:
    """Whether the agent's environment is paused (its container stopped, its work saved)."""
    return bool(env is not None and env.data.get("paused"))


class Pausing:
    """Pauses and resumes cloud agents."""

    def __init__(self, store: Store, backends: dict[str, RuntimeBackend], live: LiveAgents, views: AgentViews,
                 tracker: Tracker, commands: Commands) -> None:
        self.store = store
        self.backends = backends
        self.live = live
        self.views = views
        self.tracker = tracker
        self.commands = commands

    def _pausable(self, agent_ref: str, action: str) -> tuple[AgentRecord, EnvironmentRecord, PausableBackend]:
        rec, env = self.views.managed(agent_ref, action)
        if rec.archived_at is not None or env.state != "active":
            raise InvalidState(f"agent {rec.id} is archived, so Palot cannot {action} it",
                               f"its work is kept on branch {env.branch}; spawn a new agent with --base-branch "
                               f"{env.branch}")
        backend = self.backends.get(env.type)
        if not isinstance(backend, PausableBackend):
            raise InvalidInput(f"agent {rec.id} runs in a {env.type} environment; only cloud agents can be "
                               f"paused and resumed",
                               f"stop its turn with `palot agents abort {rec.id}`, or move it to the cloud first "
                               f"(`palot agents move {rec.id} cloud`)")
        self.commands.not_moving(rec, action)
        return rec, env, backend

    async def pause(self, agent_ref: str) -> Agent:
        """Save the agent's code and conversation outside its container and stop the container; a paused
        agent costs no running time. Pausing a paused agent changes nothing."""
        rec, env, backend = self._pausable(agent_ref, "pause")
        if is_paused(env):
            return self.views.by_id(rec.id)
        live = self.live.states.get(rec.id)
        if live is not None and (live.busy or live.prompt_pending or live.permissions):
            await self.commands.abort(rec.id)  # the turn ends cleanly before its environment stops
        await backend.pause_environment(env)
        self.store.update_environment(env.id, data={**env.data, "paused": True})
        self.store.update_agent(rec.id, pause_reason=PAUSED_REASON.format(id=rec.id))
        self.store.audit("paused", agent_id=rec.id, project_id=rec.project_id, branch=env.branch)
        self.tracker.announce(rec.id)
        return self.views.by_id(rec.id)

    async def resume(self, agent_ref: str) -> Agent:
        """Start the paused agent's environment again with its code and conversation put back, before any
        prompt reaches it. Resuming an agent that is not paused changes nothing."""
        rec, env, backend = self._pausable(agent_ref, "resume")
        if not is_paused(env):
            return self.views.by_id(rec.id)
        await backend.resume_environment(env)
        self.store.update_environment(env.id, data={k: v for k, v in env.data.items() if k != "paused"})
        self.store.update_agent(rec.id, pause_reason=None)
        self.store.audit("resumed", agent_id=rec.id, project_id=rec.project_id, branch=env.branch)
        self.tracker.announce(rec.id)
        return self.views.by_id(rec.id)

    async def wake_if_paused(self, agent_ref: str, action: str) -> None:
        """Resume the agent first if it is paused, for ``action`` that needs its environment running (archive, a
        pull request, a move); any other agent is left as it is (and refused as ``action`` refuses it)."""
        rec, env = self.views.managed(agent_ref, action)
        if is_paused(env):
            await self.resume(rec.id)

