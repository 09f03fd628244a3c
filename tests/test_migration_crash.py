"""Crash injection: the Palot service moving an agent is killed after each step in turn; the next start
finishes the move or rolls it back, and no file or message is lost either way."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import CORE_SCRIPT, Engine, make_repo
from migration_support import capture, make_work
from service_support import start_service, wait_ready
from palot import AgentStatus, Palot
from palot.migration import STEPS
from palot.paths import PalotPaths

# Killed before the commit point, a move is rolled back; killed after it, the move is finished.
COMMIT_STEP = STEPS.index("resume")


@pytest.mark.parametrize("step", STEPS)
async def test_killed_after_each_step_the_next_start_completes_or_rolls_back(
    step: str, tmp_path: Path, opencode_bin: Path, container_engine: Engine
):
    home = tmp_path / "palot-home"
    repo = make_repo(tmp_path / "repo", {"README.md": "# sample project\n"})
    palot = Palot(PalotPaths(home), isolated=True, scripted=str(CORE_SCRIPT), opencode_bin=opencode_bin)
    await palot.start()
    try:
        agent = await palot.agents.spawn(repo, "write hello")
        assert (await palot.agents.wait(agent.id, timeout=90)).status == AgentStatus.COMPLETED
        make_work(Path(agent.environment.directory))
        before = await capture(palot, agent.id)
    finally:
        await palot.close()

    # The service does the move; it is the process killed right after the step did its work. The user's
    # `palot agents move` is told the service stopped mid-move.
    service = start_service(home, CORE_SCRIPT, crash_after=step)
    await (await wait_ready(home, service)).close()
    moved = subprocess.run([sys.executable, "-m", "palot", "agents", "move", agent.id, "container", "--json"],
                           env={**os.environ, "PALOT_HOME": str(home)}, capture_output=True, text=True,
                           timeout=300, stdin=subprocess.DEVNULL)
    assert service.wait(30) == -9, moved.stderr[-2000:]  # SIGKILL
    assert moved.returncode == 2 and "the Palot service stopped while doing 'move'" in moved.stdout + moved.stderr

    # The next start (any Palot process) recovers the move.
    palot = Palot(PalotPaths(home), isolated=True, scripted=str(CORE_SCRIPT), opencode_bin=opencode_bin)
    await palot.start()
    try:
        [move] = palot.migrations.history(agent.id)
        after = await capture(palot, agent.id)
        recovered = await palot.agents.get(agent.id)
        journal = [(j.step, j.phase) for j in palot.store.migration_journal(move.id)]
        if STEPS.index(step) < COMMIT_STEP:
            assert move.state == "rolled_back" and f"step '{step}'" in (move.error or "")
            assert recovered.environment.type == "worktree"
            assert Path(recovered.environment.directory) == Path(agent.environment.directory)
            assert journal[-2:] == [("rollback", "started"), ("rollback", "done")]
            assert (step, "done") not in journal  # killed before it was journaled done
            names = subprocess.run(["docker", "-H", container_engine.host, "ps", "-a", "--format", "{{.Names}}"],
                                   capture_output=True, text=True).stdout.split()
            assert f"palot-{move.manifest['target']['environment_id']}" not in names
            assert not (home / "environments" / move.manifest["target"]["environment_id"]).exists()
        else:
            assert move.state == "completed"
            assert recovered.environment.type == "container"
            assert not Path(agent.environment.directory).exists()  # the source was cleaned up
            assert journal[-2:] == [("cleanup", "started"), ("cleanup", "done")]
        assert recovered.status == AgentStatus.COMPLETED
        assert after.files == before.files and after.status == before.status and after.log == before.log
        assert after.messages == before.messages
        # Still a working agent wherever it ended up.
        await palot.agents.prompt(agent.id, "write notes")
        assert (await palot.agents.wait(agent.id, timeout=90)).status == AgentStatus.COMPLETED
        assert "NOTES.md" in (await palot.agents.diff(agent.id)).patch
    finally:
        await palot.close()
        await palot.stop_server()
