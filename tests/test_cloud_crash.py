"""A cloud agent's container killed behind Palot's back, under ``wrangler dev`` (workerd, the Docker engine,
OpenCode, the scripted model) with a short ``SAVE_EVERY``: the Worker notices the stop nobody asked for, the
agent's views say when it happened and what the next start brings back, and a prompt starts it again with the
newest periodic save restored: the saved work byte for byte, git and the conversation, and not the work done
after that save, which the views then say was lost."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cloud_support import (  # noqa: F401
    cloud_agent_with_work, cloud_agent_wrote_hello, cloud_palot, local_worker, make_cloud_work,
)
from conftest import Engine
from migration_support import capture

from palot import Agent, AgentStatus, Palot
from palot.cloud.worker import WorkerClient
from localdev import LocalWorker

#: Work done after the newest save: a commit and an untracked file, both lost with the container.
AFTER_SAVE = r"""set -e
printf 'committed after the save\n' > late.txt
git add late.txt
git -c user.name=t -c user.email=t@t commit -q -m 'commit after the save'
printf 'written after the save\n' > 'after the save.txt'
"""


@pytest.fixture(scope="module")
def cloud_worker(container_engine: Engine, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalWorker]:
    with local_worker(container_engine, tmp_path_factory.mktemp("worker"), save_every="10s") as worker:
        yield worker


def clock(unix: float) -> str:
    return time.strftime("%H:%M", time.localtime(unix))


async def next_save(worker: WorkerClient, env_id: str, timeout: float = 60) -> dict[str, Any]:
    """The status once a periodic save that began after this call is in the bucket (the next one may be in flight)."""
    deadline, seen = time.monotonic() + timeout, (await worker.status(env_id))["saved_at"]
    for _ in range(2):
        while (status := await worker.status(env_id))["saved_at"] == seen:
            assert status["save_error"] is None, status["save_error"]
            assert time.monotonic() < deadline, f"no periodic save in {timeout:.0f} s"
            await asyncio.sleep(0.5)
        seen = status["saved_at"]
    return status


async def kill_app_container(worker: LocalWorker) -> str:
    """``docker kill`` the environment's app container (not its networking sidecar), as a crash would."""
    running = await asyncio.to_thread(worker._docker, "ps", "--filter", f"name=^{worker.container_prefix}",
                                      "--format", "{{.Names}}")
    (app,) = [name for name in running.split() if not name.endswith("-proxy")]
    await asyncio.to_thread(worker._docker, "kill", app)
    return app


async def agent_when(palot: Palot, agent_id: str, ok: Any, what: str, timeout: float = 60) -> Agent:
    """The agent's view once ``ok`` (read from Palot's own views: asking OpenCode would wake the environment)."""
    deadline = time.monotonic() + timeout
    while not ok(agent := next(a for a in palot.agents.list() if a.id == agent_id)):
        assert time.monotonic() < deadline, f"the agent's view never said {what}: {agent}"
        await asyncio.sleep(0.5)
    return agent


@pytest.mark.asyncio(loop_scope="module")
async def test_a_killed_container_comes_back_with_its_last_save_and_the_views_say_what_was_lost(
        cloud_palot: Palot, cloud_worker: LocalWorker, tmp_path: Path):
    palot = cloud_palot
    work = await cloud_agent_with_work(palot, tmp_path)
    agent, env_id, worker, before, users = work.agent, work.env_id, work.worker, work.before, work.users
    saved = await next_save(worker, env_id)  # holds everything above
    assert saved["stopped_unexpectedly_at"] is None and saved["lost"] is None

    # More work after that save, then the container dies before the next one.
    await worker.run(env_id, ["sh", "-c", AFTER_SAVE], "working after the save", cwd="/workspace")
    await kill_app_container(cloud_worker)
    killed = time.monotonic()
    while not (status := await worker.status(env_id))["stopped_unexpectedly_at"]:
        assert time.monotonic() < killed + 60, f"the Worker did not notice the kill: {status}"
        await asyncio.sleep(0.5)
    print(f"\nthe Worker noticed the kill after {time.monotonic() - killed:.1f} s")
    assert status["status"] == "stopped" and status["lost"] == "since_save", status
    assert status["exit_code"] == 137 and status["saved_at"] == saved["saved_at"]
    when, at = clock(status["stopped_unexpectedly_at"]), clock(saved["saved_at"])
    told = (f"its cloud container stopped unexpectedly at {when} (exit 137); the next prompt starts it again "
            f"from the save at {at}: work done after {at} is lost")
    env = await palot.agents.environment(agent.id)
    assert env.state == "stopped" and env.notice == told
    # The agent says why its environment is gone, in the same words (as a failure: a turn would have been cut).
    failed = await agent_when(palot, agent.id, lambda a: a.status == AgentStatus.FAILED, "failed")
    print(f"Palot's views said so after {time.monotonic() - killed:.1f} s")
    assert failed.error == told and failed.notice == told
    assert (await worker.status(env_id))["status"] == "stopped"  # nothing of that woke it

    # A prompt starts it again: the newest save is back before OpenCode takes the prompt.
    await palot.agents.prompt(agent.id, "recall the conversation")
    done = await palot.agents.wait(agent.id, timeout=180)
    assert done.status == AgentStatus.COMPLETED, done.error
    status = await worker.status(env_id)
    assert status["status"] == "running" and status["restored"] == "restored"
    assert status["restored_from"] == saved["saved_at"] and status["lost"] == "since_save"
    messages = await palot.agents.messages(agent.id)
    assert f"I remember the first request: write hello. This conversation has {users + 1} user messages" in \
        messages[-1].text
    after = await capture(palot, agent.id)
    assert after.files == before.files  # byte for byte; the work after the save is gone
    assert after.status == before.status and after.log == before.log
    assert after.messages[:len(before.messages)] == before.messages

    restored = (f"its cloud container stopped unexpectedly at {when} (exit 137) and was restored from the save "
                f"at {at}: work done after {at} was lost")
    shown = await agent_when(palot, agent.id, lambda a: a.notice == restored, "what the restore brought back")
    assert shown.status == AgentStatus.COMPLETED and shown.error is None
    assert (await palot.agents.environment(agent.id)).notice == restored
    await palot.agents.destroy(agent.id, force=True)



@pytest.mark.asyncio(loop_scope="module")
async def test_a_container_killed_mid_turn_ends_the_turn_and_comes_back_with_the_save_before_it(
        cloud_palot: Palot, cloud_worker: LocalWorker, tmp_path: Path):
    """The issue's case: the container dies while the agent works. The turn ends with the reason, and the
    next prompt brings back the save from before the turn, whose prompt is then said to be lost."""
    palot = cloud_palot
    agent, env_id = await cloud_agent_wrote_hello(palot, tmp_path)
    worker = palot.backends["cloud"].worker()
    before = await capture(palot, agent.id)
    saved = await next_save(worker, env_id)

    await palot.agents.prompt(agent.id, "slow task")  # streams a word a second
    await agent_when(palot, agent.id, lambda a: a.status == AgentStatus.RUNNING, "running")
    await kill_app_container(cloud_worker)
    failed = await agent_when(palot, agent.id, lambda a: a.status == AgentStatus.FAILED, "failed")
    status = await worker.status(env_id)
    assert status["stopped_unexpectedly_at"] and status["lost"] == "since_save", status
    # The next periodic save is due 10 s after the last: on a slow machine one may have run during the turn.
    saved_during_turn = status["saved_at"] != saved["saved_at"]
    at = clock(status["saved_at"])
    assert failed.error and failed.error.startswith("its cloud container stopped unexpectedly") and \
        f"from the save at {at}: work done after {at} is lost" in failed.error, failed.error

    await palot.agents.prompt(agent.id, "recall the conversation")
    done = await palot.agents.wait(agent.id, timeout=180)
    assert done.status == AgentStatus.COMPLETED, done.error
    after = await capture(palot, agent.id)
    assert after.files == before.files and after.log == before.log
    assert after.messages[:len(before.messages)] == before.messages
    if not saved_during_turn:
        assert not any(role == "user" and "slow task" in text for role, text in after.messages)  # lost with it
    shown = await agent_when(palot, agent.id, lambda a: bool(a.notice and "was restored from the save" in a.notice),
                             "what the restore brought back")
    assert f"work done after {at} was lost" in (shown.notice or "")
    await palot.agents.destroy(agent.id, force=True)

def test_the_notice_says_what_each_kind_of_loss_means_before_and_after_the_restart():
    from palot.cloud.crash import notice

    stop, save = time.time() - 60, time.time() - 600
    when, at = clock(stop), clock(save)
    down = {"status": "stopped", "stopped_unexpectedly_at": stop, "exit_code": None, "saved_at": save,
            "restored_from": None}
    up = {**down, "status": "running", "restored_from": save}
    head = f"its cloud container stopped unexpectedly at {when}"
    assert notice({**down, "stopped_unexpectedly_at": None}) is None
    assert notice({**down, "lost": "nothing"}) == \
        f"{head}; the next prompt starts it again from the save at {at}: no change after it was seen, so nothing is lost"
    assert notice({**up, "lost": "nothing"}) == \
        f"{head} and was restored from the save at {at}: nothing was lost (no change after {at} that the Worker saw)"
    assert notice({**down, "lost": "unknown"}).endswith(f"work after {at} may be lost")
    assert notice({**up, "lost": "unknown"}).endswith(f"work after {at} may have been lost")
    assert notice({**down, "lost": "everything", "saved_at": None, "exit_code": 139}) == (
        f"{head} (exit 139); there is no save, so the next prompt starts it again from the project's base commit: "
        f"its work there is lost")
    assert notice({**up, "lost": "everything", "restored_from": None}).endswith(
        "started again from the project's base commit (there was no save): its work there was lost")
