"""``PalotApp``: the Palot service as the MCP server's tools and resources see it — one client, one feed."""

from __future__ import annotations

import asyncio
import contextlib
import sys
import time
from collections import deque
from collections.abc import AsyncIterator, Callable

from mcp.server.subscriptions import SubscriptionBus

from palot import api
from palot.client import PalotClient
from palot.errors import ServiceUnavailable

from .notifications import ChangeFeed

#: How long serving waits for the event stream to attach before it answers requests anyway.
ATTACH_TIMEOUT = 5.0
#: How many of the service's notifications palot://notifications keeps (newest first).
KEPT_NOTES = 50


def _say(line: str) -> None:
    # stdout is the protocol on stdio: what the client says while starting the service goes to stderr.
    print(f"palot-mcp: {line}", file=sys.stderr, flush=True)


class PalotApp:
    """Holds one ``PalotClient`` and its change feed for as long as at least one MCP client is served.

    Given a client (tests, embedding), the app uses it and leaves it open. Otherwise it makes its own
    ``PalotClient()`` for ``$PALOT_HOME`` — which starts the Palot service when none runs — and closes it
    after the last MCP client.
    """

    def __init__(self, client: PalotClient | None, bus: SubscriptionBus) -> None:
        self._owned = client is None
        self._client = client
        self._bus = bus
        self._users = 0
        self._lock = asyncio.Lock()
        self._feed: asyncio.Task[None] | None = None
        # Where the service's notifications go (the server's client channels); nowhere until it is set.
        self.on_note: Callable[[api.Notification], None] = lambda _note: None
        # The latest notifications, for palot://notifications: 2026-07-28 clients hear of a notification
        # as an update of that resource (log messages reach them only on a request's own stream).
        self.notes: deque[api.Notification] = deque(maxlen=KEPT_NOTES)

    @property
    def client(self) -> PalotClient:
        if self._client is None:
            raise ServiceUnavailable("palot-mcp has not connected to the Palot service yet", "retry in a moment")
        return self._client

    @contextlib.asynccontextmanager
    async def serving(self) -> AsyncIterator[PalotApp]:
        """The MCP server's lifespan: connect on the first MCP client, stop after the last."""
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
            self._client = PalotClient(progress=_say)
        try:
            # Raises a PalotError (message + fix) when the service cannot be reached or started.
            before = (await self.client.connect()).clients
        except BaseException:
            await self._stop()
            raise
        feed = ChangeFeed(self.client, self._bus, on_note=self._heard)
        await feed.seed()
        self._feed = asyncio.create_task(feed.run(), name="palot-mcp-feed")
        await self._attached(before)

    def _heard(self, note: api.Notification) -> None:
        self.notes.appendleft(note)
        self.on_note(note)

    async def _attached(self, before: int) -> None:
        """Wait (briefly) until the service counts the feed's event stream, so no change made by the first
        request is missed. The stream says nothing when it attaches; the service's client count does."""
        deadline = time.monotonic() + ATTACH_TIMEOUT
        while time.monotonic() < deadline and self._feed is not None and not self._feed.done():
            if (await self.client.status()).clients > before:
                return
            await asyncio.sleep(0.02)

    async def _stop(self) -> None:
        if self._feed is not None:
            self._feed.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._feed
            self._feed = None
        if self._owned and self._client is not None:
            client, self._client = self._client, None
            await client.close()
