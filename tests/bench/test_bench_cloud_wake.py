"""Benchmark: a sleeping cloud environment woken by a prompt, with 500 messages and 10 MB of work.

One Worker under ``wrangler dev`` with a short ``SLEEP_AFTER``. Two cloud agents, one after the other: a large
one (its conversation grown to 500 messages with OpenCode's own ``import``, as the migration benchmark does,
and 10 MB of random, incompressible files it has not committed) and a small one (one exchange, one file:
the baseline). Each round the agent is saved, goes idle and sleeps; then a prompt wakes it. The figure is
the time from sending the prompt to OpenCode accepting it (``agents.prompt`` returns): the Worker starts a
fresh container, restores the newest save, and only then lets the prompt through. Also reported: the time
of one save of each (the Worker's save on demand, the same command it runs before sleeping). Every round
checks the work came back: the files byte for byte and the whole conversation.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import secrets
import statistics
import time
from pathlib import Path
from typing import Any

import docker
import pytest
from benchlib import _top, grow_export, make_repo, ratio
from localdev import LocalWorker
from palot import AgentStatus, Palot
from palot.cloud import config as cloud_config
from rehearsal import build_rehearsal_image

MESSAGES = 500
CHANGE_BYTES = 10 * 1024 * 1024
ROUNDS = 3
GOAL = "p50 ≤ 10 s"


async def _until_asleep(palot: Palot, env_id: str, timeout: float = 180) -> None:
    """Until the environment sleeps and its container is down (it says "sleeping" from the moment it is being
    stopped; its running time stops growing once it is down)."""
    worker, deadline, last = palot.backends["cloud"].worker(), time.monotonic() + timeout, None
    while True:
        status = await worker.status(env_id)
        if status["status"] == "sleeping" and status["running_seconds"] == last:
            return
        last = status["running_seconds"] if status["status"] == "sleeping" else None
        assert time.monotonic() < deadline, f"environment {env_id} not asleep after {timeout:.0f} s: {status}"
        await asyncio.sleep(2)


async def _cloud_agent(palot: Palot, repo: Path, *, big: bool) -> tuple[str, str, dict[str, str]]:
    """A cloud agent that wrote hello; the large one grown. Returns its id, its environment and its files'
    digests (what must come back)."""
    agent = await palot.agents.spawn(repo, "write hello", environment="cloud")
    done = await palot.agents.wait(agent.id, timeout=180)
    assert done.status == AgentStatus.COMPLETED, done.error
    env = palot.store.get_environment(palot.store.get_agent(agent.id).environment_id or "")
    assert env is not None and done.session_id
    backend, worker = palot.backends["cloud"], palot.backends["cloud"].worker()
    files: dict[str, bytes] = {}
    if big:
        export = json.loads(await backend.export_session(env, done.session_id))
        await backend.import_session(env, json.dumps(grow_export(export, MESSAGES)).encode())
        for i in range(40):
            files[f"assets/blob-{i:02d}.bin"] = os.urandom(CHANGE_BYTES // 40)
    else:
        files["notes.txt"] = b"a small change\n"
    for path, data in files.items():
        await worker.put_file(env.id, f"/workspace/{path}", data)
    return agent.id, env.id, {path: hashlib.sha256(data).hexdigest() for path, data in files.items()}


async def _came_back(palot: Palot, env_id: str, digests: dict[str, str]) -> None:
    worker = palot.backends["cloud"].worker()
    for path, digest in digests.items():
        assert hashlib.sha256(await worker.get_file(env_id, f"/workspace/{path}")).hexdigest() == digest, path


@pytest.mark.bench
async def test_bench_wake_to_first_accepted_prompt_after_sleep(container_engine: Any, tmp_path: Path,
                                                               opencode_bin: Path, bench_results: Any) -> None:
    image = build_rehearsal_image(docker.DockerClient(base_url=container_engine.host), _top.CORE_SCRIPT)
    worker = LocalWorker(token=secrets.token_urlsafe(32), image=image, docker_host=container_engine.host,
                         workdir=tmp_path / "worker", sleep_after="30s", save_every="30m")
    saves: dict[str, list[float]] = {"small": [], "large": []}
    wakes: dict[str, list[float]] = {"small": [], "large": []}
    with worker:
        async with _top.running_palot(tmp_path / "palot-home", opencode_bin) as palot:
            cloud_config.save(palot.paths, worker.url, worker.token)
            client = palot.backends["cloud"].worker()
            # One agent after the other: an environment sleeps SLEEP_AFTER after its last request, so the
            # other's set-up (minutes for the large one) must not run while it is measured.
            for label in ("small", "large"):
                agent_id, env_id, digests = await _cloud_agent(palot, make_repo(tmp_path / label),
                                                               big=label == "large")
                for _ in range(ROUNDS):
                    count = len(await palot.agents.messages(agent_id))
                    began = time.perf_counter()
                    await client.save(env_id)  # awake: the same save the Worker runs before it sleeps
                    saves[label].append(time.perf_counter() - began)
                    await _until_asleep(palot, env_id)
                    began = time.perf_counter()
                    await palot.agents.prompt(agent_id, "recall the conversation")
                    wakes[label].append(time.perf_counter() - began)
                    done = await palot.agents.wait(agent_id, timeout=180)
                    assert done.status == AgentStatus.COMPLETED, done.error
                    assert len(await palot.agents.messages(agent_id)) == count + 2
                    await _came_back(palot, env_id, digests)
                if label == "large":
                    messages = len(await palot.agents.messages(agent_id))
                await palot.agents.destroy(agent_id, force=True)
    large, small = statistics.median(wakes["large"]), statistics.median(wakes["small"])
    bench_results.add(
        f"Cloud wake after sleep to the first accepted prompt, {MESSAGES} messages + 10 MB (wrangler dev)",
        figure={"p50_seconds": round(large, 2), "save_p50_seconds": round(statistics.median(saves["large"]), 2)},
        baseline={"p50_seconds": round(small, 2), "save_p50_seconds": round(statistics.median(saves["small"]), 2)},
        ratio=ratio(large, small),
        goal=GOAL,
        met=large <= 10.0,
        wakes_s={k: [round(v, 2) for v in vs] for k, vs in wakes.items()},
        saves_s={k: [round(v, 2) for v in vs] for k, vs in saves.items()},
        messages_at_end=messages,
        notes="baseline = the same wake of a cloud agent with one exchange and one file, in the same Worker",
    )
