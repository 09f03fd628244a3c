"""``PalotApp``: the Palot core as the MCP server's tools and resources see it."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from mcp.server.subscriptions import SubscriptionBus

from palot import Palot
from palot.errors import ServerUnavailable

from .notifications import ChangeFeed


class PalotApp:
    """Holds one ``Palot`` and its change feed for as long as at least one client is served.

    Given a started ``Palot`` (tests, embedding), the app uses it and leaves it
    running. Otherwise it creates ``Palot(attach_any=True)`` on first use, which
    attaches to the shared server of ``$PALOT_HOME`` (or starts one), and closes
    it after the last client.
    """

    def __init__(self, palot: Palot | None, bus: SubscriptionBus) -> None:
        self._palot = palot
        self._owned = palot is None
        self._bus = bus
        self._users = 0
        self._lock = asyncio.Lock()
        self._feed: asyncio.Task[None] | None = None

    @property
    def palot(self) -> Palot:
        if self._palot is None:
            raise ServerUnavailable("palot-mcp has not connected to Palot yet", "retry in a moment")
        return self._palot

    @contextlib.asynccontextmanager
    async def serving(self) -> AsyncIterator[PalotApp]:
        """The MCP server's lifespan: start on the first client, stop after the last."""
        async with self._lock:
            if self._users == 0:
                await self._start()
            self._users += 1
        try:
            yield self
        finally:
            async with self._lock:
                self._users -= 1
                if self._users == 0:
                    await self._stop()

    async def _start(self) -> None:
        if self._owned:
            palot = Palot(attach_any=True)
            try:
                await palot.start()
            except BaseException:
                with contextlib.suppress(Exception):
                    await palot.close()
                raise
            self._palot = palot
        self._feed = asyncio.create_task(ChangeFeed(self.palot, self._bus).run(), name="palot-mcp-feed")

    async def _stop(self) -> None:
        if self._feed is not None:
            self._feed.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._feed
            self._feed = None
        if self._owned and self._palot is not None:
            palot, self._palot = self._palot, None
            await palot.close()
