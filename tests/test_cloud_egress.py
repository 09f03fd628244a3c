"""``ENABLE_INTERNET = "false"`` enforced under ``wrangler dev`` (issue 16, point 5): Palot's local sidecar cuts
the environment's namespace off everything but loopback, as Cloudflare's does. A command in the environment
cannot reach a listener on the host (which a plain container on the same engine, and an environment of a Worker
with the internet on — ``tests/test_cloud.py`` — reach), while the agent's
model — the scripted one, on the environment's own loopback — still answers, so a cloud agent works.
"""

from __future__ import annotations

import secrets
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from cloud_support import PROBE, cloud_agent_wrote_hello, cloud_palot  # noqa: F401  (fixture, on the Worker below)
from conftest import CORE_SCRIPT, Engine

from palot import Palot
from palot.images import AGENT_IMAGE
from localdev import LocalWorker
from rehearsal import build_rehearsal_image

pytestmark = pytest.mark.asyncio(loop_scope="module")


@pytest.fixture(scope="module")
def cloud_worker(container_engine: Engine, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalWorker]:
    """The Worker with the internet off (named like cloud_support's, so its ``cloud_palot`` uses it)."""
    import docker

    image = build_rehearsal_image(docker.DockerClient(base_url=container_engine.host), CORE_SCRIPT)
    with LocalWorker(token=secrets.token_urlsafe(32), image=image, docker_host=container_engine.host,
                     enable_internet=False, workdir=tmp_path_factory.mktemp("offline-worker")) as worker:
        yield worker


@pytest.fixture
def host_listener() -> Iterator[socket.socket]:
    listener = socket.socket()
    listener.bind(("0.0.0.0", 0))  # every address of the host, Docker's bridge gateway included
    listener.listen()
    listener.setblocking(False)
    try:
        yield listener
    finally:
        listener.close()


async def test_with_the_internet_off_a_command_cannot_reach_the_host_but_the_agent_still_works(
        cloud_palot: Palot, cloud_worker: LocalWorker, container_engine: Engine, host_listener: socket.socket,
        tmp_path: Path):
    palot = cloud_palot
    port = host_listener.getsockname()[1]
    assert (await palot.backends["cloud"].worker().health())["enable_internet"] is False

    # The agent works: OpenCode reaches its model on the environment's loopback.
    agent, env_id = await cloud_agent_wrote_hello(palot, tmp_path)

    # A command in the environment cannot reach the host.
    out = await palot.backends["cloud"].worker().run(env_id, ["python3", "-c", PROBE, str(port)], "probing")
    assert out.startswith("REFUSED"), out
    with pytest.raises(BlockingIOError):
        host_listener.accept()  # nothing ever connected

    # The listener is reachable from a container of the same engine that is not cut off: the probe is fair.
    control = subprocess.run(
        ["docker", "-H", container_engine.host, "run", "--rm", "--entrypoint", "python3", AGENT_IMAGE, "-c", PROBE,
         str(port)], capture_output=True, text=True, timeout=120)
    assert control.stdout.startswith("CONNECTED"), control.stdout + control.stderr
    host_listener.accept()[0].close()

    await palot.agents.destroy(agent.id, force=True)
