"""Idle OpenCode instances: the shared server keeps every directory it has served loaded (about 60 MB each,
measured with 1.18.33), so a fleet of worktree agents grows it without bound. A worktree whose agents have all
settled (completed, failed or paused) and from which OpenCode has sent no event for
``[housekeeping] release_idle_minutes`` is released (``POST /instance/dispose``); the memory comes back to the
machine within about half a minute. OpenCode loads the directory again on its next request (a prompt, a read
of the conversation), and what the agent started there (a dev server) keeps running.

Never released: a directory where an agent runs, is being set up, moves or waits for you (OpenCode keeps
pending permission requests only in the instance).
"""

from __future__ import annotations

import contextlib
import logging
import time
from typing import TYPE_CHECKING

from .. import api
from ..errors import PalotError
from ..opencode.models import GlobalEvent
from .housekeeping import Hold
from .periodic import Periodic
from .settings import SettingsFile

if TYPE_CHECKING:
    from ..core import Palot

log = logging.getLogger(__name__)

#: Statuses in which nothing of the agent lives only in its OpenCode instance.
SETTLED = frozenset({api.AgentStatus.COMPLETED, api.AgentStatus.FAILED, api.AgentStatus.PAUSED})
DISPOSED = "server.instance.disposed"


class IdleInstances:
    def __init__(self, palot: "Palot", settings: SettingsFile, hold: Hold) -> None:
        self.palot = palot
        self.settings = settings
        self.hold = hold  # a prompt never lands in an instance being released
        # Directory → when OpenCode last sent an event from it, for the directories it has loaded.
        self._loaded: dict[str, float] = {}
        self._looks = Periodic("releasing idle OpenCode instances", self.release,
                               lambda: self.settings.current.housekeeping.check_seconds)

    async def start(self) -> None:
        # What an earlier run left loaded is unknown: every live worktree counts as loaded from now.
        now = time.monotonic()
        for agent in self._worktree_agents():
            self._loaded.setdefault(agent.environment.directory, now)
        self.palot.hub.add_listener(self._on_event)
        self._looks.start()

    async def close(self) -> None:
        await self._looks.close()

    def _on_event(self, event: GlobalEvent) -> None:
        if event.directory is None:
            return
        if event.payload.type == DISPOSED:
            self._loaded.pop(event.directory, None)
        else:
            self._loaded[event.directory] = time.monotonic()

    def _worktree_agents(self) -> list[api.Agent]:
        return [a for a in self.palot.agents.list(include_external=False)
                if a.environment.type == "worktree" and a.status != api.AgentStatus.ARCHIVED]

    async def release(self) -> list[str]:
        """Release every worktree quiet for the setting whose agents have all settled; the directories released."""
        minutes = self.settings.current.housekeeping.release_idle_minutes
        if minutes <= 0:
            return []
        by_directory: dict[str, list[api.Agent]] = {}
        for agent in self._worktree_agents():
            by_directory.setdefault(agent.environment.directory, []).append(agent)
        now = time.monotonic()
        released: list[str] = []
        for directory, agents in by_directory.items():
            last = self._loaded.get(directory)
            if last is None or now - last < minutes * 60 or any(a.status not in SETTLED for a in agents):
                continue
            try:
                async with contextlib.AsyncExitStack() as held:
                    for agent in agents:
                        await held.enter_async_context(self.hold(agent.id, "releasing its idle OpenCode instance"))
                    if any(self.palot.agents.view(a.id).status not in SETTLED for a in agents):
                        continue  # it changed while the locks were taken
                    client = self.palot.server.client
                    if client is None:
                        return released
                    await client.dispose_instance(directory)
            except PalotError as e:  # busy with another action, or OpenCode away: the next look decides
                log.info("did not release OpenCode's instance of %s: %s", directory, e)
                continue
            # Gone from the loaded ones even before OpenCode's event says so: one release per quiet spell.
            self._loaded.pop(directory, None)
            released.append(directory)
        if released:
            log.info("released %d idle OpenCode instance(s), quiet for %g min: %s", len(released), minutes,
                     ", ".join(released))
        return released
