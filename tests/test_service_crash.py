"""Crashes: the service killed with ``kill -9`` mid-turn comes back on the next client call with nothing lost;
OpenCode killed with no client attached is restarted by the service alone, and the interrupted agent says so."""

from __future__ import annotations

import asyncio
import fcntl
import os
import signal
import time
from collections.abc import Callable
from pathlib import Path

from conftest import SCRIPTS, git, make_repo
from palot import api
from palot.client import PalotClient
from palot.endpoint import Endpoint
from palot.paths import PalotPaths
from service_support import running_service, start_service, stop_service, wait_ready

SCRIPT = SCRIPTS / "service.json"


async def _until(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"{what} did not happen within {timeout} s"
        await asyncio.sleep(0.1)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return Path(f"/proc/{pid}/status").read_text().split("State:")[1].split()[0] != "Z"


def _files(agent: api.Agent) -> Path:
    return Path(agent.environment.host_path or agent.environment.directory)


async def _user_texts(palot: PalotClient, agent_id: str) -> list[str]:
    return [m.text for m in await palot.messages(agent_id) if m.role == "user"]


async def test_service_killed_mid_turn_restarts_on_the_next_call_and_the_turn_completes(
        tmp_path: Path, opencode_bin: Path) -> None:
    home = tmp_path / "palot-home"
    repo = make_repo(tmp_path / "project")
    proc = start_service(home, SCRIPT)
    first = await wait_ready(home, proc)
    palot = PalotClient(home)  # the autostarting client every front end uses
    try:
        await palot.connect()
        agent = await palot.spawn(repo, "slow write")
        await _until(lambda: (_files(agent) / "slow.txt").exists(), 60, "the agent's first tool call")
        before = await palot.status()
        assert before.pid == proc.pid and before.opencode_pid is not None
        assert (await palot.get(agent.id)).status == api.AgentStatus.RUNNING
        assert Endpoint(PalotPaths(home)).read_state()["options"]["scripted"] == str(SCRIPT)

        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        assert not _alive(proc.pid)

        # The next call (on the same client object) starts the service again, as it ran before.
        listed = await palot.list(include_external=False)
        after = await palot.status()
        assert after.pid != before.pid and _alive(after.pid)
        assert after.opencode_pid == before.opencode_pid  # OpenCode was not touched: the turn went on
        assert [a.id for a in listed] == [agent.id]
        assert listed[0].status == api.AgentStatus.RUNNING, listed[0]
        assert Endpoint(PalotPaths(home)).read_state()["pid"] == after.pid

        final = await palot.wait(agent.id, timeout=120)
        assert final.status == api.AgentStatus.COMPLETED, final.error
        assert final.branch == agent.branch and final.session_id == agent.session_id
        assert (_files(final) / "slow.txt").read_text() == "written before the slow part\n"
        assert final.branch and final.branch in git(repo, "branch", "--list", final.branch)
        messages = await palot.messages(agent.id)
        assert [m.text for m in messages if m.role == "user"] == ["slow write"]
        assert "Now thinking slowly" in messages[-1].text
        assert (await palot.status()).opencode_restarts == 0
    finally:
        await first.close()
        await palot.close()
        await stop_service(home)


async def test_opencode_killed_with_no_client_attached_is_restarted_by_the_service(
        tmp_path: Path, opencode_bin: Path) -> None:
    home = tmp_path / "palot-home"
    repo = make_repo(tmp_path / "project")
    async with running_service(home, SCRIPT) as palot:
        agent = await palot.spawn(repo, "slow write")
        await _until(lambda: (_files(agent) / "slow.txt").exists(), 60, "the agent's first tool call")
        before = await palot.status()
        assert before.clients == 0 and before.opencode_restarts == 0
        assert before.opencode_pid is not None and _alive(before.opencode_pid)

        os.kill(before.opencode_pid, signal.SIGKILL)
        killed = time.monotonic()
        # Nobody calls the service for a while: it must notice and restart OpenCode by itself.
        await asyncio.sleep(4)
        after = await palot.status()
        # (A restart counts once the new server answers: OpenCode's start is seconds, more on a loaded machine.)
        while after.opencode_restarts < 1 and time.monotonic() - killed < 60:
            await asyncio.sleep(0.2)
            after = await palot.status()
        assert after.opencode_restarts >= 1, after
        assert after.opencode_pid is not None and after.opencode_pid != before.opencode_pid
        assert _alive(after.opencode_pid) and not _alive(before.opencode_pid)
        # Its event stream follows. (palot.opencode.events waits up to its 25 s heartbeat timeout for the
        # answer to a reconnect that landed while OpenCode was still starting; hence the margin.)
        while not after.opencode_connected and time.monotonic() - killed < 90:
            await asyncio.sleep(0.2)
            after = await palot.status()
        assert after.opencode_connected, after
        assert after.opencode_restarts == 1
        assert after.pid == before.pid

        interrupted = await palot.wait(agent.id, timeout=60)
        assert interrupted.status == api.AgentStatus.FAILED, [
            (m.role, m.text[-80:], m.tools, m.error) for m in await palot.messages(agent.id)]
        assert interrupted.error and "interrupted" in interrupted.error and "prompt" in interrupted.error

        await palot.prompt(agent.id, "write done")
        final = await palot.wait(agent.id, timeout=60)
        assert final.status == api.AgentStatus.COMPLETED, final.error
        assert final.error is None and final.session_id == agent.session_id and final.branch == agent.branch
        assert (_files(final) / "slow.txt").exists() and (_files(final) / "done.txt").read_text() == "done\n"
        assert await _user_texts(palot, agent.id) == ["slow write", "write done"]


async def test_a_client_starting_the_service_while_the_old_one_still_stops_waits_for_it_and_starts_it(
        tmp_path: Path, opencode_bin: Path) -> None:
    home = tmp_path / "palot-home"
    proc = start_service(home, SCRIPT)
    first = await wait_ready(home, proc)
    try:
        before = await first.status()
    finally:
        await first.close()
    endpoint = Endpoint(PalotPaths(home))
    # The old service, still closing after its socket went away, holds the home's lock: here the test holds it.
    with open(endpoint.lock_file, "a") as lock:  # noqa: ASYNC230 - a lock file, opened once
        os.kill(proc.pid, signal.SIGTERM)
        proc.wait(60)
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        assert not endpoint.socket.exists()
        palot = PalotClient(home)
        try:
            connecting = asyncio.create_task(palot.connect())
            await asyncio.sleep(3)  # the client's first service found the lock taken and went away
            assert not connecting.done()
            fcntl.flock(lock, fcntl.LOCK_UN)
            after = await asyncio.wait_for(connecting, 60)
            assert after.pid != before.pid and _alive(after.pid)
            assert after.opencode_pid == before.opencode_pid  # started as recorded: same home, same OpenCode
            assert await palot.list(include_external=False) == []
        finally:
            await palot.close()
            await stop_service(home)


def _servers_of(home: Path) -> list[int]:
    """The `opencode serve` processes running for ``home`` (found by the PALOT_HOME they were started with)."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            cmdline = Path(f"/proc/{entry}/cmdline").read_bytes().split(b"\0")
            env = Path(f"/proc/{entry}/environ").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"serve" in cmdline and any(c.endswith(b"opencode") for c in cmdline[:1]) \
                and f"PALOT_HOME={home}".encode() in env and _alive(int(entry)):
            found.append(int(entry))
    return found


async def test_a_service_stopped_while_it_restarts_opencode_leaves_no_server_behind(
        tmp_path: Path, opencode_bin: Path) -> None:
    home = tmp_path / "palot-home"
    proc = start_service(home, SCRIPT)
    palot = await wait_ready(home, proc)
    try:
        status = await palot.status()
        assert status.opencode_pid is not None and _servers_of(home) == [status.opencode_pid]
        os.kill(status.opencode_pid, signal.SIGKILL)
        # The service starts a new server; stop the service while that one is still starting.
        await _until(lambda: any(pid != status.opencode_pid for pid in _servers_of(home)), 60,
                     "the restart of the OpenCode server")
        assert await palot.stop_service(stop_opencode=True)
        proc.wait(30)
        await _until(lambda: not _servers_of(home), 10, "the end of every OpenCode server of the home")
    finally:
        await palot.close()
        for pid in _servers_of(home):  # never leave one running, whatever failed
            os.kill(pid, signal.SIGKILL)
        if proc.poll() is None:
            await stop_service(home, proc)
