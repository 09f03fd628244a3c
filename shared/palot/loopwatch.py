"""Finds what blocks an event loop, in asyncio's debug mode only.

asyncio's debug mode (``PYTHONASYNCIODEBUG=1``; the test suite sets it for every process it starts) warns
when one callback held the loop for 0.1 s, but names only the task, whose outermost coroutine is rarely
the line to blame. So each loop Palot runs on in debug mode gets a watcher thread: when the loop has not
turned for ``THRESHOLD`` it samples the loop thread's stack and logs the innermost line of our own code
that held it, and whether that line is Palot's (``shared/palot``, the front ends) or someone else's (a
test). A loop that was only waiting for a CPU on a loaded machine is not reported: only the time its
thread spent asleep in a system call (a blocking call: a process, a timer, a lock, the network) or running
(CPU work) counts. Time in uninterruptible disk waits (state D: a small file write or fsync that a busy disk
stalled) is said in the line but is not a block by the code: it cannot be told from any file access. Nor
are two more things a loaded machine does to any code: a garbage collection (its CPU time is measured and
taken off), and waiting for a new thread to get a CPU (``Thread.start`` waits until the thread runs; an
executor starts its threads on first use).

Palot's code is blamed when Palot's code is what the loop was running: one of its coroutines, or a callback
the loop called. A synchronous Palot function that someone else's coroutine called itself (a notebook cell
building a dashboard's widgets, a test building an MCP server) runs in that caller's time, as any function
it calls would: the line says so, and it is not counted against Palot.
"""

from __future__ import annotations

import asyncio
import gc
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
_gc_cpu: dict[int, float] = {}  # thread ident -> CPU seconds spent collecting garbage in that thread so far
_gc_began: dict[int, float] = {}


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
    garbage: float = 0.0  # CPU time of garbage collections meanwhile (part of ``cpu``)
    starting: float = 0.0  # time asleep waiting for a new thread to get a CPU (not part of ``asleep``)

    def describe(self) -> str:
        if self.palot:
            owner = PALOT_MARK
        elif self.called_by:
            owner = f"in a synchronous call that {self.called_by} made to Palot (the caller's time)"
        elif self.garbage >= self.cpu / 2 and self.asleep < THRESHOLD:
            owner = "mostly by a garbage collection (any code's allocations start one)"
        else:
            owner = "by other code or by the disk"
        via = "".join(f", called from {line}" for line in self.callers)
        machine = "".join(f", {seconds:.2f} s {what}" for seconds, what in (
            (self.garbage, "of it collecting garbage"), (self.starting, "waiting for a new thread to start"))
            if seconds)
        return (f"the event loop was held for {self.seconds:.2f} s ({self.cpu:.2f} s CPU, {self.asleep:.2f} s in a "
                f"blocking call, {self.disk:.2f} s waiting for the disk{machine}) {owner} at {self.where}, "
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
        if _count_garbage not in gc.callbacks:
            gc.callbacks.append(_count_garbage)
    threading.Thread(target=_Watcher(loop, threading.get_ident(), threading.get_native_id()).run,
                     name="palot-loopwatch", daemon=True).start()


def _count_garbage(phase: str, info: dict[str, int]) -> None:
    # Runs in the thread whose allocation started the collection; finalizers (``__del__``) run inside it.
    ident = threading.get_ident()
    if phase == "start":
        _gc_began[ident] = time.thread_time()
    elif ident in _gc_began:
        _gc_cpu[ident] = _gc_cpu.get(ident, 0.0) + time.thread_time() - _gc_began.pop(ident)


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


def _thread_starting() -> bool:
    """Whether a thread has been started and has not run yet: ``Thread.start`` sleeps until it has (the
    threads ``threading`` keeps in ``_limbo`` meanwhile)."""
    return bool(getattr(threading, "_limbo", None))


def _judge(inwards: list[_Frame], held: float, cpu: float, asleep: float, disk: float, garbage: float,
           starting: float) -> Block | None:
    """The block to report, from what was measured while the loop did not turn: None when it was short, or
    the loop's thread was only waiting for a CPU. Palot is blamed only for what its code did: a blocking call,
    or CPU work that was not a garbage collection."""
    if held < THRESHOLD or (asleep < THRESHOLD and cpu < THRESHOLD and disk < THRESHOLD):
        return None
    ours = [f for f in inwards if _ours(f.filename)] or [inwards[0]]
    palot = ours[0].filename.startswith(_PALOT) and (asleep >= THRESHOLD or cpu - garbage >= THRESHOLD)
    caller = _synchronous_caller(inwards[inwards.index(ours[0]):]) if palot else None
    return Block(held, cpu, asleep, _line(ours[0]), _line(inwards[0]), palot and caller is None,
                 tuple(_line(f) for f in ours[1:3]), disk, None if caller is None else _line(caller), garbage,
                 starting)


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
        start, cpu0, garbage0 = time.monotonic(), time.clock_gettime(self.clock), _gc_cpu.get(self.ident, 0.0)
        stack, asleep, disk, starting = None, 0.0, 0.0, 0.0
        while not self.turned.wait(_TICK):
            if not self.loop.is_running():  # stopped between two runs: not a block
                return
            state = self._state()
            if state == "S":
                # Not the stack each tick: walking another thread's frames often can crash CPython 3.11.
                if _thread_starting():
                    starting += _TICK
                else:
                    asleep += _TICK
            disk += _TICK if state == "D" else 0.0
            if stack is None and time.monotonic() - start >= THRESHOLD / 2:
                stack = self._stack()
        held, cpu = time.monotonic() - start, time.clock_gettime(self.clock) - cpu0
        if stack is not None:
            block = _judge(stack, held, cpu, asleep, disk, _gc_cpu.get(self.ident, 0.0) - garbage0, starting)
            if block is not None:
                log.warning(block.describe())

    def _stack(self) -> list[_Frame] | None:
        """The loop thread's stack, innermost first."""
        frame = sys._current_frames().get(self.ident)
        frames: list[_Frame] = []
        while frame is not None:
            code = frame.f_code
            frames.append(_Frame(code.co_filename, frame.f_lineno, code.co_name,
                                 bool(code.co_flags & (inspect.CO_COROUTINE | inspect.CO_ASYNC_GENERATOR))))
            frame = frame.f_back
        return frames or None

    def _state(self) -> str:
        try:
            return Path(self.stat).read_text().rsplit(")", 1)[1].split()[0]
        except (OSError, IndexError):
            return "?"
