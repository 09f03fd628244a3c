"""Notifications of moves and lost environments from the real service, with real containers on the private
engine: a move is "done" and names where the agent went; a move that fails "needs you" with the error; a
container removed behind Palot's back "needs you" as a lost environment."""

from __future__ import annotations

import asyncio
import subprocess
from pathlib import Path

from conftest import CORE_SCRIPT, Engine, make_repo
from palot import api
from palot.errors import PalotError
from service_support import running_service
from test_budgets import notifications
from test_notifications import _until


def _home(tmp_path: Path) -> Path:
    home = tmp_path / "home"
    home.mkdir()
    (home / "settings.toml").write_text("[notifications]\ncoalesce_seconds = 0\n")  # each one on its own
    return home


async def test_a_move_says_where_the_agent_went_and_a_failed_move_says_why(
        container_engine: Engine, tmp_path: Path, opencode_bin: Path) -> None:
    home = _home(tmp_path)
    repo = make_repo(tmp_path / "project")
    async with running_service(home, CORE_SCRIPT) as palot, notifications(home) as seen:
        # The setup script passes in a worktree ($PALOT_PROJECT is set) and fails in a container.
        stays = await palot.spawn(repo, "write hello", title="homebody", setup_script='test -n "$PALOT_PROJECT"')
        goes = await palot.spawn(repo, "write hello", title="traveller")
        assert (await palot.wait(stays.id, timeout=90)).status == api.AgentStatus.COMPLETED
        assert (await palot.wait(goes.id, timeout=90)).status == api.AgentStatus.COMPLETED

        try:
            await palot.move(stays.id, "container")
            raise AssertionError("a move whose setup script fails succeeded")
        except PalotError as e:
            error = e.message
        assert "failed at step 'setup'" in error
        back = await palot.get(stays.id)
        assert back.environment.type == "worktree" and back.status == api.AgentStatus.COMPLETED
        [failed] = await _until(seen, lambda n: n.reason == "move_failed" and stays.id in n.agent_ids)
        assert failed.kind == "needs_you" and failed.agent_ids == [stays.id]
        assert failed.title == f"homebody ({stays.id}) could not move to container"
        assert "failed at step 'setup'" in failed.body
        assert failed.action == f"palot agents moves {stays.id}"

        result = await palot.move(goes.id, "container")
        assert result.state == "completed" and result.target == "container"
        [moved] = await _until(seen, lambda n: n.reason == "moved" and goes.id in n.agent_ids)
        assert moved.kind == "done" and moved.agent_ids == [goes.id]
        assert moved.title == f"traveller ({goes.id}) moved to container"
        assert f"{result.messages} messages" in moved.body
        assert moved.action == f"palot agents show {goes.id}"
        assert (await palot.get(goes.id)).environment.type == "container"

        # Each move said once; the successful one needs nobody.
        assert [n.reason for n in seen if n.reason in ("moved", "move_failed")] == ["move_failed", "moved"]
        assert not [n for n in seen if n.kind == "needs_you" and goes.id in n.agent_ids]
        await palot.archive(goes.id)


async def test_a_container_removed_behind_palots_back_is_a_lost_environment(
        container_engine: Engine, tmp_path: Path, opencode_bin: Path) -> None:
    home = _home(tmp_path)
    repo = make_repo(tmp_path / "project")
    async with running_service(home, CORE_SCRIPT) as palot, notifications(home) as seen:
        agent = await palot.spawn(repo, "write hello", environment="container", title="boxed")
        assert (await palot.wait(agent.id, timeout=120)).status == api.AgentStatus.COMPLETED
        container = f"palot-{agent.environment.id}"

        await asyncio.to_thread(subprocess.run, ["docker", "-H", container_engine.host, "rm", "-f", container],
                                check=True, capture_output=True)

        [lost] = await _until(seen, lambda n: n.reason == "environment_lost" and agent.id in n.agent_ids, 60)
        assert lost.kind == "needs_you" and lost.agent_ids == [agent.id]
        assert lost.title == f"boxed ({agent.id}) lost its environment"
        # Whichever notices first says it: the engine (the container is gone) or the event stream (its OpenCode
        # server is unreachable); either way with the fix that keeps the work.
        assert ("container is gone" in lost.body or "OpenCode server is unreachable" in lost.body) \
            and "archive" in lost.body, lost.body
        assert lost.action == f"palot agents show {agent.id}"
        failed = await palot.get(agent.id)
        assert failed.status == api.AgentStatus.FAILED and failed.error == lost.body
        assert not [n for n in seen if n.reason == "failed" and agent.id in n.agent_ids]
