"""The agents' side of a move: what the migration engine asks of them while it moves one.

Owns :class:`Mover` (what moves agents: :class:`palot.migration.MigrationEngine`, wired in by
:class:`palot.Palot`) and :class:`MoveCallbacks`: marking an agent as moving, stopping its turn before the
move (and waiting until OpenCode says it stopped), starting its live state afresh in its new environment
(resuming it with a note), and putting it back as it was when a move is rolled back.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any, Protocol

from ..api import MigrationResult
from ..backends import RuntimeBackend
from ..errors import AbortTimedOut, InvalidState
from ..install import Progress, quiet
from ..store import Store
from .commands import Commands
from .devports import DevPorts
from .live import LiveAgents, seeded
from .models import AgentStatus
from .tracker import Tracker


class Mover(Protocol):
    """What moves agents (:class:`palot.migration.MigrationEngine`), wired in by :class:`palot.Palot`."""

    async def move(self, agent_ref: str, target: str, *, options: dict[str, Any] | None = None,
                   resume: bool | None = None, progress: Progress = quiet) -> MigrationResult: ...


class MoveCallbacks:
    """The agent service's half of a move; the engine drives it."""

    def __init__(self, store: Store, backends: dict[str, RuntimeBackend], live: LiveAgents, tracker: Tracker,
                 commands: Commands, dev_ports: DevPorts) -> None:
        self.store = store
        self.backends = backends
        self.live = live
        self.tracker = tracker
        self.commands = commands
        self.dev_ports = dev_ports
        self.mover: Mover | None = None  # the migration engine, set by Palot

    async def move(self, agent_ref: str, target: str, *, options: dict[str, Any] | None = None,
                   resume: bool | None = None, progress: Progress = quiet) -> MigrationResult:
        """Move the agent to a new environment of type ``target`` (see :class:`palot.migration.MigrationEngine`)."""
        if self.mover is None:
            raise InvalidState("moving agents needs the full Palot core", "use palot.Palot")
        return await self.mover.move(agent_ref, target, options=options, resume=resume, progress=progress)

    def set_migrating(self, agent_id: str, on: bool) -> None:
        """Mark the agent as moving (commands are refused meanwhile), or no longer."""
        live = self.live.live_of(agent_id)
        live.migrating = on
        self.tracker.settle(agent_id)

    async def pause_for_move(self, agent_id: str) -> bool:
        """Stop the agent's turn if it has one (and wait until OpenCode says it stopped); True if it had one."""
        rec = self.store.get_agent(agent_id)
        env = self.store.get_environment(rec.environment_id or "")
        assert env is not None and rec.session_id
        client = self.backends[env.type].client_for(env)
        live = self.live.live_of(agent_id)
        busy = (rec.session_id in await client.session_statuses(env.directory) or live.busy or live.prompt_pending
                or bool(live.permissions))
        if busy:
            await client.abort(rec.session_id, env.directory)
            deadline = time.monotonic() + 20
            while rec.session_id in await client.session_statuses(env.directory):
                if time.monotonic() > deadline:
                    raise AbortTimedOut(f"agent {agent_id} did not stop its turn within 20 s",
                                         "abort it (`palot agents abort`), then move it again")
                await asyncio.sleep(0.1)
            live.busy = live.prompt_pending = False
            live.permissions.clear()
            live.aborted = True
            self.store.audit("paused", agent_id=agent_id, project_id=rec.project_id, reason="move")
        return busy

    async def moved(self, agent_id: str, status: str, *, note: str | None = None) -> None:
        """The agent now lives in its new environment: start its live state afresh, and resume it with ``note``."""
        self.live.states[agent_id] = seeded(self.store.get_agent(agent_id), status)
        await self.dev_ports.write_env_map()  # its ports now belong to its new directory
        self.tracker.settle(agent_id)
        self.tracker.announce(agent_id)
        if note:
            await self.commands.prompt(agent_id, note)

    def moved_back(self, agent_id: str, status: str) -> None:
        """A move was rolled back: the agent is in its old environment, with ``status``."""
        live = self.live.states.get(agent_id)
        if live is None:
            self.store.update_agent(agent_id, status=status)
            return
        live.migrating = False
        if status == AgentStatus.PAUSED.value:
            live.aborted = True
        self.tracker.settle(agent_id)
        self.tracker.announce(agent_id)
