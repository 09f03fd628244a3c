"""The cloud tier under test: Palot's Worker run by ``wrangler dev`` (workerd with its container support)
against the private Docker engine, its containers started from a rehearsal image with the scripted model."""

from __future__ import annotations

import os
import secrets
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from conftest import CORE_SCRIPT, Engine, make_repo, running_palot

from palot import Agent, AgentStatus, Palot
from palot.cloud import config as cloud_config
from palot.cloud.worker import WorkerClient
from localdev import LocalWorker
from migration_support import BINARY, AgentState, capture
from rehearsal import build_rehearsal_image

#: Connect to the default gateway (the host, from Docker's bridge) on the port given; print what happened.
PROBE = r"""
import socket, struct, sys
for line in open('/proc/net/route').read().splitlines()[1:]:
    fields = line.split()
    if fields[1] == '00000000':
        gateway = socket.inet_ntoa(struct.pack('<L', int(fields[2], 16)))
        break
else:
    sys.exit('no default route')
try:
    socket.create_connection((gateway, int(sys.argv[1])), 5).close()
    print('CONNECTED', gateway)
except OSError as e:
    print('REFUSED', gateway, type(e).__name__)
"""


def local_worker(engine: Engine, workdir: Path, **settings: Any) -> LocalWorker:
    """A Worker under ``wrangler dev`` with the rehearsal image (``settings``: LocalWorker's, e.g. sleep_after)."""
    import docker

    image = build_rehearsal_image(docker.DockerClient(base_url=engine.host), CORE_SCRIPT)
    return LocalWorker(token=secrets.token_urlsafe(32), image=image, docker_host=engine.host, workdir=workdir,
                       **settings)


@pytest.fixture(scope="module")
def cloud_worker(container_engine: Engine, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalWorker]:
    with local_worker(container_engine, tmp_path_factory.mktemp("worker")) as worker:
        yield worker


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def cloud_palot(cloud_worker: LocalWorker, tmp_path_factory: pytest.TempPathFactory,
                      opencode_bin: Path) -> AsyncIterator[Palot]:
    """A Palot connected (``palot cloud connect``'s way: token saved encrypted) to the local Worker."""
    home = tmp_path_factory.mktemp("cloud") / "palot-home"
    async with running_palot(home, opencode_bin) as palot:
        cloud_config.save(palot.paths, cloud_worker.url, cloud_worker.token)
        yield palot


def worker_env(worker: LocalWorker) -> dict[str, str]:
    return {**os.environ, "PALOT_CLOUD_URL": worker.url, "PALOT_CLOUD_TOKEN": worker.token}


async def cloud_agent_wrote_hello(palot: Palot, tmp_path: Path) -> tuple[Agent, str]:
    """A cloud agent on a new repository that ran "write hello" to completion; with its environment's id."""
    agent = await palot.agents.spawn(make_repo(tmp_path / "repo"), "write hello", environment="cloud")
    done = await palot.agents.wait(agent.id, timeout=120)
    assert done.status == AgentStatus.COMPLETED, done.error
    assert [f.path for f in (await palot.agents.diff(agent.id)).files] == ["hello.txt"]
    return agent, palot.store.get_agent(agent.id).environment_id


#: Committed, uncommitted, untracked (a name with spaces), binary and executable work, made in a
#: cloud environment through its daemon (the cloud twin of migration_support.make_work).
CLOUD_WORK = r"""set -e
printf 'committed on the agent branch\n' > committed.txt
git add committed.txt
git -c user.name=t -c user.email=t@t commit -q -m 'agent commit'
printf 'an uncommitted edit\n' >> README.md
mkdir -p 'untracked dir'
printf 'untracked\n' > 'untracked dir/notes with spaces.md'
printf '#!/bin/sh\necho run\n' > run.sh
chmod 755 run.sh
"""


async def make_cloud_work(worker: WorkerClient, env_id: str) -> None:
    await worker.run(env_id, ["sh", "-c", CLOUD_WORK], "making work", cwd="/workspace")
    await worker.put_file(env_id, "/workspace/picture.bin", BINARY)


@dataclass
class CloudWork:
    """A cloud agent that wrote hello, with the work of ``make_cloud_work`` on top, as captured then."""

    agent: Agent
    env_id: str
    worker: WorkerClient
    before: AgentState
    users: int  # user messages in its conversation


async def cloud_agent_with_work(palot: Palot, tmp_path: Path) -> CloudWork:
    agent, env_id = await cloud_agent_wrote_hello(palot, tmp_path)
    worker = palot.backends["cloud"].worker()
    await make_cloud_work(worker, env_id)
    before = await capture(palot, agent.id)
    return CloudWork(agent, env_id, worker, before, sum(1 for role, _ in before.messages if role == "user"))
