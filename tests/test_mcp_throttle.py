"""How palot-mcp paces resource notifications (``palot_mcp.throttle``): a change after a quiet spell is said
at once; a resource that keeps changing is said at most once per window, with its last change."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from palot_mcp.throttle import Throttle


class Sent:
    """What a throttle sent, in order, and a way to wait for the n-th send."""

    def __init__(self) -> None:
        self.keys: list[str] = []
        self._changed = asyncio.Condition()

    async def send(self, key: str) -> None:
        async with self._changed:
            self.keys.append(key)
            self._changed.notify_all()

    async def count(self, n: int) -> list[str]:
        async with asyncio.timeout(10), self._changed:
            await self._changed.wait_for(lambda: len(self.keys) >= n)
        return self.keys


@contextlib.asynccontextmanager
async def running(window: float) -> AsyncIterator[tuple[Throttle[str], Sent]]:
    sent = Sent()
    throttle: Throttle[str] = Throttle(window, sent.send)
    task = asyncio.create_task(throttle.run())
    try:
        yield throttle, sent
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def test_a_change_after_a_quiet_spell_is_sent_without_waiting_for_a_window() -> None:
    async with running(window=3600) as (throttle, sent):  # a window that never ends in this test
        throttle.mark("palot://agents/ag_1")
        assert await sent.count(1) == ["palot://agents/ag_1"]
        for _ in range(100):  # the same resource, busy: held for the end of its window, once
            throttle.mark("palot://agents/ag_1")
        throttle.mark("palot://agents/ag_2")  # another, quiet: at once, not behind the busy one
        assert await sent.count(2) == ["palot://agents/ag_1", "palot://agents/ag_2"]
        assert throttle.pending == ["palot://agents/ag_1"]


async def test_a_busy_resource_is_sent_once_per_window_never_flooding() -> None:
    async with running(window=0.05) as (throttle, sent):
        throttle.mark("palot://agents/ag_1/activity")
        await sent.count(1)
        for _ in range(200):
            throttle.mark("palot://agents/ag_1/activity")
        assert await sent.count(2) == ["palot://agents/ag_1/activity"] * 2  # the window's end says the rest
        await asyncio.sleep(0.3)  # several windows with nothing new: nothing more is said
        assert sent.keys == ["palot://agents/ag_1/activity"] * 2 and throttle.pending == []


async def test_an_urgent_change_is_sent_at_once_even_within_the_window_and_ahead_of_others() -> None:
    async with running(window=3600) as (throttle, sent):
        throttle.mark("palot://agents/ag_1")  # e.g. its token count
        await sent.count(1)
        throttle.mark("palot://agents/ag_1")
        throttle.mark("palot://agents/ag_2/activity")
        throttle.mark("palot://agents/ag_1", urgent=True)  # then its status: completed
        assert throttle.pending == ["palot://agents/ag_1", "palot://agents/ag_2/activity"]
        assert await sent.count(3) == ["palot://agents/ag_1", "palot://agents/ag_1", "palot://agents/ag_2/activity"]
        assert throttle.pending == []
