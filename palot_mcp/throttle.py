"""``Throttle``: say a change at once, then at most once per window while it keeps changing.

A resource that was quiet is announced without delay (an agent completing after its stream went still);
one that changes again within its window (an agent's activity while it streams) is announced once, when
the window ends, however often it changed. Clients are told promptly and never flooded. A rare change that
matters (an agent's new status) can be marked urgent: said at once even within its window.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Hashable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)


class Throttle(Generic[K]):
    """Passes each marked key to ``send`` in order: at once when it was not sent within the last ``window``
    seconds, otherwise once when that window ends. ``run`` does the sending until cancelled."""

    def __init__(self, window: float, send: Callable[[K], Awaitable[None]]) -> None:
        self._window = window
        self._send = send
        self._until: dict[K, float] = {}  # a key sent recently → when its window ends
        self._urgent: dict[K, None] = {}  # keys to send now, before the others (a dict: each once, in order)
        self._ready: dict[K, None] = {}  # keys to send now
        self._waiting: dict[K, None] = {}  # keys marked within their window: sent when it ends
        self._wake = asyncio.Event()

    def mark(self, key: K, *, urgent: bool = False) -> None:
        """Send ``key`` (once, however often it is marked before it is sent); ``urgent``: at once even within
        its window, ahead of the others (for rare changes that matter, never for a stream of them)."""
        if key in self._urgent or (not urgent and (key in self._ready or key in self._waiting)):
            return
        self._waiting.pop(key, None)
        if urgent:
            self._ready.pop(key, None)
            self._urgent[key] = None
        elif self._until.get(key, 0.0) > asyncio.get_running_loop().time():
            self._waiting[key] = None
        else:
            self._ready[key] = None
        self._wake.set()  # to send it, or to wait for the end of its window

    @property
    def pending(self) -> list[K]:
        """The keys marked and not sent yet, in the order they will be sent."""
        return [*self._urgent, *self._ready, *self._waiting]

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            timeout = min(self._until[k] for k in self._waiting) - loop.time() if self._waiting else None
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout)
            self._wake.clear()
            now = loop.time()
            for key in [k for k in self._waiting if self._until[k] <= now]:
                del self._waiting[key]
                self._ready[key] = None
            # Windows that ended with nothing waiting are forgotten (a quiet key needs no entry).
            self._until = {k: t for k, t in self._until.items() if t > now}
            while self._urgent or self._ready:  # one at a time: an urgent key marked meanwhile goes next
                queue = self._urgent or self._ready
                key = next(iter(queue))
                del queue[key]
                self._until[key] = loop.time() + self._window
                await self._send(key)
