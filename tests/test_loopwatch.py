"""The loop watcher behind the suite's blocking check: it names the line that held a loop, says whose it is,
and stays out of loops that are not in debug mode."""

from __future__ import annotations

import asyncio
import functools
import gc
import logging
import threading
import time
from pathlib import Path

import loop_blocks
import pytest
from palot import loopwatch
from palot.install import opencode_version


def _run(body, *, debug: bool = True, as_callback: bool = False) -> list[str]:
    """What the watcher logs while ``body`` runs on a loop: called by the test's coroutine, or by the loop
    itself as a callback (as the loop runs Palot's own work)."""
    seen: list[str] = []
    handler = logging.Handler()
    handler.emit = lambda record: seen.append(record.getMessage())  # type: ignore[method-assign]
    loopwatch.log.addHandler(handler)

    async def main() -> None:
        loopwatch.watch_running_loop()
        await asyncio.sleep(0.1)
        if as_callback:
            asyncio.get_running_loop().call_soon(body)
            await asyncio.sleep(0)  # it runs before this coroutine goes on
        else:
            body()
        await asyncio.sleep(0.2)  # the watcher reports once the loop turns again

    try:
        asyncio.run(main(), debug=debug)
    finally:
        loopwatch.log.removeHandler(handler)
    return seen


def test_a_blocking_call_in_palot_code_is_named_with_its_line(tmp_path: Path) -> None:
    slow = tmp_path / "opencode"
    slow.write_text("#!/bin/sh\nsleep 0.3\necho 1.0.0\n")
    slow.chmod(0o755)
    with loop_blocks.expected():
        seen = _run(functools.partial(opencode_version, slow), as_callback=True)  # a subprocess on the loop
    assert len(seen) == 1, seen
    assert loopwatch.PALOT_MARK in seen[0] and "palot/install.py" in seen[0], seen[0]
    asleep = float(seen[0].split("CPU, ")[1].split(" s in")[0])
    assert asleep >= 0.15, seen[0]


def test_palots_synchronous_function_called_by_other_code_runs_in_the_callers_time(tmp_path: Path) -> None:
    slow = tmp_path / "opencode"
    slow.write_text("#!/bin/sh\nsleep 0.3\necho 1.0.0\n")
    slow.chmod(0o755)
    seen = _run(lambda: opencode_version(slow))  # the test's coroutine calls it, as a notebook cell would
    assert len(seen) == 1, seen
    assert loopwatch.PALOT_MARK not in seen[0] and "palot/install.py" in seen[0], seen[0]
    assert "synchronous call that " in seen[0] and "test_loopwatch.py" in seen[0].split("synchronous call")[1]


def _frame(path: str, asynchronous: bool = False) -> loopwatch._Frame:
    return loopwatch._Frame(path, 1, "f", asynchronous)


def test_palot_is_blamed_unless_other_code_called_it_synchronously() -> None:
    palot = loopwatch._PALOT[0]
    held, helper, coroutine = _frame(palot + "a.py"), _frame(palot + "b.py"), _frame(palot + "c.py", True)
    cell, loop = _frame("/tmp/ipykernel_1/123.py", True), _frame(loopwatch._LIBRARY[0] + "asyncio/events.py")
    generated = _frame("<string>")
    assert loopwatch._synchronous_caller([held, helper, generated, cell]) == cell  # a cell built a widget
    assert loopwatch._synchronous_caller([held, coroutine, cell]) is None  # a cell awaited Palot's coroutine
    assert loopwatch._synchronous_caller([held, helper, loop, cell]) is None  # the loop ran Palot's callback
    assert loopwatch._synchronous_caller([held]) is None


def test_a_block_in_other_code_is_reported_as_not_palots() -> None:
    seen = _run(lambda: time.sleep(0.3))
    assert len(seen) == 1, seen
    assert "by other code" in seen[0] and "test_loopwatch.py" in seen[0] and "in <lambda>" in seen[0], seen[0]
    held = float(seen[0].split("held for ")[1].split(" s")[0])
    assert 0.2 <= held < 1.0, seen[0]


def test_cpu_work_counts_as_holding_the_loop() -> None:
    def spin() -> None:
        end = time.thread_time() + 0.3
        while time.thread_time() < end:
            pass

    seen = _run(spin)
    assert len(seen) == 1 and "by other code" in seen[0], seen
    cpu = float(seen[0].split("(")[1].split(" s CPU")[0])
    assert cpu >= 0.2, seen[0]  # the watcher may start looking up to 50 ms into the 0.3 s


def test_short_callbacks_and_loops_without_debug_are_left_alone() -> None:
    assert _run(lambda: time.sleep(0.03)) == []
    before = {t.ident for t in threading.enumerate() if t.name == "palot-loopwatch"}
    assert _run(lambda: time.sleep(0.3), debug=False) == []
    after = {t.ident for t in threading.enumerate() if t.name == "palot-loopwatch"}
    assert after <= before


@pytest.mark.parametrize("blocked", [False, True])
def test_the_watcher_stops_with_its_loop(blocked: bool) -> None:
    _run((lambda: time.sleep(0.2)) if blocked else (lambda: None))
    deadline = time.monotonic() + 2
    while any(t.name == "palot-loopwatch" for t in threading.enumerate()) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert not any(t.name == "palot-loopwatch" for t in threading.enumerate())


class _SlowToCollect:
    """Garbage whose finalizer takes a while, as an unclosed event loop's did in CI."""

    def __init__(self) -> None:
        self.cycle = self  # only a garbage collection frees it

    def __del__(self) -> None:
        began = time.thread_time()
        while time.thread_time() - began < 0.25:
            pass


def test_a_garbage_collection_is_measured_and_not_blamed_on_the_code_that_was_running() -> None:
    def collect() -> None:
        _SlowToCollect()
        gc.collect()

    seen = _run(collect, as_callback=True)
    assert len(seen) == 1, seen
    garbage = float(seen[0].split("disk, ")[1].split(" s of it collecting garbage")[0])
    assert garbage >= 0.2, seen[0]
    assert "mostly by a garbage collection" in seen[0], seen[0]


def test_palot_is_blamed_for_its_blocking_calls_and_cpu_work_not_for_collections_or_thread_starts() -> None:
    held = [_frame(loopwatch._PALOT[0] + "a.py"), _frame(loopwatch._LIBRARY[0] + "asyncio/events.py")]
    block = lambda cpu=0.0, asleep=0.0, garbage=0.0, starting=0.0: loopwatch._judge(
        held, 0.4, cpu, asleep, 0.0, garbage, starting)
    assert block(cpu=0.3).palot and block(asleep=0.3).palot
    assert not block(cpu=0.3, garbage=0.25).palot  # CPU work was a collection's
    assert block(cpu=0.4, garbage=0.25).palot  # and 0.15 s of it was not
    assert block(starting=0.35) is None  # asleep only until a new thread got a CPU: a loaded machine
    assert block() is None  # only waiting for a CPU


def test_a_thread_that_was_started_and_has_not_run_yet_is_seen() -> None:
    assert not loopwatch._thread_starting()
    thread = threading.Thread(target=lambda: None)
    threading._limbo[thread] = thread  # type: ignore[attr-defined]  # what Thread.start does before the thread runs
    try:
        assert loopwatch._thread_starting()
    finally:
        del threading._limbo[thread]  # type: ignore[attr-defined]
    assert not loopwatch._thread_starting()
