"""Benchmark 4: the Palot service's memory with 100 agents, vs the service with none.

Two Palot homes, one after the other, each with its service (``palot serve``, bench script):

* 100 agents: 95 settled worktree agents written with ``palot.store`` before the service starts (it
  reads its store on start) and 5 agents spawned for real through the service (real worktrees and
  sessions, a one-word turn each); measured once all 5 are done and the service has listed every agent;
* baseline: a fresh home whose service has no agent (started, OpenCode connected, idle).

Figure: ``VmRSS`` and PSS (``/proc/<pid>/smaps_rollup``) of the service process alone; its whole tree
(the OpenCode server and the scripted model it started) is in the details.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from benchlib import BENCH_SCRIPT, make_repo, populate_home, ratio, tree_memory_mb
from service_support import start_service, stop_service, wait_ready

from palot import api

AGENTS = 100
REAL = 5
GOAL = "report only (MB and ratio)"


def _process_mb(pid: int) -> dict[str, float]:
    rss = pss = 0
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            rss = int(line.split()[1])
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
        if line.startswith("Pss:"):
            pss = int(line.split()[1])
    return {"rss_mb": round(rss / 1024, 1), "pss_mb": round(pss / 1024, 1)}


async def _measure(home: Path, repo: Path | None) -> dict[str, Any]:
    proc = start_service(home, BENCH_SCRIPT)
    client = await wait_ready(home, proc)
    try:
        if repo is not None:
            real = [await client.spawn(repo, "bench quick", title=f"real agent {n}") for n in range(REAL)]
            done = await asyncio.gather(*(client.wait(a.id, timeout=180) for a in real))
            assert all(a.status == api.AgentStatus.COMPLETED for a in done), [(a.id, a.status) for a in done]
        listed = await client.list()
        status = await client.status()
        await asyncio.sleep(2.0)  # let the service settle after the work
        return {"agents": len(listed), "pid": status.pid, "service": _process_mb(status.pid),
                "tree": tree_memory_mb(status.pid)}
    finally:
        await client.close()
        await stop_service(home, proc)


@pytest.mark.bench
async def test_service_memory_with_100_agents(tmp_path: Path, bench_results: Any) -> None:
    empty = await _measure(tmp_path / "empty", None)
    home = tmp_path / "home"
    populate_home(home, AGENTS - REAL, 5)
    full = await _measure(home, make_repo(tmp_path / "project"))
    assert empty["agents"] == 0
    assert full["agents"] == AGENTS, full["agents"]
    bench_results.add(
        f"Service memory with {AGENTS} agents ({AGENTS - REAL} from the store, {REAL} spawned)",
        figure=full["service"], baseline=empty["service"],
        ratio=ratio(full["service"]["rss_mb"], empty["service"]["rss_mb"]),
        goal=GOAL, met=None,
        pss_ratio=ratio(full["service"]["pss_mb"], empty["service"]["pss_mb"]),
        with_agents=full, without_agents=empty,
        notes="figure/baseline = the service process alone (VmRSS, PSS); 'tree' adds the OpenCode server and the "
              "scripted model it runs; ratio = RSS with 100 agents / RSS with none",
    )
