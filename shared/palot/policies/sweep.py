"""The daily sweep: the service's daily look for what no agent owns (``palot gc``), and the dev-port settings.

By default the sweep only reports: one notification listing the orphans, with ``palot gc`` as the next
step. With ``[gc] remove = true`` in settings.toml it also removes the safe ones (never unmerged or
uncommitted work; those stay listed with the command that keeps them).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from ..api import human_bytes
from ..orphans import Sweeper
from .housekeeping import Hold
from .notify import Notifier
from .periodic import Periodic
from .settings import SettingsFile

if TYPE_CHECKING:
    from ..core import Palot

log = logging.getLogger(__name__)

SWEEP_EVERY = 24 * 3600.0  # seconds between sweeps


class DailySweep:
    def __init__(self, palot: "Palot", settings: SettingsFile, notifier: Notifier, hold: Hold) -> None:
        self.palot = palot
        self.hold = hold
        self.settings = settings
        self.notifier = notifier
        self.every = SWEEP_EVERY
        # Not at once by default: never in the way of a start.
        self._looks = Periodic("the daily sweep", self.sweep, lambda: self.every,
                               first=lambda: self.settings.current.gc.first_after_seconds,
                               when=lambda: self.settings.current.gc.daily)

    async def start(self) -> None:
        self.settings_changed()
        self._looks.start()

    async def close(self) -> None:
        await self._looks.close()

    def settings_changed(self) -> None:
        ports = self.settings.current.ports
        self.palot.agents.port_base, self.palot.agents.ports_per_agent = ports.base, ports.per_agent

    async def sweep(self) -> None:
        """Look for orphans; notify when there are some (and remove the safe ones when settings say so)."""
        remove = self.settings.current.gc.remove
        report = await Sweeper(self.palot, self.hold).run(yes=remove)
        left = [o for o in report.orphans if not o.removed]
        if not report.orphans:
            return
        lines = [f"{o.kind} {o.name}" + (f" ({human_bytes(o.size)})" if o.size else "")
                 + ("" if o.safe else " — holds work") for o in left[:20]]
        if len(left) > 20:
            lines.append(f"… and {len(left) - 20} more")
        title = (f"removed {report.removed} orphan(s) ({human_bytes(report.freed)})" if report.removed else "")
        if left:
            title = (title + "; " if title else "") + f"{len(left)} thing(s) no agent owns"
        self.notifier.notify("done", "gc", title, "\n".join(lines),
                             action="palot gc (then palot gc --yes)" if left else None)
