"""Dev-server ports: each agent gets its own range (PALOT_PORT, PALOT_PORTS) in its setup script and in the
bash OpenCode runs for it, so two worktree agents' dev servers never collide; the range is shown by
``palot agents env`` and free again once the agent is archived. Real service, real OpenCode, the scripted
model running a real ``python3 -m http.server`` through OpenCode's bash tool."""

from __future__ import annotations

import contextlib
import os
import random
import signal
import subprocess
import urllib.request
from pathlib import Path

from conftest import SCRIPTS, make_repo
from palot import api
from palot.ports import PortRange, allocate
from service_support import PALOT, running_service, service_env

SCRIPT = SCRIPTS / "ports.json"
SETUP = 'echo "$PALOT_PORT $PALOT_PORTS" > setup-ports.txt'


def _get(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=10) as response:
        return response.read().decode()


def _stop_server(worktree: Path) -> None:
    pid_file = worktree / "server.pid"
    with contextlib.suppress(OSError, ValueError, ProcessLookupError):
        os.kill(int(pid_file.read_text().strip()), signal.SIGTERM)


def test_ranges_skip_taken_ones_and_ports_in_use() -> None:
    taken = [PortRange(43000, 10)]
    assert allocate(taken, base=43000, per_agent=10) == PortRange(43010, 10)
    assert PortRange(43010, 10).env() == {"PALOT_PORT": "43010", "PALOT_PORTS": "43010-43019"}
    import socket

    with socket.socket() as busy:  # another program holds a port of the next range: that range is skipped
        busy.bind(("127.0.0.1", 43015))
        busy.listen()
        assert allocate(taken, base=43000, per_agent=10) == PortRange(43020, 10)


async def test_two_worktree_agents_each_serve_on_their_own_port_and_archive_frees_it(
        tmp_path: Path, opencode_bin: Path) -> None:
    home, repo = tmp_path / "home", make_repo(tmp_path / "project")
    home.mkdir()
    base = random.randrange(44000, 60000, 100)  # tests run side by side on this machine
    (home / "settings.toml").write_text(f"[ports]\nbase = {base}\nper_agent = 5\n")
    worktrees: list[Path] = []
    async with running_service(home, SCRIPT) as palot:
        try:
            first = await palot.spawn(repo, "serve the site on your port", setup_script=SETUP)
            second = await palot.spawn(repo, "serve the site on your port", setup_script=SETUP)
            worktrees = [Path(a.environment.host_path or "") for a in (first, second)]
            for agent in (first, second):
                done = await palot.wait(agent.id, timeout=120)
                assert done.status == api.AgentStatus.COMPLETED, (done.status, done.error)

            envs = [await palot.environment(a.id) for a in (first, second)]
            ports = [e.dev_port for e in envs]
            assert all(p is not None and base <= p < base + 100 for p in ports), ports
            assert ports[0] != ports[1] and abs(ports[0] - ports[1]) >= 5  # ranges of 5 never overlap
            for env, worktree in zip(envs, worktrees, strict=True):
                assert env.dev_ports == f"{env.dev_port}-{env.dev_port + 4}"
                # The setup script had them, and so had the agent's bash (OpenCode's), whose server answers.
                assert (worktree / "setup-ports.txt").read_text().split() == [str(env.dev_port), env.dev_ports]
                assert _get(env.dev_port) == f"agent on {env.dev_port} of {env.dev_ports}\n"

            shown = subprocess.run([str(PALOT), "agents", "env", first.id], capture_output=True, text=True,
                                   env=service_env(home), timeout=60)
            assert shown.returncode == 0, shown.stderr
            assert f"dev-server ports: {envs[0].dev_ports} (PALOT_PORT={envs[0].dev_port}" in shown.stdout

            _stop_server(worktrees[0])
            await palot.archive(first.id)
            assert (await palot.environment(first.id)).dev_ports is None
            # Its range is free again: the next agent gets it, the live one keeps its own.
            third = await palot.spawn(repo, "hello", setup_script=SETUP)
            worktrees.append(Path(third.environment.host_path or ""))
            assert (await palot.environment(third.id)).dev_port == envs[0].dev_port
            assert (await palot.environment(second.id)).dev_port == envs[1].dev_port
        finally:
            for worktree in worktrees:
                _stop_server(worktree)
