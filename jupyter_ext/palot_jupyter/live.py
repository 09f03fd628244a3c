"""Running dashboard work on the kernel's own event loop, without blocking cells.

A Jupyter kernel already runs an asyncio loop: the dashboard never calls
``asyncio.run``; it starts tasks on that loop. Each task gets a fresh
``contextvars.Context``: ipykernel keeps the request being answered (the
"parent" of every message) in a context variable, which a task copies when
it is created, so a long-lived task would attribute every later widget update
to the cell that created the dashboard. Clients that file messages by request
(nbclient, ``store_widget_state``) would then drop them. In a fresh context the
kernel falls back to its latest request, as it does for threads.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

log = logging.getLogger(__name__)

_running: set[asyncio.Task[Any]] = set()  # strong references: the loop keeps only weak ones


def background(coro: Coroutine[Any, Any, Any], *, name: str) -> asyncio.Task[Any]:
    """Start ``coro`` on the running loop in a fresh context; errors are logged, not lost."""
    task = asyncio.get_running_loop().create_task(coro, name=name, context=contextvars.Context())
    _running.add(task)
    task.add_done_callback(_done)
    return task


def _done(task: asyncio.Task[Any]) -> None:
    _running.discard(task)
    if not task.cancelled() and task.exception() is not None:
        log.error("palot dashboard task %s failed", task.get_name(), exc_info=task.exception())


async def cancel(task: asyncio.Task[Any] | None) -> None:
    if task is None or task.done():
        return
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError, Exception):
        await task


class Refresher:
    """Runs an async refresh after ``delay``, one at a time; requests meanwhile coalesce into one more run."""

    def __init__(self, fn: Callable[[], Awaitable[None]], *, delay: float, name: str) -> None:
        self._fn = fn
        self._delay = delay
        self._name = name
        self._again = False
        self._task: asyncio.Task[None] | None = None

    def request(self, *, now: bool = False) -> None:
        if self._task is not None and not self._task.done():
            self._again = True
            return
        self._task = background(self._run(0.0 if now else self._delay), name=self._name)

    async def _run(self, delay: float) -> None:
        while True:
            self._again = False
            if delay:
                await asyncio.sleep(delay)
            try:
                await self._fn()
            except Exception:  # a failed refresh must not stop later ones
                log.exception("palot dashboard: %s failed", self._name)
            if not self._again:
                return
            delay = self._delay

    async def wait(self) -> None:
        """Until no refresh is pending or running."""
        while self._task is not None and not self._task.done():
            await asyncio.wait({self._task})

    async def stop(self) -> None:
        await cancel(self._task)
