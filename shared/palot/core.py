"""``Palot``: the one object front ends hold — store, shared server, event hub and agents, wired together."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from . import loopwatch, tls
from .agents import AgentService
from .backends import CloudBackend, ContainerBackend, RuntimeBackend, WorktreeBackend
from .events import EventHub
from .migration import MigrationEngine
from .opencode import EventStream, OpenCodeClient
from .paths import PalotPaths
from .servers import ServerManager
from .store import Store
from .templates import Templates


class Palot:
    """Palot's core, ready to use once :meth:`start` returns.

    >>> async with Palot(scripted="demo", isolated=True) as palot:   # doctest: +SKIP
    ...     agent = await palot.agents.spawn("~/src/app", "add a greeting module")
    ...     agent = await palot.agents.wait(agent.id)
    """

    def __init__(
        self,
        paths: PalotPaths | None = None,
        *,
        isolated: bool = False,
        scripted: str | None = None,
        opencode_bin: Path | None = None,
        config: dict[str, Any] | None = None,
        port: int | None = None,
        supervise: bool = True,
        attach_any: bool = False,
    ) -> None:
        self.paths = paths or PalotPaths.default()
        self.paths.ensure()
        self.server = ServerManager(self.paths, opencode_bin=opencode_bin, isolated=isolated, scripted=scripted,
                                    config=config, port=port, supervise=supervise,
                                    attach_any=attach_any)
        self.store = Store(self.paths.store)
        self.hub = EventHub(self._event_source)
        self.backends: dict[str, RuntimeBackend] = {
            "worktree": WorktreeBackend(self.paths.worktrees, self._client, self.server.cli,
                                        self.paths.home / "process-logs"),
            "container": ContainerBackend(self.paths, self.hub, self.server),
            "cloud": CloudBackend(self.paths, self.hub, self.server),
        }
        self.agents = AgentService(self.store, self.hub, self.backends, self._client)
        self.migrations = MigrationEngine(self.paths, self.store, self.agents, self.backends)
        self.agents.mover = self.migrations
        self.templates = Templates(self.store)
        self.agents.env_map = self.paths.agent_env_map

    def _client(self) -> OpenCodeClient:
        assert self.server.client is not None, "Palot.start() has not been called"
        return self.server.client

    def _event_source(self) -> EventStream:
        client = self._client()
        return EventStream(lambda: self.server.url, client.auth)

    async def start(self) -> "Palot":
        """Start or attach to the shared server, connect the event stream, resync agents."""
        loopwatch.watch_running_loop()
        await asyncio.to_thread(tls.context)  # built once, off the loop: it reads the CA bundle from disk
        await self.server.start()
        await self.hub.start()
        for env in self.store.list_environments(state="active"):
            await self.backends[env.type].resume(env)
        # Moves a crashed Palot left half done: finished or rolled back before anything else looks.
        await self.migrations.recover()
        await self.agents.start()
        return self

    async def close(self) -> None:
        """Disconnect; the shared server keeps running (``stop_server`` stops it)."""
        await self.agents.close()
        await self.hub.stop()
        await self.server.close()
        await asyncio.to_thread(self.store.close)  # closing writes the WAL back to the database: a disk wait

    async def stop_server(self) -> None:
        await self.server.stop()

    async def __aenter__(self) -> "Palot":
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.close()
