"""The one shared server: restart after a crash, attach from a second process, clean stop."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

from conftest import CORE_SCRIPT
from palot import AgentStatus, Palot, PalotPaths
from palot.client import PalotClient
from palot.servers import ServerManager, limits, pid_alive


async def _until(predicate, timeout: float = 60.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not predicate():
        assert asyncio.get_running_loop().time() < deadline, "condition not reached in time"
        await asyncio.sleep(0.1)


async def test_sigkilled_server_is_restarted_events_resume_and_no_agent_is_lost(palot: Palot, repo: Path):
    first = await palot.agents.spawn(repo, "write hello")
    first = await palot.agents.wait(first.id, timeout=60)
    assert first.status == AgentStatus.COMPLETED
    old = palot.server.state
    assert old is not None

    os.kill(old.pid, signal.SIGKILL)
    await _until(lambda: palot.server.restarts >= 1 and palot.hub.state.connected)
    new = palot.server.state
    assert new is not None and new.pid != old.pid and pid_alive(new.pid)
    assert new.url == old.url and new.password == old.password

    # Records survive, and events flow again: the same agent takes a new prompt.
    assert [a.id for a in palot.agents.list()] == [first.id]
    with palot.hub.subscribe(session_id=first.session_id, types=["session.status"], replay=False) as sub:
        await palot.agents.prompt(first.id, "write notes")
        event = await sub.get(timeout=30)
        assert event.payload.properties["status"]["type"] == "busy"
    again = await palot.agents.wait(first.id, timeout=60)
    assert again.status == AgentStatus.COMPLETED
    assert (Path(again.environment.directory) / "NOTES.md").exists()
    assert [a.id for a in palot.agents.list()] == [first.id]


async def test_second_palot_process_attaches_instead_of_starting_another_server(palot: Palot, repo: Path):
    agent = await palot.agents.spawn(repo, "write hello")
    await palot.agents.wait(agent.id, timeout=60)
    state = palot.server.state
    assert state is not None
    env = {**os.environ, "PALOT_HOME": str(palot.paths.home)}
    out = subprocess.run([sys.executable, "-m", "palot", "agents", "list", "--json"], env=env,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert [a["id"] for a in json.loads(out.stdout)] == [agent.id]
    # The command started the home's service, which attached to the running server: still the one server.
    assert ServerManager.read_running(palot.paths).pid == state.pid
    service = PalotClient(palot.paths.home, autostart=False)
    try:
        assert (await service.status()).opencode_pid == state.pid
        assert await service.stop_service()
    finally:
        await service.close()

    other = ServerManager(palot.paths, isolated=True, scripted=str(CORE_SCRIPT), supervise=False)
    await other.start()
    try:
        assert other.attached and other.state.pid == state.pid
    finally:
        await other.close()


async def test_attaching_with_other_settings_is_a_clear_error(palot: Palot):
    other = ServerManager(palot.paths, isolated=False, supervise=False)
    try:
        await other.start()
        raise AssertionError("expected an error")
    except Exception as e:  # noqa: BLE001 - asserting on the message
        assert "palot down" in str(e)
    finally:
        await other.close()


async def test_server_has_a_password_and_rejects_requests_without_it(palot: Palot):
    import httpx

    state = palot.server.state
    assert state is not None and len(state.password) >= 24
    async with httpx.AsyncClient() as http:
        assert (await http.get(state.url + "/global/health")).status_code == 401
        assert (await http.get(state.url + "/global/health", auth=("opencode", "wrong"))).status_code == 401
    mode = (palot.paths.server_dir / "server.json").stat().st_mode & 0o777
    assert mode == 0o600


async def test_stop_ends_the_server_and_the_scripted_model(paths: PalotPaths, opencode_bin: Path):
    manager = ServerManager(paths, isolated=True, scripted="demo", opencode_bin=opencode_bin, supervise=False)
    state = await manager.start()
    assert pid_alive(state.pid) and pid_alive(state.scripted_pid)
    await manager.stop()
    assert not pid_alive(state.pid) and not pid_alive(state.scripted_pid)
    assert ServerManager.read_running(paths) is None


async def test_an_agent_mid_turn_when_the_server_dies_is_reported_interrupted(palot: Palot, repo: Path):
    agent = await palot.agents.spawn(repo, "slow task")
    with palot.hub.subscribe(session_id=agent.session_id, types=["message.part.delta"], replay=False) as sub:
        await sub.get(timeout=30)
    old = palot.server.state
    assert old is not None
    os.kill(old.pid, signal.SIGKILL)
    await _until(lambda: palot.server.restarts >= 1 and palot.hub.state.connected)
    agent = await palot.agents.wait(agent.id, timeout=60)
    assert agent.status == AgentStatus.FAILED
    assert agent.error and "interrupted" in agent.error and "prompt" in agent.error
    # The user can carry on in the same conversation.
    await palot.agents.prompt(agent.id, "write notes")
    agent = await palot.agents.wait(agent.id, timeout=60)
    assert agent.status == AgentStatus.COMPLETED
    assert (Path(agent.environment.directory) / "NOTES.md").exists()


async def test_a_server_stuck_at_the_kernels_mapping_limit_is_restarted_with_the_fix_said(
        palot: Palot, repo: Path, caplog):
    """A server that stopped answering at vm.max_map_count never recovers (limits.py): the supervisor ends it
    and starts another on the same port and password, and the log says how to raise the limit. The real
    limit is 65,530 mappings; a server here has far fewer, so this server's limit is set at its own count."""
    agent = await palot.agents.spawn(repo, "write hello")
    assert (await palot.agents.wait(agent.id, timeout=60)).status == AgentStatus.COMPLETED
    old = palot.server.state
    assert old is not None
    count = limits.map_count(old.pid)
    assert count is not None and count > 100
    palot.server.map_limit = count

    os.killpg(old.pid, signal.SIGSTOP)  # silent, as the spinning server is
    try:
        await _until(lambda: palot.server.restarts >= 1 and palot.hub.state.connected, timeout=90)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(old.pid, signal.SIGCONT)
    new = palot.server.state
    assert new is not None and new.pid != old.pid and pid_alive(new.pid) and not pid_alive(old.pid)
    assert new.url == old.url and new.password == old.password
    assert any("vm.max_map_count" in r.getMessage() and "sysctl" in r.getMessage() for r in caplog.records)
    palot.server.map_limit = None
    await palot.agents.prompt(agent.id, "write notes")
    assert (await palot.agents.wait(agent.id, timeout=60)).status == AgentStatus.COMPLETED


def test_the_mapping_limit_check() -> None:
    assert limits.at_limit(65_520, 65_530) and limits.at_limit(65_531, 65_530)
    assert not limits.at_limit(60_000, 65_530) and not limits.at_limit(None, 65_530)
    assert not limits.at_limit(70_000, None)
    assert limits.map_count(os.getpid()) and limits.map_count(2**22 + 12345) is None
    ok, line = limits.describe(65_530)
    assert not ok and "65,530" in line
    assert limits.describe(limits.ADVISED)[0] and limits.describe(None)[0]
