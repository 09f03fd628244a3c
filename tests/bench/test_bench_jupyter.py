"""Benchmark: from an OpenCode event to the notebook dashboard's widget change, with 100 agents listed.

A Palot service (bench script) whose store holds 95 settled worktree agents (written with ``palot.store``
before the service starts) and 5 real agents in a real repository, spawned through the service. The
dashboard (``Dashboard(client)``, a thin client of the service) lists all 100. Each round prompts the 5
real agents at once with a one-word task; when a turn ends, OpenCode's idle event makes the service mark
the agent completed and the dashboard changes that row's status cell. Timed per agent and round:

* figure: the turn's first idle event (``session.status`` idle / ``session.idle``) on a bare reader of
  OpenCode's ``/global/event`` in this process, to the row's status cell changing;
* baseline: the same event to the service's stream (``PalotClient.events()``, another connection in this
  process) reporting the agent completed — the earliest any front end can react;
* also: the event's creation in OpenCode (from its id, 1 ms resolution) to the widget change.

No kernel: the widget models' traits change exactly as in one, without the messages to a browser.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from benchlib import BENCH_SCRIPT, created_at, make_repo, populate_home, ratio, summary_ms
from frontends import Bare, NotebookRecorder, StreamRecorder
from service_support import start_service, stop_service, wait_ready

from palot import api
from palot.paths import PalotPaths
from palot.servers import ServerManager

LISTED = 100
REAL = 5
ROUNDS = 10
GOAL = "p50 ≤ 50 ms"


@pytest.mark.bench
async def test_event_to_widget_latency_with_100_agents(tmp_path: Path, bench_results: Any) -> None:
    home = tmp_path / "home"
    populate_home(home, LISTED - REAL, 5, statuses=("completed", "failed", "paused", "waiting", "completed"),
                  prefix="listed")
    proc = start_service(home, BENCH_SCRIPT)
    client = await wait_ready(home, proc)
    repo = make_repo(tmp_path / "project")
    to_widget, to_stream, from_creation = [], [], []
    try:
        real = [await client.spawn(repo, "bench quick", title=f"real agent {n}") for n in range(REAL)]
        await asyncio.gather(*(client.wait(a.id, timeout=120) for a in real))  # warm: worktrees bootstrapped
        real = [await client.get(a.id) for a in real]
        sessions = {a.session_id: a.id for a in real if a.session_id}
        ids = [a.id for a in real]
        server = ServerManager.read_running(PalotPaths(home))
        assert server is not None
        notebook, stream = NotebookRecorder(home), StreamRecorder(home)
        started = time.perf_counter()
        await notebook.start(ids)
        load_ms = (time.perf_counter() - started) * 1000
        assert len(notebook.dash.agent_list.rows) == LISTED
        await stream.start(ids)
        try:
            for n in range(ROUNDS):
                bare = Bare(server.url, httpx.BasicAuth("opencode", server.password))
                await bare.stream.start()
                notebook.completed.clear()
                stream.completed.clear()
                bare.since = time.perf_counter()
                notebook.begin()
                stream.begin()
                await asyncio.gather(*(client.prompt(i, f"bench quick, round {n}") for i in ids))
                await asyncio.gather(*(client.wait(i, timeout=120, until=[api.AgentStatus.COMPLETED]) for i in ids))
                await asyncio.sleep(0.3)
                await bare.stream.stop()
                for sid, agent_id in sessions.items():
                    assert sid in bare.idle and agent_id in notebook.completed and agent_id in stream.completed, \
                        f"round {n}: {agent_id}'s completion not seen everywhere"
                    idle_perf, idle_wall, key = bare.idle[sid]
                    to_widget.append(notebook.completed[agent_id][0] - idle_perf)
                    to_stream.append(stream.completed[agent_id][0] - idle_perf)
                    created = created_at(key, idle_wall)
                    if created is not None:
                        from_creation.append(notebook.completed[agent_id][1] - created)
        finally:
            await stream.stop()
            await notebook.stop()
    finally:
        await client.close()
        await stop_service(home, proc)

    assert len(to_widget) == REAL * ROUNDS
    figure, baseline = summary_ms(to_widget), summary_ms(to_stream)
    bench_results.add(
        f"Notebook: OpenCode idle event to status cell, {LISTED} agents listed",
        figure={"p50_ms": figure["p50_ms"], "p99_ms": figure["p99_ms"]},
        baseline={"p50_ms": baseline["p50_ms"], "p99_ms": baseline["p99_ms"]},
        ratio=ratio(figure["p50_ms"], baseline["p50_ms"]),
        goal=GOAL,
        met=figure["p50_ms"] <= 50,
        event_to_widget=figure,
        event_to_service_stream=baseline,
        created_in_opencode_to_widget=summary_ms(from_creation),
        dashboard_load_ms=round(load_ms, 1),
        samples=len(to_widget),
        notes="figure: a bare reader's receipt of the turn's first idle event to the row's status cell showing "
              "completed; baseline: the same event to PalotClient.events() reporting the agent completed",
    )
