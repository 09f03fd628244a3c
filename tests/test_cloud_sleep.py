"""A cloud agent's environment sleeps when idle and wakes with everything in place, under ``wrangler dev``
(workerd, the Docker engine, OpenCode, the scripted model) with a short ``SLEEP_AFTER``: the Worker saves the
work periodically and before the container sleeps (its disk is lost), the status says "sleeping", and the
next prompt wakes it with the newest save restored before OpenCode gets the prompt."""

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

from palot import AgentStatus, Palot
from palot.cloud.worker import WorkerClient
from localdev import LocalWorker

pytestmark = pytest.mark.asyncio(loop_scope="module")


@pytest.fixture(scope="module")
def cloud_worker(container_engine: Engine, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalWorker]:
    with local_worker(container_engine, tmp_path_factory.mktemp("worker"), sleep_after="20s",
                      save_every="10s") as worker:
        yield worker


async def status_becomes(worker: WorkerClient, env_id: str, wanted: str, timeout: float) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while (status := await worker.status(env_id))["status"] != wanted:
        assert time.monotonic() < deadline, f"still {status['status']} after {timeout:.0f} s, not {wanted}"
        await asyncio.sleep(1)
    return status


async def test_a_sleeping_environment_wakes_on_a_prompt_with_its_files_git_and_conversation(
        cloud_palot: Palot, tmp_path: Path):
    palot = cloud_palot
    work = await cloud_agent_with_work(palot, tmp_path)
    agent, env_id, worker, before, users = work.agent, work.env_id, work.worker, work.before, work.users

    # Idle (Palot's event stream does not count): saved, then asleep.
    asleep = await status_becomes(worker, env_id, "sleeping", timeout=150)
    assert asleep["saved_at"] and asleep["save_error"] is None
    assert (await palot.agents.environment(agent.id)).state == "sleeping"
    # Its running time stops once the container is down (it says "sleeping" from the moment it is being stopped).
    deadline, last = time.monotonic() + 30, None
    while (seconds := (await worker.status(env_id))["running_seconds"]) != last:
        assert time.monotonic() < deadline, "running time still grows while the environment sleeps"
        last = seconds
        await asyncio.sleep(2)

    # A prompt wakes it; the save is back before OpenCode takes the prompt, and the model gets it all.
    await palot.agents.prompt(agent.id, "recall the conversation")
    woke = await palot.agents.wait(agent.id, timeout=180)
    assert woke.status == AgentStatus.COMPLETED, woke.error
    awake = await worker.status(env_id)
    assert awake["status"] == "running" and awake["restored"] == "restored"
    messages = await palot.agents.messages(agent.id)
    assert f"I remember the first request: write hello. This conversation has {users + 1} user messages" in \
        messages[-1].text
    after = await capture(palot, agent.id)
    assert after.files == before.files  # byte for byte
    assert after.status == before.status and after.log == before.log
    assert after.messages[:len(before.messages)] == before.messages
    await palot.agents.destroy(agent.id, force=True)
