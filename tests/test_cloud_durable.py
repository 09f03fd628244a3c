"""Pausing and resuming a cloud agent through Palot's real Worker under ``wrangler dev`` (workerd, the Docker
engine, OpenCode, the scripted model): the work is saved to the Worker's R2 bucket, the container stops (no
running time accrues), and the resume puts back every file byte for byte, git's status and log and the whole
conversation, which the model then receives."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from cloud_support import (  # noqa: F401
    cloud_agent_with_work, cloud_agent_wrote_hello, cloud_palot, cloud_worker, make_cloud_work,
)
from conftest import git
from migration_support import capture

from palot import AgentStatus, Palot
from palot.cloud.worker import CloudEnvironmentGone
from palot.errors import InvalidState
from localdev import LocalWorker

pytestmark = pytest.mark.asyncio(loop_scope="module")


async def test_pause_then_resume_keeps_files_git_and_conversation_and_no_running_time_accrues(
        cloud_palot: Palot, cloud_worker: LocalWorker, tmp_path: Path):
    palot = cloud_palot
    work = await cloud_agent_with_work(palot, tmp_path)
    agent, env_id, worker, before, users = work.agent, work.env_id, work.worker, work.before, work.users
    assert "picture.bin" in before.files and "untracked dir/notes with spaces.md" in before.files

    paused = await palot.agents.pause(agent.id)
    assert paused.status == AgentStatus.PAUSED
    assert paused.pause_reason and f"palot agents resume {agent.id}" in paused.pause_reason
    status = await worker.status(env_id)
    assert status["status"] == "paused" and status["saved_at"] and status["save_error"] is None
    assert (await palot.agents.environment(agent.id)).state == "paused"
    app = [name for name in cloud_worker.containers() if not name.endswith("-proxy")]
    running = await asyncio.to_thread(cloud_worker._docker, "ps", "--format", "{{.Names}}")
    assert not set(app) & set(running.split()), "the paused environment's container still runs"
    seconds = status["running_seconds"]
    await asyncio.sleep(3)
    assert (await worker.status(env_id))["running_seconds"] == seconds  # costs show running time only
    # While paused: prompts are refused with the fix; the diff is still there (the mirror was brought up to date).
    with pytest.raises(InvalidState) as refused:
        await palot.agents.prompt(agent.id, "write notes")
    assert f"palot agents resume {agent.id}" in (refused.value.fix or "")
    assert "hello.txt" in [f.path for f in (await palot.agents.diff(agent.id)).files]
    assert (await palot.agents.pause(agent.id)).status == AgentStatus.PAUSED  # again: nothing changes
    assert (await worker.status(env_id))["status"] == "paused"

    resumed = await palot.agents.resume(agent.id)
    assert resumed.status == AgentStatus.COMPLETED and resumed.pause_reason is None
    status = await worker.status(env_id)
    assert status["status"] == "running" and status["restored"] == "restored"
    after = await capture(palot, agent.id)
    assert after.files == before.files  # byte for byte: committed, uncommitted, untracked, binary
    assert after.status == before.status and after.log == before.log
    assert after.messages == before.messages

    # A new prompt works, and the model is sent the whole earlier conversation.
    await palot.agents.prompt(agent.id, "recall the conversation")
    assert (await palot.agents.wait(agent.id, timeout=120)).status == AgentStatus.COMPLETED
    last = (await palot.agents.messages(agent.id))[-1]
    assert f"I remember the first request: write hello. This conversation has {users + 1} user messages" in last.text
    audit = [entry.event for entry in palot.store.audit_log(agent_id=agent.id)]
    assert "paused" in audit and "resumed" in audit
    await palot.agents.destroy(agent.id, force=True)


async def test_archiving_a_paused_agent_resumes_it_first_and_keeps_its_work_on_the_branch(cloud_palot: Palot,
                                                                                          tmp_path: Path):
    palot = cloud_palot
    agent, env_id = await cloud_agent_wrote_hello(palot, tmp_path)
    await make_cloud_work(palot.backends["cloud"].worker(), env_id)
    assert (await palot.agents.pause(agent.id)).status == AgentStatus.PAUSED
    archived = await palot.agents.archive(agent.id)
    assert archived.status == AgentStatus.ARCHIVED
    repo, branch = Path(agent.project_path), agent.environment.branch
    assert git(repo, "show", f"{branch}:hello.txt") == "hello from the agent\n"
    assert git(repo, "show", f"{branch}:untracked dir/notes with spaces.md") == "untracked\n"
    assert "an uncommitted edit" in git(repo, "show", f"{branch}:README.md")
    with pytest.raises(CloudEnvironmentGone):
        await palot.backends["cloud"].worker().status(env_id)
