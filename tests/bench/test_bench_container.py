"""Benchmark: a container agent ready (provision → session accepting prompts), warm image, beside a worktree agent.

"Ready" is when ``palot.agents.spawn`` returns: the environment exists, its
OpenCode server answered, the session was created and took the prompt.
Container: clone, ``docker run`` from the warm agent image, the server inside
starting. Worktree: ``git worktree add`` on the already running shared server.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from benchlib import make_repo, ratio, summary_ms

from palot import AgentStatus

RUNS = 5


async def _ready_times(palot, repo: Path, before_container=None) -> dict[str, list[float]]:
    """Seconds until ``spawn`` returns, per environment, alternating which goes first; ``before_container`` is
    awaited before each container spawn (outside the timing) and may return what to check of its agent."""
    times: dict[str, list[float]] = {"container": [], "worktree": []}
    for run in range(RUNS):
        for environment in ("container", "worktree") if run % 2 == 0 else ("worktree", "container"):
            check = await before_container() if environment == "container" and before_container else None
            started = time.perf_counter()
            agent = await palot.agents.spawn(repo, "bench quick", environment=environment)
            times[environment].append(time.perf_counter() - started)
            if check is not None:
                check(agent)
            agent = await palot.agents.wait(agent.id, timeout=120)
            assert agent.status == AgentStatus.COMPLETED, agent.error
            await palot.agents.destroy(agent.id, force=True)
    return times


def _report(bench_results, name: str, times: dict[str, list[float]], goal_ms: float, notes: str) -> None:
    container, worktree = summary_ms(times["container"]), summary_ms(times["worktree"])
    bench_results.add(
        name,
        figure={"p50_ms": container["p50_ms"], "p99_ms": container["p99_ms"]},
        baseline={"p50_ms": worktree["p50_ms"], "p99_ms": worktree["p99_ms"]},
        ratio=ratio(container["p50_ms"], worktree["p50_ms"]),
        goal=f"container p50 ≤ {goal_ms / 1000:g} s",
        met=container["p50_ms"] <= goal_ms,
        runs=RUNS,
        notes=notes,
    )


@pytest.mark.bench
async def test_container_agent_ready_vs_worktree_agent(tmp_path: Path, start_palot, bench_results,
                                                       container_engine) -> None:
    palot = await start_palot()
    times = await _ready_times(palot, make_repo(tmp_path / "project"))
    _report(bench_results, "Container agent ready (warm image) vs worktree agent", times, 3000,
            "baseline = the same figure for a worktree agent on the shared server")


@pytest.mark.bench
async def test_container_agent_ready_from_the_warm_pool_vs_worktree_agent(tmp_path: Path, start_palot, bench_results,
                                                                          container_engine) -> None:
    """The same, with one warm container (``[containers] warm_pool = 1``) ready before each spawn, as for spawns
    a few seconds apart."""
    import asyncio

    from palot.backends.container import ContainerOptions

    palot = await start_palot()
    pool = palot.backends["container"].pool
    pool.size = lambda: 1
    pool.want(ContainerOptions().key())
    pool.start()

    async def warm_one():
        started = time.perf_counter()
        while pool.ready() < 1:
            assert time.perf_counter() - started < 120, "the pool did not fill"
            await asyncio.sleep(0.05)
        waiting = pool.ids()

        def taken_from_the_pool(agent) -> None:
            assert agent.environment.id in waiting, (agent.environment.id, waiting)

        return taken_from_the_pool

    try:
        times = await _ready_times(palot, make_repo(tmp_path / "project"), warm_one)
    finally:
        await palot.backends["container"].close()
    _report(bench_results, "Container agent ready from the warm pool vs worktree agent", times, 1000,
            "baseline = a worktree agent on the shared server; a warm container was waiting before each spawn")
