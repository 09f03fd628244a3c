"""Helpers shared by the benchmarks: statistics, a bare SSE reader, event keys, process memory.

Not a test module (no ``test_`` prefix); the benchmarks import it by name
(pytest puts ``tests/bench`` on ``sys.path``).
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import gc
import importlib.util
import json
import os
import secrets
import statistics
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import httpx
from httpx_sse import aconnect_sse

BENCH_DIR = Path(__file__).resolve().parent
BENCH_SCRIPT = BENCH_DIR / "bench.json"


def _load_top_conftest() -> Any:
    # tests/bench/conftest.py shadows tests/conftest.py as `conftest` on sys.path,
    # so the shared helpers (make_repo, git) are loaded from their file under another name.
    path = BENCH_DIR.parent / "conftest.py"
    spec = importlib.util.spec_from_file_location("palot_tests_conftest", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


_top = _load_top_conftest()
make_repo: Callable[..., Path] = _top.make_repo
git: Callable[..., str] = _top.git


# --- statistics --------------------------------------------------------------


def percentile(values: Iterable[float], q: float) -> float:
    """The q-th percentile (0–100), linear interpolation between closest ranks."""
    data = sorted(values)
    if not data:
        return float("nan")
    if len(data) == 1:
        return data[0]
    pos = (len(data) - 1) * q / 100
    lo = int(pos)
    hi = min(lo + 1, len(data) - 1)
    return data[lo] + (data[hi] - data[lo]) * (pos - lo)


def summary_ms(seconds: Iterable[float]) -> dict[str, float]:
    """p50/p99/mean/min/max in milliseconds of durations given in seconds."""
    ms = [s * 1000 for s in seconds]
    return {
        "p50_ms": round(percentile(ms, 50), 3),
        "p99_ms": round(percentile(ms, 99), 3),
        "mean_ms": round(statistics.fmean(ms), 3) if ms else float("nan"),
        "min_ms": round(min(ms), 3) if ms else float("nan"),
        "max_ms": round(max(ms), 3) if ms else float("nan"),
        "n": len(ms),
    }


def ratio(a: float, b: float) -> float:
    return round(a / b, 3) if b else float("inf")


# --- events --------------------------------------------------------------------

_ID_MOD = 1 << 36  # OpenCode ids keep (ms * 4096 + counter) in 48 bits: the ms modulo 2**36


def event_key(payload: dict[str, Any]) -> str | None:
    """A key that names one event on every stream: ``payload.id``, or the id of a ``sync`` event's record."""
    eid = payload.get("id")
    if isinstance(eid, str) and eid:
        return eid
    sync = payload.get("syncEvent")
    if payload.get("type") == "sync" and isinstance(sync, dict) and isinstance(sync.get("id"), str):
        return "sync:" + sync["id"]
    return None


def created_at(key: str, near: float) -> float | None:
    """When OpenCode created an event (wall clock, seconds, 1 ms resolution), decoded from its id.

    OpenCode ids are ``evt_`` + 12 hex digits of ``(ms * 4096 + counter) mod 2**48`` + random;
    the milliseconds are recovered modulo 2**36 and placed next to ``near``.
    """
    raw = key.removeprefix("sync:")
    if not raw.startswith("evt_") or len(raw) < 16:
        return None
    try:
        low = int(raw[4:16], 16) >> 12
    except ValueError:
        return None
    near_ms = int(near * 1000)
    base = near_ms - near_ms % _ID_MOD + low
    best = min((base - _ID_MOD, base, base + _ID_MOD), key=lambda c: abs(c - near_ms))
    return best / 1000


class BareStream:
    """The baseline: a plain httpx-sse reader of ``/global/event``, parsing each event with ``json.loads``.

    ``on_event(payload_dict, directory, perf, wall)`` is called for every event.
    """

    def __init__(self, base_url: str, auth: httpx.Auth | None,
                 on_event: Callable[[dict[str, Any], str | None, float, float], None]) -> None:
        self.url = base_url.rstrip("/") + "/global/event"
        self.auth = auth
        self.on_event = on_event
        self.connected = asyncio.Event()
        self.task: asyncio.Task[None] | None = None

    async def _run(self) -> None:
        timeout = httpx.Timeout(10.0, read=None)
        async with httpx.AsyncClient(auth=self.auth, timeout=timeout) as http:
            async with aconnect_sse(http, "GET", self.url) as source:
                source.response.raise_for_status()
                async for sse in source.aiter_sse():
                    if not sse.data:
                        continue
                    event = json.loads(sse.data)
                    perf, wall = time.perf_counter(), time.time()
                    self.connected.set()  # OpenCode's first event is server.connected
                    payload = event.get("payload") or {}
                    self.on_event(payload, event.get("directory"), perf, wall)

    async def start(self, timeout: float = 10.0) -> "BareStream":
        self.task = asyncio.create_task(self._run(), name="bench-bare-sse")
        waiter = asyncio.create_task(self.connected.wait())
        done, _ = await asyncio.wait({waiter, self.task}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        if self.task in done:
            waiter.cancel()
            self.task.result()  # raises the connection error
        if waiter not in done:
            waiter.cancel()
            raise TimeoutError("the bare SSE client did not connect")
        return self

    async def stop(self) -> None:
        if self.task is not None:
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError, httpx.HTTPError):
                await self.task
            self.task = None


class LoopMonitor:
    """How much the event loop stalled, and how long Python's garbage collector paused it, over a span.

    A task sleeps ``interval`` seconds again and again; any lateness beyond that is a stall (some
    callback ran that long without yielding). ``gc.callbacks`` time every collection.
    """

    def __init__(self, interval: float = 0.005) -> None:
        self.interval = interval
        self.stalls: list[float] = []
        self.gc_pauses: list[tuple[int, float]] = []
        self._gc_start = 0.0
        self._task: asyncio.Task[None] | None = None

    def _on_gc(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self._gc_start = time.perf_counter()
        else:
            self.gc_pauses.append((int(info.get("generation", 0)), time.perf_counter() - self._gc_start))

    async def _run(self) -> None:
        while True:
            t = time.perf_counter()
            await asyncio.sleep(self.interval)
            self.stalls.append(time.perf_counter() - t - self.interval)

    def start(self) -> "LoopMonitor":
        gc.callbacks.append(self._on_gc)
        self._task = asyncio.create_task(self._run(), name="bench-loop-monitor")
        return self

    async def stop(self) -> dict[str, float]:
        with contextlib.suppress(ValueError):
            gc.callbacks.remove(self._on_gc)
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        pauses = [d for _, d in self.gc_pauses]
        return {
            "loop_stall_p99_ms": round(percentile(self.stalls, 99) * 1000, 2),
            "loop_stall_max_ms": round(max(self.stalls, default=0) * 1000, 2),
            "loop_stalls_over_10ms": sum(s > 0.010 for s in self.stalls),
            "gc_collections": len(pauses),
            "gc_gen2_collections": sum(g == 2 for g, _ in self.gc_pauses),
            "gc_max_pause_ms": round(max(pauses, default=0) * 1000, 2),
            "gc_total_ms": round(sum(pauses) * 1000, 2),
        }


def session_of(payload: dict[str, Any]) -> str | None:
    """The session an event concerns (same rule as ``GlobalEvent.session_id``)."""
    props = payload.get("properties") or {}
    sid = props.get("sessionID")
    if isinstance(sid, str) and sid:
        return sid
    for key in ("info", "part"):
        inner = props.get(key)
        if isinstance(inner, dict) and isinstance(inner.get("sessionID"), str):
            return inner["sessionID"]
    return None


# --- processes -----------------------------------------------------------------


def _status_kb(pid: int, field: str) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return 0


def _pss_kb(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return 0


def process_tree(root: int) -> list[int]:
    """``root`` and every live descendant, from /proc."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
            ppid = int(stat.rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        children.setdefault(ppid, []).append(int(entry))
    out, todo = [], [root]
    while todo:
        pid = todo.pop()
        if Path(f"/proc/{pid}").exists():
            out.append(pid)
            todo.extend(children.get(pid, []))
    return out


def tree_memory_mb(root: int) -> dict[str, float]:
    """Summed VmRSS and PSS (MB) of a process and its descendants, and how many processes that is."""
    pids = process_tree(root)
    rss = sum(_status_kb(p, "VmRSS") for p in pids)
    pss = sum(_pss_kb(p) for p in pids)
    return {"rss_mb": round(rss / 1024, 1), "pss_mb": round(pss / 1024, 1), "processes": len(pids)}


def tree_cpu_seconds(root: int) -> float:
    """User + system CPU seconds used so far by a process and its live descendants."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0
    for pid in process_tree(root):
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])  # utime, stime
        except (OSError, ValueError, IndexError):
            continue
    return total / tick


# --- a Palot home with many agents ---------------------------------------------------

SETTLED = ("completed", "failed", "paused")


def populate_home(home: Path, agents: int, projects: int, statuses: tuple[str, ...] = SETTLED,
                  prefix: str = "") -> None:
    """``agents`` settled worktree agents in ``projects`` projects, written with ``palot.store`` into the
    store of ``home`` before its service starts (the service reads its store on start). Spawning that many
    real sessions would measure OpenCode, not Palot."""
    from palot.paths import PalotPaths
    from palot.store import AgentRecord, EnvironmentRecord, Store

    paths = PalotPaths(home)
    paths.ensure()
    store = Store(paths.store)
    try:
        now = time.time() - agents
        per_project = agents // projects
        for p in range(projects):
            project = store.upsert_project(str(home.parent / f"{prefix}project-{p:02d}"), f"{prefix}project-{p:02d}")
            for k in range(per_project):
                n = p * per_project + k
                created = now + n
                env = EnvironmentRecord(
                    id=f"env_{prefix}{n:06d}", type="worktree",
                    directory=str(paths.worktrees / f"{prefix}project-{p:02d}" / f"palot-task-{n}"),
                    branch=f"palot/{prefix}task-{n}", base_commit=f"{n:040x}", server_url=None, state="active",
                    created_at=created, data={"project_path": project.path},
                )
                store.add_environment(env)
                status = statuses[n % len(statuses)]
                store.add_agent(AgentRecord(
                    id=f"ag_{prefix}{n:08x}", project_id=project.id, environment_id=env.id,
                    session_id=f"ses_{prefix}bench{n:06d}",
                    title=f"Task {n}: refactor the module and add tests", prompt="refactor the module and add tests " * 4,
                    model=None, permission_mode="default", status=status,
                    error="APIError: scripted failure" if status == "failed" else None,
                    created_at=created, updated_at=created + 60, tokens=1000 + n, cost=0.001 * n,
                ))
    finally:
        store.close()


# --- conversations -------------------------------------------------------------


def _next_id(prefix: str, base: int, n: int) -> str:
    # OpenCode ids sort by their first 12 hex digits (time and counter): keep them ascending.
    return f"{prefix}_{base + n:012x}" + secrets.token_hex(7)


def grow_export(export: dict[str, Any], total: int) -> dict[str, Any]:
    """The export with its exchanges repeated (fresh message and part ids) up to ``total`` messages."""
    grown = copy.deepcopy(export)
    template = export["messages"]
    last = template[-1]["info"]["id"]
    base = int(last.split("_", 1)[1][:12], 16) + 1
    n = 0
    while len(grown["messages"]) < total:
        ids: dict[str, str] = {}
        for message in template:
            if len(grown["messages"]) >= total:
                break
            m = copy.deepcopy(message)
            ids[message["info"]["id"]] = m["info"]["id"] = _next_id("msg", base, n)
            n += 1
            if "parentID" in m["info"]:
                m["info"]["parentID"] = ids.get(m["info"]["parentID"], m["info"]["parentID"])
            for part in m["parts"]:
                part["id"] = _next_id("prt", base, n)
                part["messageID"] = m["info"]["id"]
                n += 1
            grown["messages"].append(m)
    return grown
