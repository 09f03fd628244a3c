"""Auto-archive: completed agents left alone for ``[housekeeping] archive_completed_after_hours`` are archived.

Archive keeps every change on the agent's branch (uncommitted work is committed first), so nothing is lost;
the environment is freed. Only COMPLETED agents qualify: one waiting for you, running, paused or failed is
never archived by this. How long an agent has been left alone is judged from the store (the agent's last
change, ``updated_at``), so a restart of the service neither resets nor skips the clock. The look is cheap
(the store's list, no call to OpenCode) and runs every ``check_seconds``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from typing import TYPE_CHECKING

from .. import api
from ..errors import InvalidState, PalotError
from .notify import Notifier
from .outcomes import Outcomes
from .periodic import Periodic
from .settings import SettingsFile

if TYPE_CHECKING:
    from ..core import Palot

log = logging.getLogger(__name__)

#: The service's per-agent lock (``AgentLocks.hold``): an archive never races a prompt or a move.
Hold = Callable[[str, str], AbstractAsyncContextManager[str]]


def hours_text(hours: float) -> str:
    """``24 h``, ``90 min``, ``4 s``: a setting's duration as a person reads it."""
    if hours >= 1:
        return f"{hours:g} h"
    if hours * 60 >= 1:
        return f"{hours * 60:g} min"
    return f"{round(hours * 3600, 1):g} s"


def due(agents: list[api.Agent], hours: float, now: float) -> list[api.Agent]:
    """The completed agents (Palot's own) unchanged for ``hours`` or more, oldest first; none when ``hours`` is 0."""
    if hours <= 0:
        return []
    limit = hours * 3600
    found = [a for a in agents if a.status == api.AgentStatus.COMPLETED and not a.read_only
             and now - a.updated_at >= limit]
    return sorted(found, key=lambda a: a.updated_at)


class Housekeeping:
    def __init__(self, palot: "Palot", settings: SettingsFile, notifier: Notifier, outcomes: Outcomes,
                 hold: Hold) -> None:
        self.palot = palot
        self.settings = settings
        self.notifier = notifier
        self.outcomes = outcomes
        self.hold = hold
        self._looks = Periodic("auto-archive", self.tidy, lambda: self.settings.current.housekeeping.check_seconds)
        # Agents whose auto-archive failed, with their last change then: tried again only once they change.
        self._failed: dict[str, float] = {}

    async def start(self) -> None:
        self._looks.start()

    async def close(self) -> None:
        await self._looks.close()

    async def tidy(self, now: float | None = None) -> list[str]:
        """Archive every completed agent left alone long enough; the ids archived."""
        hours = self.settings.current.housekeeping.archive_completed_after_hours
        now = time.time() if now is None else now
        agents = self.palot.agents.list(status=api.AgentStatus.COMPLETED.value, include_external=False)
        archived: list[str] = []
        for agent in due(agents, hours, now):
            if self._failed.get(agent.id) == agent.updated_at:
                continue
            if await self._archive(agent.id, hours, now):
                archived.append(agent.id)
        return archived

    async def _archive(self, agent_id: str, hours: float, now: float) -> bool:
        reason = f"completed and unchanged for {hours_text(hours)}"
        try:
            async with self.hold(agent_id, "auto-archive"):
                # Looked at again under the lock: a prompt or a reply may have come since the list was read.
                if not due([self.palot.agents.view(agent_id)], hours, now):
                    return False
                self.outcomes.archiving(agent_id, reason)
                await self.palot.agents.archive(agent_id, reason=f"auto-archive: {reason}")
        except InvalidState as e:
            if "busy" in e.message:
                return False  # another action holds it: the next look decides
            self._could_not(agent_id, e)
            return False
        except PalotError as e:
            self._could_not(agent_id, e)
            return False
        log.info("auto-archived %s (%s)", agent_id, reason)
        return True

    def _could_not(self, agent_id: str, error: PalotError) -> None:
        self.outcomes.archiving(agent_id, None)
        try:
            agent = self.palot.agents.view(agent_id)
        except PalotError:
            return
        self._failed[agent_id] = agent.updated_at
        log.warning("could not auto-archive %s: %s", agent_id, error)
        self.notifier.notify("needs_you", "auto_archive_failed", f"{agent.title} ({agent_id}) could not be archived",
                             str(error), action=f"palot agents archive {agent_id}", agent_ids=[agent_id])
