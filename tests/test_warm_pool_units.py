"""The warm pool's bookkeeping (palot.backends.pool), with slots that are plain records: how many it keeps per
set of limits, which sets it keeps, what a failed start, a smaller setting and closing do. The real
containers are in test_warm_pool.py."""

from __future__ import annotations

import asyncio
import itertools

from palot.backends.pool import MAX_KEYS, Key, Slot, WarmPool


class Starts:
    """Starts slots on demand (instantly, or failing while ``failing``) and records removals."""

    def __init__(self) -> None:
        self.ids = itertools.count(1)
        self.started: list[str] = []
        self.removed: list[str] = []
        self.failing = False

    async def start(self, key: Key) -> Slot:
        await asyncio.sleep(0)
        if self.failing:
            raise RuntimeError("the engine is down")
        slot = Slot(env_id=f"env_{next(self.ids)}", key=key, port=None, password="x", container=None, started_at=0)
        self.started.append(slot.env_id)
        return slot

    async def remove(self, env_id: str) -> None:
        self.removed.append(env_id)


async def _settle() -> None:
    for _ in range(20):
        await asyncio.sleep(0)


async def test_a_pool_fills_each_wanted_key_to_its_size_and_refills_after_a_take() -> None:
    starts = Starts()
    size = 2
    pool = WarmPool(starts.start, starts.remove, size=lambda: size)
    pool.start()
    await _settle()
    assert pool.ready() == 0  # nothing wanted yet: nothing started
    pool.want(("2g",))
    await _settle()
    assert pool.ready() == 2 and pool.ids() == {"env_1", "env_2"}

    slot = pool.take(("2g",))
    assert slot is not None and slot.env_id == "env_1"
    assert pool.take(("1g",)) is None  # another set of limits: none ready, but wanted from now on
    await _settle()
    assert pool.ready() == 4 and "env_1" not in pool.ids()

    size = 1  # the setting went down: the extra ones go
    pool.kick()
    await _settle()
    assert pool.ready() == 2 and len(starts.removed) == 2
    await pool.close()
    assert pool.ready() == 0 and len(starts.removed) == 4 and "env_1" not in starts.removed  # taken: not ours


async def test_only_the_default_and_the_latest_sets_of_limits_are_kept_warm() -> None:
    starts = Starts()
    pool = WarmPool(starts.start, starts.remove, size=lambda: 1)
    pool.start()
    keys = [(f"{n}g",) for n in range(MAX_KEYS + 2)]
    for key in keys:
        pool.want(key)
        await _settle()
    assert pool.ready() == MAX_KEYS
    assert pool.take(keys[0]) is not None  # the first one (the default) is never let go
    assert pool.take(keys[-1]) is not None
    assert all(pool.take(key) is None for key in keys[1:-1])
    await pool.close()


async def test_a_failed_start_is_tried_again_later_and_closing_stops_it() -> None:
    starts = Starts()
    starts.failing = True
    pool = WarmPool(starts.start, starts.remove, size=lambda: 1)
    pool.start()
    pool.want(("2g",))
    await _settle()
    assert pool.ready() == 0 and starts.started == []
    starts.failing = False
    pool.kick()  # e.g. the next spawn: tried at once, not after the back-off
    await _settle()
    assert pool.ready() == 1
    await pool.close()
    assert starts.removed == starts.started
    pool.want(("2g",))
    await _settle()
    assert pool.ready() == 0  # closed for good
