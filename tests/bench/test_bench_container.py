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
GOAL = "container p50 ≤ 3 s"


@pytest.mark.bench
async def test_container_agent_ready_vs_worktree_agent(tmp_path: Path, start_palot, bench_results,
                                                       container_engine) -> None:
    palot = await start_palot()
    repo = make_repo(tmp_path / "project")
    times: dict[str, list[float]] = {"container": [], "worktree": []}
    for run in range(RUNS):
        for environment in ("container", "worktree") if run % 2 == 0 else ("worktree", "container"):
            started = time.perf_counter()
            agent = await palot.agents.spawn(repo, "bench quick", environment=environment)
            times[environment].append(time.perf_counter() - started)
            agent = await palot.agents.wait(agent.id, timeout=120)
            assert agent.status == AgentStatus.COMPLETED, agent.error
            await palot.agents.destroy(agent.id, force=True)
    container, worktree = summary_ms(times["container"]), summary_ms(times["worktree"])
    bench_results.add(
        "Container agent ready (warm image) vs worktree agent",
        figure={"p50_ms": container["p50_ms"], "p99_ms": container["p99_ms"]},
        baseline={"p50_ms": worktree["p50_ms"], "p99_ms": worktree["p99_ms"]},
        ratio=ratio(container["p50_ms"], worktree["p50_ms"]),
        goal=GOAL,
        met=container["p50_ms"] <= 3000,
        runs=RUNS,
        notes="baseline = the same figure for a worktree agent on the shared server",
    )


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
    repo = make_repo(tmp_path / "project")
    times: dict[str, list[float]] = {"container": [], "worktree": []}
    for run in range(RUNS):
        started = time.perf_counter()
        while pool.ready() < 1:
            assert time.perf_counter() - started < 120, "the pool did not fill"
            await asyncio.sleep(0.05)
        for environment in ("container", "worktree") if run % 2 == 0 else ("worktree", "container"):
            started = time.perf_counter()
            agent = await palot.agents.spawn(repo, "bench quick", environment=environment)
            times[environment].append(time.perf_counter() - started)
            assert environment == "worktree" or agent.environment.id not in pool.ids()
            agent = await palot.agents.wait(agent.id, timeout=120)
            assert agent.status == AgentStatus.COMPLETED, agent.error
            await palot.agents.destroy(agent.id, force=True)
    await palot.backends["container"].close()
    container, worktree = summary_ms(times["container"]), summary_ms(times["worktree"])
    bench_results.add(
        "Container agent ready from the warm pool vs worktree agent",
        figure={"p50_ms": container["p50_ms"], "p99_ms": container["p99_ms"]},
        baseline={"p50_ms": worktree["p50_ms"], "p99_ms": worktree["p99_ms"]},
        ratio=ratio(container["p50_ms"], worktree["p50_ms"]),
        goal="container p50 ≤ 1 s",
        met=container["p50_ms"] <= 1000,
        runs=RUNS,
        notes="baseline = a worktree agent on the shared server; a warm container was waiting before each spawn",
    )
