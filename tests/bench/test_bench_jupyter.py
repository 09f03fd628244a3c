"""Benchmark: from an OpenCode event to the dashboard's widget model change, with 100 agents listed.

A real, started Palot (its own shared server, bench script) whose dashboard
lists 100 agents: 95 worktree agents inserted through ``palot.store`` (as in
the listing benchmark) and 5 real agents in a real repository. Each round
prompts the 5 real agents at once with a one-word task; when a turn ends,
OpenCode's idle event makes Palot mark the agent completed, and the dashboard
changes that row's status cell. Timed per agent and round:

* figure: the OpenCode event (the first ``session.idle`` / idle ``session.status``
  of the turn, as the hub receives it) to the row's status cell changing, in
  the dashboard's own task on the same loop;
* baseline: the same event to a bare ``palot.hub.subscribe()`` consumer receiving
  the ``palot.agent.updated`` that reports the agent completed (the earliest any
  front end can react);
* also: the event's creation in OpenCode (from its id, 1 ms resolution) to the
  widget change, and usage updates (``session.updated`` to the tokens cell).

No kernel: the widget models' traits change exactly as in one, without the
messages to a browser.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import pytest
from benchlib import created_at, make_repo, ratio, summary_ms

from palot import AgentStatus, Palot
from palot.agents import AGENT_UPDATED
from palot.opencode import GlobalEvent
from palot.store import AgentRecord, EnvironmentRecord
from palot_jupyter import Dashboard

LISTED = 100
REAL = 5
ROUNDS = 10
GOAL = "p50 ≤ 50 ms"
STATUSES = ("completed", "failed", "paused", "waiting", "completed")


def _populate(palot: Palot, root: Path, count: int) -> None:
    now = time.time() - 3600
    for p in range(5):
        project = palot.store.upsert_project(str(root / f"listed-{p}"), f"listed-{p}")
        for k in range(count // 5):
            n = p * (count // 5) + k
            env = EnvironmentRecord(
                id=f"env_listed_{n:04d}", type="worktree", directory=str(palot.paths.worktrees / f"listed-{n}"),
                branch=f"palot/listed-{n}", base_commit=f"{n:040x}", server_url=None, state="active",
                created_at=now + n, data={"project_path": project.path},
            )
            palot.store.add_environment(env)
            status = STATUSES[n % len(STATUSES)]
            palot.store.add_agent(AgentRecord(
                id=f"ag_listed{n:04d}", project_id=project.id, environment_id=env.id, session_id=f"ses_listed{n:04d}",
                title=f"Listed task {n}", prompt="refactor the module", model=None, permission_mode="default",
                status=status, error="APIError: scripted" if status == "failed" else None,
                created_at=now + n, updated_at=now + n + 60, tokens=1000 + n, cost=0.001 * n,
            ))


class Clock:
    """Times of the OpenCode events that end each turn, and of what the dashboard and a bare subscriber did."""

    def __init__(self, palot: Palot, sessions: dict[str, str]) -> None:
        self.sessions = sessions  # session id -> agent id
        self.round = -1
        self.idle: dict[tuple[int, str], tuple[float, float | None]] = {}  # (round, agent) -> (perf, created wall)
        self.usage_event: dict[str, float] = {}  # agent -> perf of its latest session.updated
        self.usage: list[float] = []
        self.widget: dict[tuple[int, str], tuple[float, float]] = {}  # -> (perf, wall) of the cell change
        self.bare: dict[tuple[int, str], float] = {}
        palot.hub.add_listener(self._on_event)

    def _on_event(self, event: GlobalEvent) -> None:
        perf = time.perf_counter()
        agent_id = self.sessions.get(event.session_id or "")
        if agent_id is None or self.round < 0:
            return
        kind = event.type
        if kind == "session.updated":
            self.usage_event[agent_id] = perf
            return
        idle = kind == "session.idle" or (
            kind == "session.status" and (event.payload.properties.get("status") or {}).get("type") == "idle")
        if idle and (self.round, agent_id) not in self.idle:
            created = created_at(event.payload.id, time.time()) if event.payload.id else None
            self.idle[(self.round, agent_id)] = (perf, created)

    def watch(self, dash: Dashboard, agent_id: str) -> None:
        row = dash.agent_list.rows[agent_id]

        def on_status(change: dict[str, Any]) -> None:
            if "palot-st-completed" in change["new"] and self.round >= 0:
                self.widget.setdefault((self.round, agent_id), (time.perf_counter(), time.time()))

        def on_tokens(_change: dict[str, Any]) -> None:
            if agent_id in self.usage_event:
                self.usage.append(time.perf_counter() - self.usage_event[agent_id])

        row.cells["status"].observe(on_status, names="value")
        row.cells["tokens"].observe(on_tokens, names="value")

    async def bare_subscriber(self, palot: Palot) -> None:
        with palot.hub.subscribe(types=[AGENT_UPDATED], replay=False) as sub:
            async for event in sub:
                agent = event.payload.properties["agent"]
                if agent["status"] == "completed" and agent["id"] in self.sessions.values() and self.round >= 0:
                    self.bare.setdefault((self.round, agent["id"]), time.perf_counter())


@pytest.mark.bench
async def test_event_to_widget_latency_with_100_agents(start_palot: Any, tmp_path: Path, bench_results: Any) -> None:
    palot: Palot = await start_palot("jupyter")
    _populate(palot, tmp_path / "listed", LISTED - REAL)
    repo = make_repo(tmp_path / "project")
    real = [await palot.agents.spawn(repo, "bench quick", title=f"real agent {n}") for n in range(REAL)]
    await asyncio.gather(*(palot.agents.wait(a.id, timeout=120) for a in real))  # warm: worktrees bootstrapped

    started = time.perf_counter()
    dash = Dashboard(palot)
    await dash.start()
    load_ms = (time.perf_counter() - started) * 1000
    assert len(dash.agent_list.rows) == LISTED and len(dash.agent_list.order) == LISTED
    clock = Clock(palot, {a.session_id: a.id for a in real if a.session_id})
    for agent in real:
        clock.watch(dash, agent.id)
    bare = asyncio.create_task(clock.bare_subscriber(palot))
    await asyncio.sleep(0.1)
    try:
        for n in range(ROUNDS):
            clock.round = n
            await asyncio.gather(*(palot.agents.prompt(a.id, f"bench quick, round {n}") for a in real))
            await asyncio.gather(*(palot.agents.wait(a.id, timeout=120, until=[AgentStatus.COMPLETED])
                                   for a in real))
            await dash.sync()
            await asyncio.sleep(0.2)
    finally:
        bare.cancel()
        await dash.aclose()

    keys = [(n, a.id) for n in range(ROUNDS) for a in real]
    missing = [k for k in keys if k not in clock.widget or k not in clock.idle or k not in clock.bare]
    assert not missing, f"{len(missing)} completions not seen everywhere: {missing[:5]}"
    assert all(dash.agents[a.id].status == AgentStatus.COMPLETED for a in real)
    to_widget = [clock.widget[k][0] - clock.idle[k][0] for k in keys]
    to_bare = [clock.bare[k] - clock.idle[k][0] for k in keys]
    from_creation = [clock.widget[k][1] - c for k in keys if (c := clock.idle[k][1]) is not None]
    figure, baseline = summary_ms(to_widget), summary_ms(to_bare)
    bench_results.add(
        f"Jupyter dashboard: OpenCode event to widget change, {LISTED} agents listed",
        figure={"p50_ms": figure["p50_ms"], "p99_ms": figure["p99_ms"]},
        baseline={"p50_ms": baseline["p50_ms"], "p99_ms": baseline["p99_ms"]},
        ratio=ratio(figure["p50_ms"], baseline["p50_ms"]),
        goal=GOAL,
        met=figure["p50_ms"] <= 50,
        event_to_widget=figure,
        event_to_bare_subscriber=baseline,
        created_in_opencode_to_widget=summary_ms(from_creation),
        usage_event_to_tokens_cell=summary_ms(clock.usage),
        dashboard_load_ms=round(load_ms, 1),
        samples=len(keys),
        notes="figure: hub receipt of the turn's first idle event to the row's status cell showing completed; "
              "baseline: the same event to a bare palot.hub.subscribe() consumer receiving the agent's "
              "palot.agent.updated (completed)",
    )
