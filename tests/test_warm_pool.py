"""Warm containers (``[containers] warm_pool``) through the real service and the private engine: after the first
container spawn one container waits started; the next spawn and a move take it (its agent's dev-server ports
reach the agent's bash and setup script, though the container started before the agent was known), the pool
fills again, ``palot gc`` leaves the warm one alone, and stopping the service removes it."""

from __future__ import annotations

import asyncio
import json
import random
import subprocess
import time
from pathlib import Path

from conftest import SCRIPTS, Engine, make_repo
from palot import api
from palot.client import PalotClient
from service_support import running_service

SCRIPT = SCRIPTS / "ports.json"
SETUP = 'echo "$PALOT_PORT $PALOT_PORTS" > setup-ports.txt'


def _containers(engine: Engine, home: Path) -> dict[str, bool]:
    """This home's containers on the engine, running or not: name → started warm (before its agent was known)."""
    out = subprocess.run(["docker", "-H", engine.host, "ps", "-a", "--format", "{{json .}}",
                          "--filter", f"label=palot.home={home}"],
                         capture_output=True, text=True, check=True, timeout=60).stdout
    found = [json.loads(line) for line in out.splitlines() if line.strip()]
    return {c["Names"]: "palot.warm=1" in c.get("Labels", "") for c in found}


async def _until_warm(palot: PalotClient, count: int, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while (await palot.status()).warm_containers != count:
        assert time.monotonic() < deadline, f"the pool did not reach {count} warm container(s) in {timeout:.0f} s"
        await asyncio.sleep(0.3)


def _bash(engine: Engine, env_id: str, command: str) -> str:
    """A command through bash in the container, as the agent's own bash runs (BASH_ENV applies)."""
    return subprocess.run(["docker", "-H", engine.host, "exec", f"palot-{env_id}", "bash", "-c", command],
                          capture_output=True, text=True, check=True, timeout=60).stdout.strip()


async def test_spawns_and_moves_take_a_warm_container_that_gets_the_agents_ports_and_the_pool_refills(
        container_engine: Engine, tmp_path: Path, opencode_bin: Path) -> None:
    home, repo = tmp_path / "home", make_repo(tmp_path / "project")
    home.mkdir()
    base = random.randrange(44000, 60000, 100)  # tests run side by side on this machine
    (home / "settings.toml").write_text(f"[ports]\nbase = {base}\nper_agent = 5\n\n[containers]\nwarm_pool = 1\n")
    try:
        await _exercise(container_engine, home, repo)
    finally:  # the agents' containers outlive the service (as they should): removed here
        names = list(_containers(container_engine, home))
        if names:
            subprocess.run(["docker", "-H", container_engine.host, "rm", "-f", "-v", *names], capture_output=True,
                           timeout=120)


async def _exercise(container_engine: Engine, home: Path, repo: Path) -> None:
    async with running_service(home, SCRIPT) as palot:
        assert (await palot.status()).warm_containers == 0  # nothing is started before containers are used
        assert _containers(container_engine, home) == {}

        started = time.monotonic()
        cold = await palot.spawn(repo, "hello", environment="container")
        cold_s = time.monotonic() - started
        await _until_warm(palot, 1)
        containers = _containers(container_engine, home)
        [warm_name] = [name for name, warm in containers.items() if warm]
        assert containers == {f"palot-{cold.environment.id}": False, warm_name: True}

        # Nothing in the pool is an orphan.
        report = await palot.gc()
        assert not [o for o in report.orphans if warm_name.removeprefix("palot-") in o.name], report.orphans

        started = time.monotonic()
        agent = await palot.spawn(repo, "serve the site on your port", environment="container", setup_script=SETUP)
        warm_s = time.monotonic() - started
        print(f"container agent ready: cold {cold_s:.2f} s, from the pool {warm_s:.2f} s")
        assert f"palot-{agent.environment.id}" == warm_name
        done = await palot.wait(agent.id, timeout=120)
        assert done.status == api.AgentStatus.COMPLETED, (done.status, done.error)
        env = await palot.environment(agent.id)
        assert env.dev_port is not None and env.dev_ports == f"{env.dev_port}-{env.dev_port + 4}"
        workspace = Path(env.host_path or "")
        # The setup script and the agent's own bash (OpenCode's bash tool) both had the agent's ports.
        assert (workspace / "setup-ports.txt").read_text().split() == [str(env.dev_port), env.dev_ports]
        assert (workspace / "site" / "index.html").read_text() == f"agent on {env.dev_port} of {env.dev_ports}\n"
        assert _bash(container_engine, agent.environment.id, 'echo "$PALOT_PORTS"') == env.dev_ports
        # Its code is the project's, on its own branch.
        assert (workspace / "README.md").is_file()
        assert _bash(container_engine, agent.environment.id, "git -C /workspace branch --show-current") == \
            agent.environment.branch

        # The pool fills again; a move to a container takes the new warm one and keeps the agent's ports.
        await _until_warm(palot, 1)
        [second_warm] = set(_containers(container_engine, home)) - set(containers)
        mover = await palot.spawn(repo, "hello")
        assert (await palot.wait(mover.id, timeout=90)).status == api.AgentStatus.COMPLETED
        ports = (await palot.environment(mover.id)).dev_ports
        result = await palot.move(mover.id, "container")
        assert result.state == "completed"
        moved = await palot.get(mover.id)
        assert f"palot-{moved.environment.id}" == second_warm
        assert _bash(container_engine, moved.environment.id, 'echo "$PALOT_PORTS"') == ports
        await palot.prompt(mover.id, "hello again")
        assert (await palot.wait(mover.id, timeout=90)).status == api.AgentStatus.COMPLETED

        await _until_warm(palot, 1)
        agents = {f"palot-{a.environment.id}" for a in (cold, agent, moved)}
        assert len(_containers(container_engine, home)) == 4

    # Stopping the service removes the warm one; the agents' containers stay (their agents are alive).
    assert set(_containers(container_engine, home)) == agents
