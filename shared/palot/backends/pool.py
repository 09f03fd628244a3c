"""Warm containers: environments started ahead of need, so a container spawn or move skips the engine's start
and OpenCode's own (the most of a cold container's 6 s).

A slot is a whole environment-to-be under its final id (``env_…``): its container from the agent image with
OpenCode listening, an empty workspace directory bind-mounted at ``/workspace``, its run directory, home
volume and password. Taking a slot hands all of that to the agent being made: the workspace is filled by a
clone at that moment (OpenCode is directory-agnostic and has not looked at ``/workspace`` yet), and the
agent's own variables (dev-server ports) reach its bash through a file named by ``BASH_ENV``, because the
container's environment was fixed when it started.

Slots are kept per set of limits (memory, cpus, pids, network) for the sets spawns asked for lately, the
default set first; ``size`` (the ``[containers] warm_pool`` setting) slots each. Environments that publish
ports are never pooled (ports are fixed at start). The pool is emptied when the service stops, forgets its
slots when the engine goes away (and fills again once it is back), and its slots are live to ``palot gc``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

log = logging.getLogger(__name__)

#: The sets of limits kept warm at most (the default one and the latest others asked for).
MAX_KEYS = 2
#: After a failed start (engine down, image missing), the next try waits this long, doubling to the cap.
RETRY_S, RETRY_CAP_S = 5.0, 300.0

Key = tuple[Any, ...]


@dataclass
class Slot:
    """A started environment waiting for an agent."""

    env_id: str
    key: Key | None  # None for a cold start that cannot be pooled (it publishes ports)
    port: int | None
    password: str
    container: Any
    started_at: float
    published: dict[int, int] = field(default_factory=dict)  # container port → loopback port (cold starts only)


class WarmPool:
    """Keeps ``size()`` started slots per wanted key; :meth:`take` hands one out and starts its replacement."""

    def __init__(self, start: Callable[[Key], Awaitable[Slot]], remove: Callable[[str], Awaitable[None]],
                 size: Callable[[], int] = lambda: 0) -> None:
        self._start = start
        self._remove = remove
        self.size = size
        self._ready: dict[Key, list[Slot]] = {}
        self._starting: dict[Key, int] = {}
        self._starting_ids: set[str] = set()
        self._wanted: list[Key] = []  # newest last; the first one (the default) is never dropped
        self._task: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()
        self._retry = 0.0
        self._closed = False

    # --- what others ask ----------------------------------------------------

    def ids(self) -> set[str]:
        """Every slot's environment id, ready or starting (``palot gc`` must leave them alone)."""
        return {s.env_id for slots in self._ready.values() for s in slots} | set(self._starting_ids)

    def ready(self) -> int:
        return sum(len(slots) for slots in self._ready.values())

    def want(self, key: Key) -> None:
        """Keep ``key`` warm from now on (the oldest wanted key beyond :data:`MAX_KEYS` is let go)."""
        if key in self._wanted:
            if key != self._wanted[0]:
                self._wanted.remove(key)
                self._wanted.append(key)
        else:
            self._wanted.append(key)
            while len(self._wanted) > MAX_KEYS:
                dropped = self._wanted.pop(1)
                for slot in self._ready.pop(dropped, []):
                    self._discard(slot.env_id)
        self.kick()

    def take(self, key: Key) -> Slot | None:
        """A ready slot for ``key``, if one is; its replacement starts in the background."""
        slots = self._ready.get(key) or []
        slot = slots.pop(0) if slots else None
        self.want(key)
        return slot

    def forget(self) -> None:
        """The engine went away: the ready slots' containers are gone with it."""
        self._ready.clear()
        self.kick()

    # --- keeping it full ----------------------------------------------------

    def start(self) -> None:
        if self._task is None and not self._closed:
            self._task = asyncio.get_running_loop().create_task(self._keep())

    def kick(self) -> None:
        """Look again at the size and the wanted keys now."""
        self._wake.set()

    async def _keep(self) -> None:
        while not self._closed:
            self._wake.clear()
            try:
                await self._fill()
                self._retry = 0.0
                timeout: float | None = None
            except asyncio.CancelledError:
                raise
            except Exception as e:  # engine down, image not built: nothing to warm until that changes
                self._retry = min(RETRY_CAP_S, self._retry * 2 or RETRY_S)
                log.info("could not warm a container (next try in %.0f s): %s", self._retry, e)
                timeout = self._retry
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout)

    async def _fill(self) -> None:
        size = max(0, self.size())
        for key in list(self._wanted):
            extra = self._ready.get(key, [])[size:]
            for slot in extra:  # the setting went down
                self._ready[key].remove(slot)
                await self._remove(slot.env_id)
            while key in self._wanted and len(self._ready.get(key, [])) + self._starting.get(key, 0) < size:
                self._starting[key] = self._starting.get(key, 0) + 1
                try:
                    slot = await self._start(key)
                finally:
                    self._starting[key] -= 1
                if self._closed or key not in self._wanted:
                    await self._remove(slot.env_id)
                    return
                self._ready.setdefault(key, []).append(slot)
                log.info("warm container %s ready (%s)", slot.env_id, key)

    def starting(self, env_id: str) -> None:
        """Called by ``start`` with the id it chose, before it makes anything (so gc sees it as live)."""
        self._starting_ids.add(env_id)

    def started(self, env_id: str) -> None:
        self._starting_ids.discard(env_id)

    def _discard(self, env_id: str) -> None:
        task = asyncio.get_running_loop().create_task(self._remove(env_id))
        task.add_done_callback(lambda t: t.cancelled() or t.exception())

    async def close(self) -> None:
        """Stop filling and remove every ready slot (a warm container is cheap to start again)."""
        self._closed = True
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        slots = [s for slots in self._ready.values() for s in slots]
        self._ready.clear()
        await asyncio.gather(*(self._remove(s.env_id) for s in slots), return_exceptions=True)
