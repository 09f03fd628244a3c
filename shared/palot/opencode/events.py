"""The server's global SSE stream, with reconnect, backoff and a heartbeat timeout.

OpenCode sends ``server.heartbeat`` every 10 s, so a stream that is silent for
much longer than that is dead even if the socket looks open.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator, Callable

import httpx
from httpx_sse import aconnect_sse

from .. import tls
from .models import EventPayload, GlobalEvent

log = logging.getLogger(__name__)

#: Synthetic events the stream yields about itself, so subscribers can resync.
STREAM_CONNECTED = "palot.stream.connected"
STREAM_DISCONNECTED = "palot.stream.disconnected"


def _synthetic(kind: str, **props: object) -> GlobalEvent:
    return GlobalEvent(directory=None, payload=EventPayload(type=kind, properties=dict(props)))


class EventStream:
    """Iterate over ``/global/event`` forever, reconnecting with exponential backoff.

    ``base_url`` is read through a callable so a server restarted on a new
    port is picked up on the next reconnect.
    """

    def __init__(
        self,
        base_url: Callable[[], str],
        auth: httpx.Auth | None,
        *,
        heartbeat_timeout: float = 25.0,
        answer_timeout: float = 10.0,
        backoff_initial: float = 0.1,
        backoff_max: float = 5.0,
        uds: str | None = None,
    ) -> None:
        self._base_url = base_url
        self._auth = auth
        self._uds = uds
        self.heartbeat_timeout = heartbeat_timeout
        # A server that is still starting may accept the connection and answer late: retry soon rather
        # than wait a whole heartbeat timeout with no events (e.g. right after a restart).
        self.answer_timeout = answer_timeout
        self.backoff_initial = backoff_initial
        self.backoff_max = backoff_max
        self.connected = False
        self.reconnects = 0

    async def __aiter__(self) -> AsyncIterator[GlobalEvent]:
        delay = self.backoff_initial
        timeout = httpx.Timeout(10.0, read=self.heartbeat_timeout)
        transport = httpx.AsyncHTTPTransport(uds=self._uds, verify=tls.context()) if self._uds else None
        async with httpx.AsyncClient(auth=self._auth, timeout=timeout, transport=transport,
                                     verify=tls.context()) as http:
            while True:
                try:
                    url = self._base_url().rstrip("/") + "/global/event"
                    async with contextlib.AsyncExitStack() as stack:
                        async with asyncio.timeout(self.answer_timeout):
                            source = await stack.enter_async_context(aconnect_sse(http, "GET", url))
                        source.response.raise_for_status()
                        self.connected = True
                        delay = self.backoff_initial
                        yield _synthetic(STREAM_CONNECTED, reconnects=self.reconnects)
                        async for sse in source.aiter_sse():
                            if not sse.data:
                                continue
                            try:
                                yield GlobalEvent.model_validate(json.loads(sse.data))
                            except (ValueError, TypeError) as e:
                                log.warning("skipping malformed event: %s", e)
                except (httpx.HTTPError, OSError, TimeoutError) as e:
                    log.info("event stream lost (%s); reconnecting in %.1fs", type(e).__name__, delay)
                if self.connected:
                    self.connected = False
                    yield _synthetic(STREAM_DISCONNECTED)
                self.reconnects += 1
                await asyncio.sleep(delay)
                delay = min(delay * 2, self.backoff_max)
