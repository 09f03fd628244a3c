"""Finds what blocks an event loop, in asyncio's debug mode only.

asyncio's debug mode (``PYTHONASYNCIODEBUG=1``; the test suite sets it for every process it starts) warns
when one callback held the loop for 0.1 s, but names only the task, whose outermost coroutine is rarely
the line to blame. So each loop Palot runs on in debug mode gets a watcher thread: when the loop has not
turned for ``THRESHOLD`` it samples the loop thread's stack and logs the innermost line of our own code
that held it, and whether that line is Palot's (``shared/palot``, the front ends) or someone else's (a
test). A loop that was only waiting for a CPU on a loaded machine is not reported: only the time its
thread spent asleep in a system call (a blocking call: a process, a timer, a lock, the network) or running
(CPU work) counts. Time in uninterruptible disk waits (state D: a small file write or fsync that a busy disk
stalled) is said in the line but is not a block by the code: it cannot be told from any file access.

Palot's code is blamed when Palot's code is what the loop was running: one of its coroutines, or a callback
the loop called. A synchronous Palot function that someone else's coroutine called itself (a notebook cell
building a dashboard's widgets, a test building an MCP server) runs in that caller's time, as any function
it calls would: the line says so, and it is not counted against Palot.
"""

from __future__ import annotations

import asyncio
import importlib.util
import inspect
import logging
import sys
import sysconfig
import threading
import time
import weakref
from dataclasses import dataclass
from pathlib import Path

THRESHOLD = 0.1  # seconds: asyncio's own slow_callback_duration
_TICK = 0.01  # how often a held loop is looked at
_IDLE = 0.05  # how often a turning loop is asked to turn
PALOT_MARK = "by Palot's code"  # in the log line of a block Palot caused (what the test suite looks for)

log = logging.getLogger("palot.loopwatch")
_watched: weakref.WeakSet[asyncio.AbstractEventLoop] = weakref.WeakSet()
_lock = threading.Lock()


def _package_dirs(names: tuple[str, ...]) -> tuple[str, ...]:
    dirs = [str(Path(__file__).resolve().parent)]
    for name in names:  # found without importing them: a front end may not be installed
        spec = importlib.util.find_spec(name)
        if spec is not None and spec.submodule_search_locations:
            dirs += [str(Path(p).resolve()) for p in spec.submodule_search_locations]
    return tuple(d.rstrip("/") + "/" for d in dirs)


_PALOT = _package_dirs(("palot_mcp", "palot_lsp", "palot_jupyter"))
_LIBRARY = tuple({str(Path(sysconfig.get_paths()[k]).resolve()) + "/" for k in ("stdlib", "purelib", "platlib")})


@dataclass(frozen=True)
class Block:
    """One time the loop did not turn for at least ``THRESHOLD``."""

    seconds: float
    cpu: float  # the loop thread's CPU time meanwhile
    asleep: float  # the time its thread was seen asleep in a system call (not the disk)
    where: str  # the innermost line of our own code (not the standard library's or a dependency's)
    calling: str  # the innermost line of all, e.g. inside subprocess or time.sleep
    palot: bool  # whether ``where`` is Palot's and held the loop itself (a blocking call or CPU, not the disk)
    callers: tuple[str, ...] = ()  # the next lines of our own code outwards, to find the call to change
    disk: float = 0.0  # the time its thread was seen in an uninterruptible disk wait
    called_by: str | None = None  # the other code whose own synchronous call to Palot this was

    def describe(self) -> str:
        if self.palot:
            owner = PALOT_MARK
        elif self.called_by:
            owner = f"in a synchronous call that {self.called_by} made to Palot (the caller's time)"
        else:
            owner = "by other code or by the disk"
        via = "".join(f", called from {line}" for line in self.callers)
        return (f"the event loop was held for {self.seconds:.2f} s ({self.cpu:.2f} s CPU, {self.asleep:.2f} s in a "
                f"blocking call, {self.disk:.2f} s waiting for the disk) {owner} at {self.where}, "
                f"calling {self.calling}{via}")


def watch_running_loop() -> None:
    """Watch the running loop if it is in debug mode (once per loop; nothing otherwise). Called where Palot's
    processes start their work: the core, the client."""
    loop = asyncio.get_running_loop()
    if not loop.get_debug():
        return
    with _lock:
        if loop in _watched:
            return
        _watched.add(loop)
    threading.Thread(target=_Watcher(loop, threading.get_ident(), threading.get_native_id()).run,
                     name="palot-loopwatch", daemon=True).start()


@dataclass(frozen=True)
class _Frame:
    filename: str
    lineno: int | None
    name: str
    asynchronous: bool  # a coroutine's frame: code the loop runs, not a function someone called


def _line(frame: _Frame) -> str:
    return f"{frame.filename}:{frame.lineno} in {frame.name}"


def _ours(filename: str) -> bool:
    return not filename.startswith(_LIBRARY) and not filename.startswith("<")


def _synchronous_caller(outwards: list[_Frame]) -> _Frame | None:
    """The other code that called Palot's holding line synchronously itself, if it did. ``outwards`` is the
    stack from that line out. None when a coroutine of Palot's is on the way (Palot's own async code held
    the loop), or a library's frame (the loop ran a callback of Palot's, or a library called it)."""
    for frame in outwards:
        if frame.filename.startswith("<"):
            continue  # generated code (a function built with exec) passes the call on
        if not _ours(frame.filename) or frame.asynchronous and frame.filename.startswith(_PALOT):
            return None
        if not frame.filename.startswith(_PALOT):
            return frame
    return None


class _Watcher:
    def __init__(self, loop: asyncio.AbstractEventLoop, ident: int, native_id: int) -> None:
        self.loop, self.ident = loop, ident
        self.stat = f"/proc/self/task/{native_id}/stat"
        self.clock = time.pthread_getcpuclockid(ident)
        self.turned = threading.Event()

    def run(self) -> None:
        while not self.loop.is_closed():
            if not self.loop.is_running():
                time.sleep(_IDLE)
                continue
            self.turned.clear()
            try:
                self.loop.call_soon_threadsafe(self.turned.set)
            except RuntimeError:  # closed meanwhile
                return
            self._until_turned()
            time.sleep(_IDLE)

    def _until_turned(self) -> None:
        start, cpu0 = time.monotonic(), time.clock_gettime(self.clock)
        stack, asleep, disk = None, 0.0, 0.0
        while not self.turned.wait(_TICK):
            if not self.loop.is_running():  # stopped between two runs: not a block
                return
            state = self._state()
            asleep += _TICK if state == "S" else 0.0
            disk += _TICK if state == "D" else 0.0
            if stack is None and time.monotonic() - start >= THRESHOLD / 2:
                stack = self._stack()
        held, cpu = time.monotonic() - start, time.clock_gettime(self.clock) - cpu0
        if stack is None or held < THRESHOLD or (asleep < THRESHOLD and cpu < THRESHOLD and disk < THRESHOLD):
            return  # short, or only waiting for a CPU on a loaded machine
        inwards = stack[::-1]
        ours = [f for f in inwards if _ours(f.filename)] or [stack[-1]]
        innermost = ours[0].filename.startswith(_PALOT) and (asleep >= THRESHOLD or cpu >= THRESHOLD)
        caller = _synchronous_caller(inwards[inwards.index(ours[0]):]) if innermost else None
        log.warning(Block(held, cpu, asleep, _line(ours[0]), _line(stack[-1]), innermost and caller is None,
                          tuple(_line(f) for f in ours[1:3]), disk,
                          None if caller is None else _line(caller)).describe())

    def _stack(self) -> list[_Frame] | None:
        """The loop thread's stack, outermost first."""
        frame = sys._current_frames().get(self.ident)
        frames: list[_Frame] = []
        while frame is not None:
            code = frame.f_code
            frames.append(_Frame(code.co_filename, frame.f_lineno, code.co_name,
                                 bool(code.co_flags & (inspect.CO_COROUTINE | inspect.CO_ASYNC_GENERATOR))))
            frame = frame.f_back
        return frames[::-1] or None

    def _state(self) -> str:
        try:
            return Path(self.stat).read_text().rsplit(")", 1)[1].split()[0]
        except (OSError, IndexError):
            return "?"
