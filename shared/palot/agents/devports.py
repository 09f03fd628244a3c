"""Agents' dev-server ports: a free range for each new agent, and the map the shared server's plugin reads.

Owns :class:`DevPorts`: where ranges start and how many ports each agent gets (settings.toml ``[ports]``,
set by the sweep policy), the ranges of spawns in progress (held before their environment is recorded),
and the file that tells the shared OpenCode server's plugin each worktree agent's own variables (set by
:class:`palot.Palot`).
"""

from __future__ import annotations

import asyncio

from pathlib import Path

from .. import ports
from ..store import Store


class DevPorts:
    """Allocates dev-server port ranges and keeps the worktree agents' variables map up to date."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.base, self.per_agent = ports.DEFAULT_BASE, ports.DEFAULT_PER_AGENT
        self.env_map: Path | None = None
        self._reserved: list[ports.PortRange] = []
        self._writing = asyncio.Lock()

    def _held(self) -> list[ports.PortRange]:
        """The ranges live environments hold (a move's target holds its agent's range too)."""
        held = [ports.PortRange.from_data(env.data) for env in self.store.list_environments()
                if env.state in ("active", "migrating")]
        return [r for r in held if r is not None] + self._reserved

    def allocate(self) -> ports.PortRange:
        """A range of dev-server ports no live agent holds; reserved until :meth:`release` (its environment
        is recorded by then)."""
        chosen = ports.allocate(self._held(), base=self.base, per_agent=self.per_agent)
        self._reserved.append(chosen)
        return chosen

    def release(self, chosen: ports.PortRange) -> None:
        """The spawn that reserved ``chosen`` recorded its environment, or gave up."""
        self._reserved.remove(chosen)

    async def write_env_map(self) -> None:
        """Tell the shared server's plugin each worktree agent's own variables (keyed by its directory)."""
        if self.env_map is None:
            return
        async with self._writing:  # one write at a time, each of the state when it starts: the last one stays
            envs: dict[str, dict[str, str]] = {}
            for env in self.store.list_environments(state="active"):
                held = ports.PortRange.from_data(env.data)
                if env.type == "worktree" and held is not None:
                    envs[env.directory] = held.env()
            await asyncio.to_thread(ports.write_env_map, self.env_map, envs)  # a file write can stall
