"""Benchmark: moving an agent with 500 messages and 10 MB of uncommitted changes, worktree → container → worktree.

The conversation is grown to 500 messages through OpenCode's own ``import``
(the first real exchange, repeated with fresh ids), since 250 scripted turns
would take minutes; the 10 MB are random (incompressible) files the agent
has not committed. Baseline: the same two moves of a small agent (3
messages, one file), in the same run.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import pytest
from benchlib import grow_export, make_repo, ratio

from palot import AgentStatus, Palot

MESSAGES = 500
CHANGE_BYTES = 10 * 1024 * 1024
GOAL = "≤ 10 s each way"


async def _agent(palot: Palot, repo: Path, *, big: bool) -> str:
    agent = await palot.agents.spawn(repo, "bench write")
    agent = await palot.agents.wait(agent.id, timeout=120)
    assert agent.status == AgentStatus.COMPLETED, agent.error
    if big:
        env = palot.store.get_environment(palot.store.get_agent(agent.id).environment_id or "")
        assert env is not None and agent.session_id
        backend = palot.backends["worktree"]
        export = json.loads(await backend.export_session(env, agent.session_id))
        await backend.import_session(env, json.dumps(grow_export(export, MESSAGES)).encode())
        worktree = Path(env.directory)
        for i in range(40):
            (worktree / "assets").mkdir(exist_ok=True)
            (worktree / "assets" / f"blob-{i:02d}.bin").write_bytes(os.urandom(CHANGE_BYTES // 40))
        assert len(await palot.agents.messages(agent.id)) == MESSAGES
    return agent.id


@pytest.mark.bench
async def test_migration_of_a_500_message_agent_with_10_mb_of_changes(tmp_path: Path, start_palot, bench_results,
                                                                      container_engine) -> None:
    palot = await start_palot()
    repo = make_repo(tmp_path / "project")
    times: dict[str, dict[str, float]] = {}
    steps: dict[str, dict[str, float]] = {}
    for label, big in (("small", False), ("large", True)):
        agent_id = await _agent(palot, repo, big=big)
        count = len(await palot.agents.messages(agent_id))
        times[label] = {}
        for target in ("container", "worktree"):
            started = time.perf_counter()
            result = await palot.agents.move(agent_id, target)
            times[label][target] = time.perf_counter() - started
            assert result.state == "completed" and result.messages == count
            journal = palot.store.migration_journal(result.migration_id)
            began = {j.step: j.ts for j in journal if j.phase == "started"}
            if big:
                steps[target] = {j.step: round((j.ts - began[j.step]) * 1000) for j in journal if j.phase == "done"}
        await palot.agents.destroy(agent_id, force=True)
    for target, name in (("container", "worktree → container"), ("worktree", "container → worktree")):
        large, small = times["large"][target], times["small"][target]
        slowest = max(steps[target].items(), key=lambda kv: kv[1])
        bench_results.add(
            f"Move {name}, {MESSAGES} messages + 10 MB of uncommitted changes",
            figure={"seconds": round(large, 2)},
            baseline={"seconds": round(small, 2)},
            ratio=ratio(large, small),
            goal=GOAL,
            met=large <= 10.0,
            step_ms=steps[target],
            notes=f"baseline = the same move of a 3-message agent with one file; slowest step: {slowest[0]} "
                  f"({slowest[1]} ms)",
        )
