"""One background loop for every policy that looks again and again (auto-archive, idle instances, the daily
sweep, the settings file): a job, a period read before every wait (so a settings change applies at the next
look), and a failure logged without ending the looks that follow."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

log = logging.getLogger(__name__)


class Periodic:
    """``job`` every ``every()`` seconds from ``start()`` until ``close()``; the first run after ``first()``
    seconds (one period by default), and only while ``when()`` says so."""

    def __init__(self, what: str, job: Callable[[], Awaitable[object]], every: Callable[[], float], *,
                 first: Callable[[], float] | None = None, when: Callable[[], bool] = lambda: True) -> None:
        self.what = what  # for the log: "auto-archive failed"
        self.job = job
        self.every = every
        self.first = first or every
        self.when = when
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._loop(), name=f"palot-{self.what}")

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _loop(self) -> None:
        await asyncio.sleep(self.first())
        while True:
            if self.when():
                try:
                    await self.job()
                except Exception:  # one bad look must not end the following ones
                    log.exception("%s failed", self.what)
            await asyncio.sleep(self.every())
