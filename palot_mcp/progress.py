"""MCP progress notifications for the service's long operations.

The Palot client reports progress through a plain synchronous callback
(``progress: Callable[[str], None]``); MCP progress is an async notification
tied to the request's progress token. ``Progress`` queues each message and
sends them in order while the operation runs. Without a progress token the
SDK makes every report a no-op, so tools can always report.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from types import TracebackType

from mcp.server.mcpserver import Context

log = logging.getLogger(__name__)


class Progress:
    """``async with Progress(ctx) as progress: await client.call(..., progress=progress)``."""

    def __init__(self, ctx: Context, total: float | None = None) -> None:
        self._ctx = ctx
        self._total = total
        self._queue: asyncio.Queue[tuple[int, str] | None] = asyncio.Queue()  # None: done
        self._task: asyncio.Task[None] | None = None
        self.step = 0

    def __call__(self, message: str) -> None:
        self.step += 1
        self._queue.put_nowait((self.step, message))

    async def _send(self) -> None:
        while (item := await self._queue.get()) is not None:
            step, message = item
            try:
                await self._ctx.report_progress(step, self._total, message)
            except Exception as e:  # a client that went away must not fail the operation
                log.debug("could not send progress %r: %s", message, e)

    async def __aenter__(self) -> Progress:
        self._task = asyncio.create_task(self._send(), name="palot-mcp-progress")
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        assert self._task is not None
        if exc is None:
            self._queue.put_nowait(None)  # deliver everything reported so far, then stop
            await self._task
        else:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
