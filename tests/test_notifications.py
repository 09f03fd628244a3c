"""Notifications from the real service: "done" when an agent completes, "needs you" when one fails, each
naming the agent and the next action; several within a moment are one."""

from __future__ import annotations

import asyncio
from pathlib import Path

from conftest import CORE_SCRIPT, make_repo
from palot import api
from service_support import running_service
from test_budgets import notifications


async def _until(seen: list[api.Notification], test, timeout: float = 30) -> list[api.Notification]:
    for _ in range(int(timeout * 10)):
        found = [n for n in seen if test(n)]
        if found:
            return found
        await asyncio.sleep(0.1)
    raise AssertionError(f"no such notification in {seen}")


async def test_done_and_needs_you_name_the_agent_and_the_next_action(tmp_path: Path, opencode_bin: Path) -> None:
    home = tmp_path / "home"
    repo = make_repo(tmp_path / "project")
    home.mkdir()
    # A window wide enough that agents spawned together finish within it even on a busy machine.
    (home / "settings.toml").write_text("[notifications]\ncoalesce_seconds = 4\n")
    async with running_service(home, CORE_SCRIPT) as palot, notifications(home) as seen:
        done = await palot.spawn(repo, "write hello", title="greeter")
        failing = await palot.spawn(repo, "provoke an error", title="doomed")
        assert (await palot.wait(done.id, timeout=60)).status == api.AgentStatus.COMPLETED
        assert (await palot.wait(failing.id, timeout=60)).status == api.AgentStatus.FAILED

        finished = await _until(seen, lambda n: n.kind == "done" and done.id in n.agent_ids)
        assert finished[0].reason == "completed" and "greeter" in finished[0].title
        assert finished[0].action == f"palot agents diff {done.id}"
        failed = await _until(seen, lambda n: n.kind == "needs_you" and failing.id in n.agent_ids)
        assert failed[0].reason == "failed" and "doomed" in failed[0].title and failed[0].body
        assert failed[0].action == f"palot agents show {failing.id}"
        assert not [n for n in seen if n.kind == "done" and failing.id in n.agent_ids]

        # Three agents done within a moment: one notification names all three.
        agents = await asyncio.gather(*(palot.spawn(repo, "write hello", title=f"batch {n}") for n in range(3)))
        await asyncio.gather(*(palot.wait(a.id, timeout=60) for a in agents))
        ids = {a.id for a in agents}
        await _until(seen, lambda n: ids <= {a for m in seen if m.kind == "done" for a in m.agent_ids})
        batch = [n for n in seen if n.kind == "done" and ids & set(n.agent_ids)]
        assert len(batch) == 1 and batch[0].title == "3 agents are done", batch
        assert set(batch[0].agent_ids) == ids and len(batch[0].body.splitlines()) == 3
