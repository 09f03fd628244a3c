"""Steering agents: permissions, abort, failures — on the real server with the scripted model."""

from __future__ import annotations

import asyncio
from pathlib import Path

from palot import AgentStatus, Palot


async def test_permission_ask_waits_then_reply_once_lets_the_agent_proceed(palot: Palot, repo: Path):
    agent = await palot.agents.spawn(repo, "edit readme", permission_mode="ask")
    agent = await palot.agents.wait(agent.id, timeout=60)
    assert agent.status == AgentStatus.WAITING
    assert [p.permission for p in agent.permissions] == ["edit"]
    worktree = Path(agent.environment.directory)
    assert "edited by an agent" not in (worktree / "README.md").read_text()

    agent = await palot.agents.reply_permission(agent.id, "once")
    agent = await palot.agents.wait(agent.id, timeout=60)
    assert agent.status == AgentStatus.COMPLETED, agent.error
    assert agent.permissions == []
    assert "edited by an agent" in (worktree / "README.md").read_text()
    events = [e.event for e in palot.store.audit_log(agent_id=agent.id)]
    assert "permission" in events


async def test_permission_reject_stops_the_agent_cleanly(palot: Palot, repo: Path):
    agent = await palot.agents.spawn(repo, "edit readme", permission_mode="ask")
    agent = await palot.agents.wait(agent.id, timeout=60)
    assert agent.status == AgentStatus.WAITING
    agent = await palot.agents.reply_permission(agent.id, "reject")
    agent = await palot.agents.wait(agent.id, timeout=60)
    assert agent.status == AgentStatus.PAUSED and agent.permissions == []
    assert "edited by an agent" not in (Path(agent.environment.directory) / "README.md").read_text()
    # The agent can still be steered afterwards ("always" answers this and later requests).
    agent = await palot.agents.prompt(agent.id, "write notes")
    agent = await palot.agents.wait(agent.id, timeout=60)
    assert agent.status == AgentStatus.WAITING
    agent = await palot.agents.reply_permission(agent.id, "always")
    agent = await palot.agents.wait(agent.id, timeout=60)
    assert agent.status == AgentStatus.COMPLETED
    assert (Path(agent.environment.directory) / "NOTES.md").exists()


async def test_abort_during_a_slow_turn_pauses_the_agent(palot: Palot, repo: Path):
    agent = await palot.agents.spawn(repo, "slow task")
    agent = await palot.agents.wait(agent.id, timeout=30, until=[AgentStatus.RUNNING])
    # Let the model's slow stream begin, then stop it.
    with palot.hub.subscribe(session_id=agent.session_id, types=["message.part.delta"], replay=False) as sub:
        await sub.get(timeout=30)
    agent = await palot.agents.abort(agent.id)
    agent = await palot.agents.wait(agent.id, timeout=30)
    assert agent.status == AgentStatus.PAUSED
    await asyncio.sleep(0.5)
    assert (await palot.agents.get(agent.id)).status == AgentStatus.PAUSED
    entries = palot.store.audit_log(agent_id=agent.id)
    assert "aborted" in [e.event for e in entries]
    # Straight from running to paused: never "completed" on the way (a user would be told it was done).
    assert [e.detail["to"] for e in entries if e.event == "status"] == ["running", "paused"]


async def test_a_model_error_marks_the_agent_failed_with_the_reason(palot: Palot, repo: Path):
    agent = await palot.agents.spawn(repo, "provoke an error")
    agent = await palot.agents.wait(agent.id, timeout=60)
    assert agent.status == AgentStatus.FAILED
    assert agent.error and "scripted failure" in agent.error
