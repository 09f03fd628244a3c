"""Fleet policies, run by the service whether or not a front end is open.

- :mod:`.settings` — ``$PALOT_HOME/settings.toml``, re-read when it changes (a bad file keeps the last good).
- :mod:`.budgets` — budgets per agent, per project and per day; a warning at 80 %, a hard stop at 100 %.
- :mod:`.inbox` — every pending permission request in one place, rules that answer them, deadlines.
- :mod:`.notify` — "needs you" and "done", merged within a moment, to the stream, the desktop, webhooks.
- :mod:`.outcomes` — which agent changes are news (failed, done, archived, moved).
- :mod:`.housekeeping` — completed agents left alone for a while are archived (their work stays on the branch).
- :mod:`.sweep` — the daily look for what no agent owns (``palot gc``); dev-server port settings.
- :mod:`.idle` — worktrees whose agents have settled are unloaded from OpenCode after a quiet spell.
- :mod:`.periodic` — the one background loop every policy that looks again and again runs on.
- :mod:`.warm` — container environments started ahead of need (``[containers] warm_pool``).

:class:`Policies` wires them to the service's event stream: each sees every Palot-level event as it is
published, in order.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from .. import api
from .budgets import Budgets
from .desktop import DesktopSink
from .housekeeping import Hold, Housekeeping
from .inbox import Inbox
from .notify import Notifier
from .outcomes import Outcomes
from .periodic import Periodic
from .settings import SettingsFile
from .idle import IdleInstances
from .sweep import DailySweep
from .warm import WarmContainers
from .webhooks import WebhookSink

if TYPE_CHECKING:
    from ..core import Palot
    from ..service.bridge import EventBridge

log = logging.getLogger(__name__)

SETTINGS_POLL = 1.0  # seconds between looks at settings.toml (a stat call)


class Policies:
    def __init__(self, palot: "Palot", bridge: "EventBridge", hold: Hold) -> None:
        self.palot = palot
        self.settings = SettingsFile(palot.paths.home / "settings.toml")
        self.notifier = Notifier(self.settings, bridge.publish)
        self.notifier.sinks = [DesktopSink(self.settings), WebhookSink(self.settings)]
        self.outcomes = Outcomes(self.notifier)
        self.budgets = Budgets(palot, self.settings, self.notifier)
        self.inbox = Inbox(palot, self.settings, self.notifier)
        self.inbox.check_prompt = self.budgets.check_prompt  # resuming an agent is a prompt: budgets hold
        self.housekeeping = Housekeeping(palot, self.settings, self.notifier, self.outcomes, hold)
        self.sweep = DailySweep(palot, self.settings, self.notifier, hold)
        self.idle = IdleInstances(palot, self.settings, hold)
        self.warm = WarmContainers(palot, self.settings)
        self._settings_looks = Periodic("re-reading settings.toml", self._reread_settings, lambda: SETTINGS_POLL)
        self._said_error: str | None = None
        bridge.listeners.append(self._on_event)

    async def start(self) -> None:
        self.settings.refresh()
        self._report_settings()
        agents = self.palot.agents.list(include_external=False)
        self.outcomes.seed(agents)
        await self.budgets.start(agents)
        await self.inbox.start(agents)
        await self.housekeeping.start()
        await self.sweep.start()
        await self.idle.start()
        await self.warm.start()
        self._settings_looks.start()

    async def close(self) -> None:
        await self._settings_looks.close()
        await self.housekeeping.close()
        await self.idle.close()
        await self.warm.close()
        await self.sweep.close()
        await self.inbox.close()
        await self.budgets.close()
        await self.notifier.close()

    def _on_event(self, event: api.Event) -> None:
        for policy in (self.budgets.on_event, self.inbox.on_event, self.outcomes.on_event):
            try:
                policy(event)
            except Exception:  # a policy's bug must not stop the stream or the other policies
                log.exception("a policy failed on %s", event.type)

    async def _reread_settings(self) -> None:
        changed = self.settings.refresh()
        self._report_settings()
        if changed:
            log.info("settings re-read from %s", self.settings.path)
            self.inbox.settings_changed()
            self.budgets.settings_changed()
            self.sweep.settings_changed()
            self.warm.settings_changed()

    def _report_settings(self) -> None:
        """A bad settings file is said once (log and a notification); the last good settings stay."""
        error = self.settings.error
        if error and error != self._said_error:
            log.warning("%s", error)
            self.notifier.notify("needs_you", "settings", "settings.toml has a mistake", error,
                                 action=f"edit {self.settings.path}")
        self._said_error = error
