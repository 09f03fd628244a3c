"""The permission inbox on the real service: every pending request in one place, answered in bulk, by rules
(at once or after a deadline), and across a restart of the service — never twice."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
from pathlib import Path

import pytest
from conftest import SCRIPTS, make_repo
from palot import api
from palot.client import PalotClient
from palot.errors import InvalidInput, InvalidState
from service_support import running_service, start_service, stop_service, wait_ready

SCRIPT = SCRIPTS / "inbox.json"
Status = api.AgentStatus


async def _asking(palot: PalotClient, repo: Path, prompt: str) -> api.Agent:
    """An agent in "ask" mode, spawned and waiting on its one permission request."""
    agent = await palot.spawn(repo, prompt, permission_mode="ask")
    agent = await palot.wait(agent.id, timeout=60)
    assert agent.status == Status.WAITING and len(agent.permissions) == 1, agent
    return agent


async def _inbox(palot: PalotClient, **filters: str) -> list[api.InboxItem]:
    return await palot.call("inbox", filters)


async def _reply(palot: PalotClient, **selection: object) -> list[api.InboxItem]:
    return await palot.call("inbox_reply", selection)


async def _restart_service(home: Path, palot: PalotClient, proc: subprocess.Popen[bytes] | None
                           ) -> tuple[PalotClient, subprocess.Popen[bytes]]:
    """Stop the service (OpenCode keeps running, its requests with it) and start it again."""
    assert await palot.stop_service()
    await palot.close()
    assert proc is not None
    proc.wait(30)
    proc = start_service(home, SCRIPT)
    return await wait_ready(home, proc), proc


def _files(agent: api.Agent) -> Path:
    return Path(agent.environment.host_path or agent.environment.directory)


async def test_the_inbox_lists_every_request_oldest_first_and_answers_them_by_agent_tool_and_id(
        tmp_path: Path, opencode_bin: Path) -> None:
    web = make_repo(tmp_path / "web")
    backend = make_repo(tmp_path / "backend")
    async with running_service(tmp_path / "palot-home", SCRIPT) as palot:
        first = await _asking(palot, web, "run a command")
        second = await _asking(palot, web, "run a command")
        third = await _asking(palot, backend, "edit readme")

        items = await _inbox(palot)
        assert [i.agent_id for i in items] == [first.id, second.id, third.id]
        assert [i.permission_id for i in items] == [a.permissions[0].id for a in (first, second, third)]
        assert [i.tool for i in items] == ["bash", "bash", "edit"]
        assert [i.project_path for i in items] == [first.project_path, first.project_path, third.project_path]
        assert items[0].project_name != items[2].project_name and items[0].agent_title == first.title
        assert all(i.patterns for i in items) and items[0].asked_at <= items[1].asked_at <= items[2].asked_at
        assert all(i.deadline is None and i.rule is None for i in items)
        assert await _inbox(palot, project=third.project_name) == [items[2]]
        assert (await palot.status()).inbox == 3

        # One agent's requests only.
        answered = await _reply(palot, reply="once", agent=first.id)
        assert [i.permission_id for i in answered] == [items[0].permission_id]
        assert [i.agent_id for i in await _inbox(palot)] == [second.id, third.id]

        # A selection with one unknown id answers nothing, and says how to find the right ids.
        with pytest.raises(InvalidInput) as bad:
            await _reply(palot, reply="once", permission_ids=[items[1].permission_id, "per_nope"])
        assert "per_nope" in str(bad.value) and "palot inbox" in str(bad.value)
        assert len(await _inbox(palot)) == 2

        # Every bash request left: the edit stays.
        answered = await _reply(palot, reply="once", tool="bash")
        assert [i.agent_id for i in answered] == [second.id]
        [left] = await _inbox(palot)
        assert left.agent_id == third.id
        with pytest.raises(InvalidState) as none:
            await _reply(palot, reply="once", tool="bash")
        assert "no pending request matches" in str(none.value)

        assert [i.agent_id for i in await _reply(palot, reply="once", permission_ids=[left.permission_id])] == \
            [third.id]
        for agent in (first, second, third):
            final = await palot.wait(agent.id, timeout=60, until=[Status.COMPLETED])
            assert final.status == Status.COMPLETED, final
        assert (_files(first) / "ran.txt").read_text() == "ran\n" and (_files(second) / "ran.txt").exists()
        assert "edited by an agent" in (_files(third) / "README.md").read_text()
        assert await _inbox(palot) == [] and (await palot.status()).inbox == 0


RULES = """
[[rules]]
tool = "bash"
pattern = "*"
action = "ask"
timeout_minutes = 0.03
on_timeout = "reject"

[[rules]]
tool = "edit"
action = "allow"
"""


async def test_rules_reject_after_their_deadline_and_allow_at_once(tmp_path: Path, opencode_bin: Path) -> None:
    home = tmp_path / "palot-home"
    home.mkdir(mode=0o700)
    (home / "settings.toml").write_text(RULES)  # read as the service starts
    repo = make_repo(tmp_path / "project")
    async with running_service(home, SCRIPT) as palot:
        agent = await palot.spawn(repo, "run a command", permission_mode="ask")
        final = await palot.wait(agent.id, timeout=60, until=[Status.PAUSED])
        assert final.status == Status.PAUSED and final.permissions == [], final
        assert not (_files(final) / "ran.txt").exists()
        [auto] = [e for e in await palot.audit(agent.id) if e.event == "permission.auto"]
        assert auto.detail["rule"].startswith("rule 1:") and auto.detail["reply"] == "reject"
        assert auto.detail["tool"] == "bash" and auto.detail["patterns"]
        asked = [e for e in await palot.audit(agent.id) if e.event == "status" and e.detail["to"] == "waiting"]
        assert auto.ts - asked[0].ts >= 0.03 * 60 - 0.5  # it waited out the deadline (about 1.8 s)

        edit = await palot.spawn(repo, "edit readme", permission_mode="ask")
        final = await palot.wait(edit.id, timeout=60, until=[Status.COMPLETED])
        assert final.status == Status.COMPLETED, final
        assert "edited by an agent" in (_files(final) / "README.md").read_text()
        [auto] = [e for e in await palot.audit(edit.id) if e.event == "permission.auto"]
        assert auto.detail["rule"] == "rule 2: allow edit '*'" and auto.detail["reply"] == "once"
        assert await _inbox(palot) == []


async def test_a_pending_request_survives_a_restart_and_is_answered_once(tmp_path: Path, opencode_bin: Path) -> None:
    home = tmp_path / "palot-home"
    repo = make_repo(tmp_path / "project")
    proc: subprocess.Popen[bytes] | None = start_service(home, SCRIPT)
    palot = await wait_ready(home, proc)
    try:
        agent = await _asking(palot, repo, "run a command")
        [before] = await _inbox(palot)

        # The service stops (OpenCode keeps running, the request with it) and starts again.
        palot, proc = await _restart_service(home, palot, proc)

        [after] = await _inbox(palot)
        assert (after.permission_id, after.asked_at, after.agent_id) == (before.permission_id, before.asked_at,
                                                                          agent.id)
        assert [i.permission_id for i in await _reply(palot, reply="once", permission_ids=[after.permission_id])] \
            == [after.permission_id]
        final = await palot.wait(agent.id, timeout=60, until=[Status.COMPLETED])
        assert final.status == Status.COMPLETED, final

        with pytest.raises(InvalidInput) as again:
            await _reply(palot, reply="reject", permission_ids=[after.permission_id])
        assert after.permission_id in str(again.value) and "palot inbox" in str(again.value)
        replies = [e for e in await palot.audit(agent.id) if e.event == "permission"]
        assert [(e.detail["request"], e.detail["reply"]) for e in replies] == [(after.permission_id, "once")]
        assert (await palot.get(agent.id)).status == Status.COMPLETED
    finally:
        await palot.close()
        await stop_service(home, proc)


async def _opencode_restarted(palot: PalotClient, *agents: api.Agent) -> None:
    """Kill the service's OpenCode server (SIGKILL, as a crash or the OOM killer would) and wait until it runs
    again and the agents it was serving are seen as interrupted."""
    status = await palot.status()
    assert status.opencode_pid is not None
    os.kill(status.opencode_pid, signal.SIGKILL)
    for agent in agents:
        after = await palot.wait(agent.id, timeout=90, until=[Status.FAILED])
        assert after.status == Status.FAILED and after.error and after.error.startswith("interrupted"), after
    for _ in range(60):
        now = await palot.status()
        if now.opencode_restarts > status.opencode_restarts and now.opencode_connected:
            break
        await asyncio.sleep(0.5)
    assert now.opencode_restarts == status.opencode_restarts + 1 and now.opencode_pid != status.opencode_pid


async def test_requests_outlive_an_opencode_restart_and_an_allow_resumes_the_agent_answered_once(
        tmp_path: Path, opencode_bin: Path) -> None:
    home = tmp_path / "palot-home"
    repo = make_repo(tmp_path / "project")
    proc: subprocess.Popen[bytes] | None = start_service(home, SCRIPT)
    palot = await wait_ready(home, proc)
    try:
        allowed = await _asking(palot, repo, "run a command")
        rejected = await _asking(palot, repo, "run a command")
        before = await _inbox(palot)

        # OpenCode forgets both requests and ends both turns; the inbox keeps them, with their age.
        await _opencode_restarted(palot, allowed, rejected)
        after = await _inbox(palot)
        assert [(i.permission_id, i.asked_at, i.agent_id) for i in after] == \
            [(i.permission_id, i.asked_at, i.agent_id) for i in before]
        assert all(i.note and "OpenCode restarted" in i.note for i in after) and (await palot.status()).inbox == 2

        # ... and so does a restart of the service after it.
        palot, proc = await _restart_service(home, palot, proc)
        assert [(i.permission_id, i.asked_at, i.note) for i in await _inbox(palot)] == \
            [(i.permission_id, i.asked_at, i.note) for i in after]

        # Allowing one resumes its agent, whose repeat of the request is answered the same way; rejecting the
        # other leaves that agent stopped, as a rejection does.
        old_allowed, old_rejected = after[0].permission_id, after[1].permission_id
        assert [i.permission_id for i in await _reply(palot, reply="once", permission_ids=[old_allowed])] == \
            [old_allowed]
        assert [i.permission_id for i in await _reply(palot, reply="reject", agent=rejected.id)] == [old_rejected]
        final = await palot.wait(allowed.id, timeout=60, until=[Status.COMPLETED])
        assert final.status == Status.COMPLETED, final
        assert (_files(allowed) / "ran.txt").read_text() == "ran\n"
        assert not (_files(rejected) / "ran.txt").exists()
        assert (await palot.get(rejected.id)).status == Status.FAILED
        assert await _inbox(palot) == []

        # Each request was answered once: the person's answer, then Palot's for the repeat, naming it.
        audit = [e for e in await palot.audit(allowed.id) if e.event in ("permission", "permission.auto")]
        people = [(e.detail["request"], e.detail["reply"]) for e in audit if e.event == "permission"]
        assert people[0] == (old_allowed, "once") and len(people) == 2 and people[1][0] != old_allowed
        [auto] = [e for e in audit if e.event == "permission.auto"]
        assert auto.detail["request"] == people[1][0] and old_allowed in auto.detail["rule"]
        assert [(e.event, e.detail["request"], e.detail["reply"]) for e in await palot.audit(rejected.id)
                if e.event.startswith("permission")] == [("permission", old_rejected, "reject")]
        with pytest.raises(InvalidInput):
            await _reply(palot, reply="once", permission_ids=[old_rejected])
    finally:
        await palot.close()
        await stop_service(home, proc)
