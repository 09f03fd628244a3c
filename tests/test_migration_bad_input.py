"""Moves that cannot work are refused before anything changes; a move that fails midway is rolled back."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from conftest import Engine, git
from migration_support import capture
from palot import AgentStatus, Palot
from palot.errors import BranchExists, InvalidInput, InvalidState, MigrationFailed, PalotError


async def _unchanged(palot: Palot, agent_id: str, before, env_id: str) -> None:
    assert await capture(palot, agent_id) == before
    assert palot.store.get_agent(agent_id).environment_id == env_id
    assert (await palot.agents.get(agent_id)).status == AgentStatus.COMPLETED


async def test_moving_to_the_environment_it_is_in_or_to_an_unknown_one_changes_nothing(palot: Palot, repo: Path):
    agent = await palot.agents.spawn(repo, "write hello")
    await palot.agents.wait(agent.id, timeout=90)
    before = await capture(palot, agent.id)
    env_id = palot.store.get_agent(agent.id).environment_id
    with pytest.raises(InvalidInput, match=f"agent {agent.id} is already in a worktree — move it to"):
        await palot.agents.move(agent.id, "worktree")
    with pytest.raises(InvalidInput, match="environment 'moon' is not available — move to one of: container"):
        await palot.agents.move(agent.id, "moon")
    with pytest.raises(PalotError, match="no agent 'ag_nobody'"):
        await palot.agents.move("ag_nobody", "container")
    await _unchanged(palot, agent.id, before, env_id)
    assert palot.migrations.history(agent.id) == []

    await palot.agents.archive(agent.id)
    with pytest.raises(InvalidState, match="is archived, so it cannot move"):
        await palot.agents.move(agent.id, "container")


async def test_without_a_container_engine_the_move_is_refused_and_nothing_changes(
    palot: Palot, repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/no-engine.sock")
    agent = await palot.agents.spawn(repo, "write hello")
    await palot.agents.wait(agent.id, timeout=90)
    before = await capture(palot, agent.id)
    env_id = palot.store.get_agent(agent.id).environment_id
    with pytest.raises(PalotError, match="container engine") as err:
        await palot.agents.move(agent.id, "container")
    assert err.value.fix  # says how to get an engine
    await _unchanged(palot, agent.id, before, env_id)
    assert palot.migrations.history(agent.id) == []
    assert not (palot.paths.home / "environments").exists() or not any((palot.paths.home / "environments").iterdir())


async def test_a_branch_name_taken_in_the_target_is_refused_and_nothing_changes(
    palot: Palot, repo: Path, container_engine: Engine
):
    agent = await palot.agents.spawn(repo, "write hello", environment="container")
    await palot.agents.wait(agent.id, timeout=90)
    before = await capture(palot, agent.id)
    env_id = palot.store.get_agent(agent.id).environment_id
    branch = agent.environment.branch
    # The user made a branch of the same name, with other work, in the repository the worktree would use.
    git(repo, "checkout", "-q", "-b", branch)
    (repo / "mine.txt").write_text("the user's own work\n")
    git(repo, "add", "mine.txt")
    git(repo, "commit", "-q", "-m", "mine")
    git(repo, "checkout", "-q", "main")
    users_head = git(repo, "rev-parse", branch)
    with pytest.raises(BranchExists, match=f"branch '{branch}' already exists in .* with other commits"):
        await palot.agents.move(agent.id, "worktree")
    await _unchanged(palot, agent.id, before, env_id)
    assert git(repo, "rev-parse", branch) == users_head
    assert palot.migrations.history(agent.id) == []
    assert (await palot.agents.environment(agent.id)).state == "running"


async def test_a_move_that_fails_midway_is_rolled_back_and_the_agent_carries_on(
    palot: Palot, repo: Path, container_engine: Engine
):
    # The setup script passes in a worktree ($PALOT_PROJECT is set) and fails in a container.
    agent = await palot.agents.spawn(repo, "write hello", setup_script='test -n "$PALOT_PROJECT"')
    await palot.agents.wait(agent.id, timeout=90)
    before = await capture(palot, agent.id)
    env_id = palot.store.get_agent(agent.id).environment_id
    with pytest.raises(MigrationFailed, match="failed at step 'setup'.*the agent is back in its worktree"):
        await palot.agents.move(agent.id, "container")
    await _unchanged(palot, agent.id, before, env_id)
    [move] = palot.migrations.history(agent.id)
    assert move.state == "rolled_back" and "setup script failed" in (move.error or "")
    events = [e["event"] for e in palot.agents.audit_log(agent.id)]
    assert "migration_rolled_back" in events
    await palot.agents.prompt(agent.id, "write notes")
    assert (await palot.agents.wait(agent.id, timeout=90)).status == AgentStatus.COMPLETED


async def test_a_rollback_that_fails_is_reported_as_it_is_and_finished_on_the_next_start(
    palot: Palot, repo: Path, container_engine: Engine
):
    # The setup script passes in the container (no $PALOT_PROJECT there). In the new worktree it fails, after
    # making a file even root cannot delete, so removing that worktree (the undo) fails too.
    stuck = "if [ -n \"$PALOT_PROJECT\" ]; then touch stuck && chattr +i stuck; exit 1; fi"
    agent = await palot.agents.spawn(repo, "write hello", environment="container", setup_script=stuck)
    await palot.agents.wait(agent.id, timeout=90)
    env_id = palot.store.get_agent(agent.id).environment_id
    try:
        with pytest.raises(MigrationFailed) as e:
            await palot.agents.move(agent.id, "worktree")
        assert "undoing it also failed" in e.value.message and "as it was" not in str(e.value)
        assert "palot agents moves" in (e.value.fix or "")
        [move] = palot.migrations.history(agent.id)
        assert move.state == "running" and "rollback failed" in (move.error or "")
        assert (await palot.agents.get(agent.id)).status == AgentStatus.MIGRATING
    finally:
        for path in palot.paths.worktrees.rglob("stuck"):
            subprocess.run(["chattr", "-i", str(path)], check=True)
    [undone] = await palot.migrations.recover()  # what the next `palot` command does
    assert undone.state == "rolled_back"
    assert palot.store.get_agent(agent.id).environment_id == env_id
    assert (await palot.agents.get(agent.id)).status == AgentStatus.COMPLETED
