"""Benchmark 2: listing 1,000 agents across 20 projects.

A real, started Palot (its own shared server) whose store holds 20 projects
and 1,000 worktree agents, inserted through ``palot.store`` (spawning 1,000
real sessions would measure OpenCode, not the listing). Timed:

* ``palot.agents.list()`` (the call every front end makes), 200 runs;
* baseline: a raw ``sqlite3`` SELECT of the same rows (agents joined with
  their environments and projects, the same filter and order) on its own
  connection to the same database file, 200 runs.

Also reported, to show where the time goes: the store's joined query with
its record models (``Store.list_agents_with_environments``), and a new hub
subscriber's replay, which builds the same list.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from benchlib import ratio, summary_ms

from palot import Palot
from palot.store import AgentRecord, EnvironmentRecord

PROJECTS = 20
AGENTS = 1000
RUNS = 200
GOAL = "p50 ≤ 20 ms"
STATUSES = ("completed", "running", "completed", "failed", "paused", "waiting", "completed", "running")

RAW_SELECT = """
SELECT a.id, a.project_id, a.environment_id, a.session_id, a.title, a.prompt, a.model, a.permission_mode,
       a.status, a.error, a.created_at, a.updated_at, a.archived_at, a.applied_patch_sha, a.tokens, a.cost,
       e.id, e.type, e.directory, e.branch, e.base_commit, e.server_url, e.state, e.created_at, e.data,
       p.id, p.path, p.name, p.created_at
FROM agents a
JOIN projects p ON p.id = a.project_id
LEFT JOIN environments e ON e.id = a.environment_id
WHERE a.archived_at IS NULL
ORDER BY a.created_at, a.id
"""


def _populate(palot: Palot, root: Path) -> None:
    now = time.time() - AGENTS
    for p in range(PROJECTS):
        project = palot.store.upsert_project(str(root / f"project-{p:02d}"), f"project-{p:02d}")
        for k in range(AGENTS // PROJECTS):
            n = p * (AGENTS // PROJECTS) + k
            created = now + n * 0.37 % AGENTS  # interleaved across projects, as spawns over time would be
            env = EnvironmentRecord(
                id=f"env_{n:06d}", type="worktree",
                directory=str(palot.paths.worktrees / f"project-{p:02d}" / f"palot-task-{n}"),
                branch=f"palot/task-{n}", base_commit=f"{n:040x}", server_url=None, state="active",
                created_at=created, data={"project_path": project.path},
            )
            palot.store.add_environment(env)
            status = STATUSES[n % len(STATUSES)]
            palot.store.add_agent(AgentRecord(
                id=f"ag_{n:08x}", project_id=project.id, environment_id=env.id, session_id=f"ses_bench{n:06d}",
                title=f"Task {n}: refactor the module and add tests", prompt="refactor the module and add tests " * 4,
                model=None, permission_mode="default", status=status,
                error="APIError: scripted failure" if status == "failed" else None,
                created_at=created, updated_at=created + 60, tokens=1000 + n, cost=0.001 * n,
            ))


def _time(fn: Callable[[], Any], runs: int) -> tuple[list[float], Any]:
    fn()  # warm caches (SQLite page cache, pydantic) before timing
    samples, result = [], None
    for _ in range(runs):
        t = time.perf_counter()
        result = fn()
        samples.append(time.perf_counter() - t)
    return samples, result


@pytest.mark.bench
async def test_list_1000_agents(start_palot: Any, tmp_path: Path, bench_results: Any) -> None:
    palot: Palot = await start_palot("listing")
    _populate(palot, tmp_path / "projects")

    listing, agents = _time(palot.agents.list, RUNS)
    assert len(agents) == AGENTS
    assert len({a.project_id for a in agents}) == PROJECTS
    assert [a.created_at for a in agents] == sorted((a.created_at for a in agents), reverse=True)

    conn = sqlite3.connect(palot.paths.store)
    try:
        raw, rows = _time(lambda: conn.execute(RAW_SELECT).fetchall(), RUNS)
    finally:
        conn.close()
    assert len(rows) == AGENTS
    assert {r[0] for r in rows} == {a.id for a in agents}

    store_rows, records = _time(lambda: palot.store.list_agents_with_environments(include_archived=False), RUNS // 2)
    assert len(records) == AGENTS

    def subscribe_and_close() -> int:
        sub = palot.hub.subscribe(maxsize=10 * AGENTS)
        n = sub.pending()
        sub.close()
        return n

    replay, replayed = _time(subscribe_and_close, 20)
    assert replayed >= AGENTS

    fig, base = summary_ms(listing), summary_ms(raw)
    bench_results.add(
        f"List {AGENTS:,} agents across {PROJECTS} projects (palot.agents.list)",
        figure={"p50_ms": fig["p50_ms"], "p99_ms": fig["p99_ms"]},
        baseline={"p50_ms": base["p50_ms"], "p99_ms": base["p99_ms"]},
        ratio=ratio(fig["p50_ms"], base["p50_ms"]),
        goal=GOAL,
        met=fig["p50_ms"] <= 20,
        runs=RUNS,
        list=fig,
        raw_sqlite=base,
        store_list_agents_with_environments=summary_ms(store_rows),
        hub_subscribe_replay=summary_ms(replay),
        notes="baseline = raw sqlite3 SELECT of the same joined rows; ratio = list p50 / raw p50",
    )
