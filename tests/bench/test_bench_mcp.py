"""Benchmark: ``tools/call list_agents`` round trip over stdio with 1,000 agents.

A real, started Palot (its own shared server) whose store holds 20 projects
and 1,000 worktree agents, inserted through ``palot.store`` (as the listing
benchmark does). ``palot-mcp`` runs as a subprocess on stdio, attached to
that server, and a real ``mcp.Client`` times, 200 runs each:

* ``list_agents`` with its default page (50 agents and the total) — what an
  assistant calls; the headline figure;
* ``list_agents`` with ``limit=1000`` (every agent in one answer; 20 runs);
* the same default page sent as a bare ``tools/call`` request, without the
  Python client's own output-schema check (jsonschema, ~15 ms for 50 agents
  here): what the server and transport cost;
* ``tools/list``: the round trip without Palot work (the transport floor).

Baseline: ``palot.agents.list()`` in this process on the same store — the
core call every ``list_agents`` makes — so the ratio is what MCP adds.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from benchlib import ratio, summary_ms
from mcp import Client, StdioServerParameters
from mcp_types import CallToolRequest, CallToolRequestParams, CallToolResult

from palot import Palot
from palot.store import AgentRecord, EnvironmentRecord

PROJECTS = 20
AGENTS = 1000
RUNS = 200
FULL_RUNS = 20  # every agent in one answer is ~2 MB: fewer runs
PAGE = 50  # list_agents' default page
GOAL = "p50 ≤ 10 ms"


def _populate(palot: Palot, root: Path) -> None:
    """1,000 settled agents in 20 projects (settled, so the server has no sessions to resync)."""
    now = time.time() - AGENTS
    per_project = AGENTS // PROJECTS
    for p in range(PROJECTS):
        project = palot.store.upsert_project(str(root / f"project-{p:02d}"), f"project-{p:02d}")
        for k in range(per_project):
            n = p * per_project + k
            created = now + n
            env = EnvironmentRecord(
                id=f"env_{n:06d}", type="worktree",
                directory=str(palot.paths.worktrees / f"project-{p:02d}" / f"palot-task-{n}"),
                branch=f"palot/task-{n}", base_commit=f"{n:040x}", server_url=None, state="active",
                created_at=created, data={"project_path": project.path},
            )
            palot.store.add_environment(env)
            status = ("completed", "failed", "paused")[n % 3]
            palot.store.add_agent(AgentRecord(
                id=f"ag_{n:08x}", project_id=project.id, environment_id=env.id, session_id=f"ses_bench{n:06d}",
                title=f"Task {n}: refactor the module and add tests", prompt="refactor the module and add tests " * 4,
                model=None, permission_mode="default", status=status,
                error="APIError: scripted failure" if status == "failed" else None,
                created_at=created, updated_at=created + 60, tokens=1000 + n, cost=0.001 * n,
            ))


async def _time(call: Callable[[], Awaitable[Any]], runs: int) -> tuple[list[float], Any]:
    for _ in range(5):  # warm caches (SQLite pages, pydantic, the pipe) before timing
        result = await call()
    samples = []
    for _ in range(runs):
        t = time.perf_counter()
        result = await call()
        samples.append(time.perf_counter() - t)
    return samples, result


@pytest.mark.bench
async def test_mcp_list_agents_round_trip_over_stdio_with_1000_agents(
    start_palot: Any, tmp_path: Path, bench_results: Any
) -> None:
    palot: Palot = await start_palot("mcp")
    _populate(palot, tmp_path / "projects")
    server = StdioServerParameters(command=str(Path(sys.executable).parent / "palot-mcp"), args=[],
                                   env={**os.environ, "PALOT_HOME": str(palot.paths.home)})

    started = time.perf_counter()
    async with Client(server, read_timeout_seconds=120) as client:
        connected_s = time.perf_counter() - started
        page, page_result = await _time(lambda: client.call_tool("list_agents", {}), RUNS)
        bare_request = CallToolRequest(params=CallToolRequestParams(name="list_agents", arguments={}))
        bare, _ = await _time(lambda: client.session.send_request(bare_request, CallToolResult), RUNS)
        full, full_result = await _time(lambda: client.call_tool("list_agents", {"limit": AGENTS}), FULL_RUNS)
        floor, tools = await _time(client.list_tools, RUNS)

    assert not page_result.is_error and page_result.structured_content["total"] == AGENTS
    assert len(page_result.structured_content["agents"]) == PAGE
    assert len(full_result.structured_content["agents"]) == AGENTS
    assert len(tools.tools) >= 15

    core, agents = [], []
    for _ in range(RUNS):
        t = time.perf_counter()
        agents = palot.agents.list()
        core.append(time.perf_counter() - t)
    assert len(agents) == AGENTS

    fig, base = summary_ms(page), summary_ms(core)
    bench_results.add(
        f"MCP tools/call list_agents over stdio, {AGENTS:,} agents (default page of {PAGE})",
        figure={"p50_ms": fig["p50_ms"], "p99_ms": fig["p99_ms"]},
        baseline={"p50_ms": base["p50_ms"], "p99_ms": base["p99_ms"]},
        ratio=ratio(fig["p50_ms"], base["p50_ms"]),
        goal=GOAL,
        met=fig["p50_ms"] <= 10,
        runs=RUNS,
        list_agents_default_page=fig,
        list_agents_default_page_without_client_schema_check=summary_ms(bare),
        list_agents_all_1000=summary_ms(full),
        tools_list_round_trip=summary_ms(floor),
        core_agents_list=base,
        connect_s=round(connected_s, 2),
        answer_bytes={"default_page": len(page_result.model_dump_json()),
                      "all_1000": len(full_result.model_dump_json())},
        notes="baseline = palot.agents.list() in-process on the same store (the core call list_agents makes); "
              "ratio = round-trip p50 / core p50",
    )
