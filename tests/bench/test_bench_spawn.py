"""Benchmark 3: worktree agent spawn to its first event.

Palot: ``palot.agents.spawn(repo, prompt)`` (validation, branch naming, store
records, ``git worktree add``, ``POST /session``, ``POST .../prompt_async``),
timed until an unfiltered hub subscriber receives the new session's first
``session.status`` busy event, i.e. until a front end sees the agent running.

Baseline, by hand on the same shared server: ``git worktree add -b BRANCH
PATH HEAD``, ``POST /session`` and ``POST /session/{id}/prompt_async`` with a
bare httpx client, timed until a bare httpx-sse reader of ``/global/event``
receives the session's first busy event.

Also reported: time to the session's first event of any kind (its
``session.created``) and until ``spawn`` returns. Runs alternate between the
two (which goes first swaps every pair) and each waits for its agent to
finish, so neither profits from the other's warm-up or load.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from benchlib import BareStream, make_repo, ratio, session_of, summary_ms

from palot import AgentStatus, Palot
from palot.opencode import GlobalEvent

RUNS = 10
GOAL = "ratio ≤ 1.5"
PROMPT = "bench quick"


class FirstSeen:
    """When a stream first showed each session, its first busy status, and its first idle."""

    def __init__(self) -> None:
        self.first: dict[str, float] = {}
        self.busy: dict[str, float] = {}
        self.idle: dict[str, float] = {}
        self.changed = asyncio.Event()

    def record(self, payload: dict[str, Any], perf: float) -> None:
        sid = session_of(payload)
        if sid is None:
            return
        self.first.setdefault(sid, perf)
        kind = payload.get("type")
        status = ((payload.get("properties") or {}).get("status") or {}).get("type")
        if kind == "session.status" and status == "busy":
            self.busy.setdefault(sid, perf)
        elif kind == "session.idle":
            self.idle.setdefault(sid, perf)
        self.changed.set()

    async def wait_for(self, table: dict[str, float], sid: str, timeout: float = 60) -> float:
        deadline = time.monotonic() + timeout
        while sid not in table:
            self.changed.clear()
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"no event for session {sid}")
            try:
                await asyncio.wait_for(self.changed.wait(), remaining)
            except asyncio.TimeoutError:
                pass
        return table[sid]


async def _hub_recorder(palot: Palot, seen: FirstSeen) -> asyncio.Task[None]:
    sub = palot.hub.subscribe(replay=False, maxsize=1_000_000)

    async def run() -> None:
        with sub:
            async for event in sub:
                _record_global(seen, event)

    return asyncio.create_task(run(), name="bench-hub-recorder")


def _record_global(seen: FirstSeen, event: GlobalEvent) -> None:
    perf = time.perf_counter()
    seen.record({"type": event.payload.type, "properties": event.payload.properties}, perf)


async def _spawn_palot(palot: Palot, repo: Path, seen: FirstSeen, n: int) -> dict[str, float]:
    t0 = time.perf_counter()
    agent = await palot.agents.spawn(repo, PROMPT, title=f"palot spawn {n}")
    returned = time.perf_counter()
    assert agent.session_id
    busy = await seen.wait_for(seen.busy, agent.session_id)
    first = seen.first[agent.session_id]
    done = await palot.agents.wait(agent.id, timeout=60)
    assert done.status == AgentStatus.COMPLETED, done.error
    return {"busy": busy - t0, "first": first - t0, "returned": returned - t0}


async def _spawn_raw(http: httpx.AsyncClient, repo: Path, worktrees: Path, seen: FirstSeen, n: int) -> dict[str, float]:
    path = worktrees / f"raw-{n}"
    t0 = time.perf_counter()
    proc = await asyncio.create_subprocess_exec(
        "git", "worktree", "add", "--quiet", "-b", f"bench/raw-{n}", str(path), "HEAD", cwd=repo,
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE)
    _, err = await proc.communicate()
    assert proc.returncode == 0, err.decode()
    resp = await http.post("/session", params={"directory": str(path)}, json={"title": f"raw spawn {n}"})
    resp.raise_for_status()
    sid = resp.json()["id"]
    resp = await http.post(f"/session/{sid}/prompt_async", params={"directory": str(path)},
                           json={"parts": [{"type": "text", "text": PROMPT}]})
    resp.raise_for_status()
    returned = time.perf_counter()
    busy = await seen.wait_for(seen.busy, sid)
    first = seen.first[sid]
    await seen.wait_for(seen.idle, sid)
    return {"busy": busy - t0, "first": first - t0, "returned": returned - t0}


@pytest.mark.bench
async def test_spawn_to_first_event(start_palot: Any, tmp_path: Path, bench_results: Any) -> None:
    palot: Palot = await start_palot("spawn")
    repo = make_repo(tmp_path / "project")
    raw_worktrees = tmp_path / "raw-worktrees"
    raw_worktrees.mkdir()

    hub_seen, bare_seen = FirstSeen(), FirstSeen()
    hub_task = await _hub_recorder(palot, hub_seen)
    bare = await BareStream(palot.server.url, palot.server.client.auth,  # type: ignore[union-attr]
                            lambda payload, _d, perf, _w: bare_seen.record(payload, perf)).start()
    http = httpx.AsyncClient(base_url=palot.server.url, auth=palot.server.client.auth, timeout=30)  # type: ignore[union-attr]
    try:
        await http.get("/global/health")  # a warm connection, as Palot's own client has
        # One unmeasured run each: the project's first use warms OpenCode and git for both.
        await _spawn_palot(palot, repo, hub_seen, 0)
        await _spawn_raw(http, repo, raw_worktrees, bare_seen, 0)

        palot_runs, raw_runs = [], []
        for n in range(1, RUNS + 1):
            if n % 2:
                palot_runs.append(await _spawn_palot(palot, repo, hub_seen, n))
                raw_runs.append(await _spawn_raw(http, repo, raw_worktrees, bare_seen, n))
            else:
                raw_runs.append(await _spawn_raw(http, repo, raw_worktrees, bare_seen, n))
                palot_runs.append(await _spawn_palot(palot, repo, hub_seen, n))
    finally:
        await http.aclose()
        await bare.stop()
        hub_task.cancel()

    assert len(palot_runs) == len(raw_runs) == RUNS

    def stats(runs: list[dict[str, float]], key: str) -> dict[str, float]:
        return summary_ms(r[key] for r in runs)

    fig, base = stats(palot_runs, "busy"), stats(raw_runs, "busy")
    bench_results.add(
        "Worktree agent spawn to first busy event",
        figure={"p50_ms": fig["p50_ms"], "p99_ms": fig["p99_ms"]},
        baseline={"p50_ms": base["p50_ms"], "p99_ms": base["p99_ms"]},
        ratio=ratio(fig["p50_ms"], base["p50_ms"]),
        goal=GOAL,
        met=ratio(fig["p50_ms"], base["p50_ms"]) <= 1.5,
        runs=RUNS,
        palot_to_busy=fig,
        raw_to_busy=base,
        palot_to_first_event=stats(palot_runs, "first"),
        raw_to_first_event=stats(raw_runs, "first"),
        palot_spawn_returned=stats(palot_runs, "returned"),
        raw_requests_returned=stats(raw_runs, "returned"),
        notes="baseline = git worktree add + POST /session + POST prompt_async with a bare client, "
              "to its first busy event on a bare SSE reader; ratio = Palot p50 / baseline p50",
    )
    first_fig, first_base = stats(palot_runs, "first"), stats(raw_runs, "first")
    bench_results.add(
        "Worktree agent spawn to the session's first event",
        figure={"p50_ms": first_fig["p50_ms"], "p99_ms": first_fig["p99_ms"]},
        baseline={"p50_ms": first_base["p50_ms"], "p99_ms": first_base["p99_ms"]},
        ratio=ratio(first_fig["p50_ms"], first_base["p50_ms"]),
        goal=GOAL,
        met=ratio(first_fig["p50_ms"], first_base["p50_ms"]) <= 1.5,
        runs=RUNS,
        notes="first event of any type for the session (its session.created)",
    )
