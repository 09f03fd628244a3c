"""A busy shared server is waited for, never killed by a client (issue: 19 of 30 concurrent spawns failed
because a process whose 2 s health check missed a busy server killed it and started another)."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

from conftest import CORE_SCRIPT, make_repo, running_palot
from palot import Palot, PalotPaths
from palot.errors import ServerUnavailable
from palot.opencode.client import OpenCodeClient
from palot.servers import ServerManager

PALOT = Path(sys.executable).parent / "palot"


async def test_a_client_waits_for_a_server_that_does_not_answer_and_never_replaces_it(
    tmp_path: Path, opencode_bin: Path, repo: Path
):
    async with running_palot(tmp_path / "home", opencode_bin) as first:
        server_pid = first.server.state.pid
        said: list[str] = []
        os.kill(server_pid, signal.SIGSTOP)  # alive, but misses every health check
        try:
            second = ServerManager(PalotPaths(tmp_path / "home"), attach_any=True, supervise=False,
                                   progress=said.append)
            attaching = asyncio.create_task(second.start())
            await asyncio.sleep(6)  # three missed 2 s health checks, and the first Palot's supervisor running
            assert not attaching.done()
        finally:
            os.kill(server_pid, signal.SIGCONT)
        state = await asyncio.wait_for(attaching, 30)
        await second.close()
        assert state.pid == server_pid and second.attached
        assert any(f"pid {server_pid}) is busy" in line for line in said), said
        assert first.server.restarts == 0 and first.server.state.pid == server_pid
        agent = await first.agents.spawn(repo, "write hello")  # and the server still works
        assert (await first.agents.wait(agent.id, timeout=60)).status.value == "completed"


async def test_a_client_gives_up_on_a_silent_server_with_a_clear_error_and_leaves_it_running(
    tmp_path: Path, opencode_bin: Path
):
    async with running_palot(tmp_path / "home", opencode_bin) as first:
        server_pid = first.server.state.pid
        os.kill(server_pid, signal.SIGSTOP)
        try:
            second = ServerManager(PalotPaths(tmp_path / "home"), attach_any=True, supervise=False,
                                   busy_timeout=3, progress=lambda _: None)
            try:
                await second.start()
                raise AssertionError("attaching to a silent server succeeded")
            except Exception as e:  # noqa: BLE001 - the error's class and text are what is checked
                assert type(e).__name__ == "ServerUnavailable"
                assert f"pid {server_pid}" in str(e) and "palot down" in str(e)
        finally:
            os.kill(server_pid, signal.SIGCONT)
        assert Path(f"/proc/{server_pid}").exists()
        assert (await first.server.client.health()).healthy


def test_concurrent_spawns_from_many_processes_all_complete_on_one_server(tmp_path: Path, opencode_bin: Path):
    home = tmp_path / "home"
    env = {**os.environ, "PALOT_HOME": str(home)}
    up = subprocess.run([str(PALOT), "up", "--scripted", str(CORE_SCRIPT), "--isolated", "--json"], env=env,
                        capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)
    assert up.returncode == 0, up.stderr
    pid = json.loads(up.stdout)["pid"]
    try:
        projects = [make_repo(tmp_path / f"project-{n}") for n in range(4)]
        procs = [
            subprocess.Popen([str(PALOT), "agents", "spawn", str(projects[n % 4]), f"write hello number {n}",
                              "--wait", "--timeout", "240", "--json"],
                             env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL,
                             text=True)
            for n in range(12)
        ]
        results = [p.communicate(timeout=300) for p in procs]
        for p, (out, err) in zip(procs, results):
            assert p.returncode == 0, f"exit {p.returncode}: {out}\n{err}"
            agent = json.loads(out)
            assert agent["status"] == "completed", agent["error"]
            assert (Path(agent["environment"]["directory"]) / "hello.txt").exists()
        running = ServerManager.read_running(PalotPaths(home))
        assert running is not None and running.pid == pid  # the one server, never replaced
    finally:
        subprocess.run([str(PALOT), "down"], env=env, capture_output=True, timeout=60, stdin=subprocess.DEVNULL)


async def test_a_brand_new_palot_home_finds_the_opencode_that_setup_installed(tmp_path: Path, opencode_bin: Path):
    """No PALOT_OPENCODE_BIN and no install per home: every home uses the one `make setup` installed."""
    assert "PALOT_OPENCODE_BIN" not in os.environ
    palot = Palot(PalotPaths(tmp_path / "brand-new-home"), isolated=True, scripted=str(CORE_SCRIPT))
    await palot.start()
    try:
        assert palot.server.state is not None and palot.server.state.version == "1.18.33"
    finally:
        await palot.close()
        await palot.stop_server()


async def test_a_read_from_a_stalled_server_is_asked_again_and_a_write_is_never_repeated(
    tmp_path: Path, opencode_bin: Path, repo: Path
):
    """A server that stalls (thirty sessions ending at once on two cores) answers reads late: they are asked
    again with a longer timeout; a write that timed out is reported, never sent twice."""
    async with running_palot(tmp_path / "home", opencode_bin) as palot:
        state = palot.server.state
        client = OpenCodeClient(state.url, state.password, timeout=1.0)
        try:
            os.kill(state.pid, signal.SIGSTOP)
            asyncio.get_running_loop().call_later(1.5, os.kill, state.pid, signal.SIGCONT)
            assert await client.list_sessions(str(repo)) == []  # answered after the stall, on the second ask

            os.kill(state.pid, signal.SIGSTOP)
            try:
                await client.create_session(str(repo), title="once")
                raise AssertionError("a write to a stopped server succeeded")
            except ServerUnavailable as e:
                assert "did not answer POST /session in time" in e.message and "overloaded" in (e.fix or "")
            finally:
                os.kill(state.pid, signal.SIGCONT)
            for _ in range(50):  # the server handles the one request it received once it runs again
                sessions = await client.list_sessions(str(repo))
                if sessions:
                    break
                await asyncio.sleep(0.1)
            await asyncio.sleep(1)
            assert [s.title for s in await client.list_sessions(str(repo))] == ["once"]
        finally:
            await client.aclose()
