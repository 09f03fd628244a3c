"""`palot` and the Palot service's life: a command starts it when none runs (with the options it ran with),
`palot service stop|restart|logs -f`, `palot serve` in the foreground. Each test has its own PALOT_HOME."""

from __future__ import annotations

import asyncio
import json
import os
import select
import signal
import subprocess
import time
from pathlib import Path

from conftest import CORE_SCRIPT
from service_support import start_service, stop_service, wait_ready
from test_cli import PALOT, Cli, process_running
from palot.endpoint import Endpoint
from palot.paths import PalotPaths


def started_then_stopped(home: Path) -> int:
    """Start the scripted service of ``home`` and stop it (and its OpenCode): service.json keeps its options."""
    proc = start_service(home)

    async def run() -> int:
        client = await wait_ready(home, proc)
        pid = (await client.status()).pid
        await client.close()
        await stop_service(home, proc)
        return pid

    return asyncio.run(run())


def not_running(cli: Cli) -> bool:
    """`palot service status --json` says the service is not running (and exits 1)."""
    out = cli.run("service", "status", "--json")
    return out.returncode == 1 and json.loads(out.stdout)["running"] is False


def test_a_command_starts_the_service_when_none_runs(tmp_path: Path, opencode_bin: Path):
    cli = Cli(tmp_path / "home")
    old_pid = started_then_stopped(cli.home)
    assert not process_running(old_pid)
    try:
        assert not_running(cli)  # status starts nothing
        assert cli.json("agents", "list", "--json") == []  # this one does
        status = cli.json("service", "status", "--json")
        assert status["running"] is True and status["pid"] != old_pid and process_running(status["pid"])
        assert status["opencode_connected"] is True
        saved = json.loads((cli.home / "service" / "service.json").read_text())
        assert (saved["pid"], saved["options"]["scripted"], saved["options"]["isolated"]) == (
            status["pid"], str(CORE_SCRIPT), True)  # the same service as before: scripted, isolated
    finally:
        assert cli.run("down", timeout=60).returncode == 0


def test_service_stop_restart_and_logs_follow(tmp_path: Path, opencode_bin: Path):
    cli = Cli(tmp_path / "home")
    proc = start_service(cli.home)
    try:
        first = asyncio.run(_pid_when_ready(cli.home, proc))
        follow = subprocess.Popen([str(PALOT), "service", "logs", "-f", "-n", "1000"], env=cli.env,
                                  stdout=subprocess.PIPE, text=True)
        try:
            _read_until(follow, f"(pid {first})", timeout=30)  # the log so far: it follows from here
            restarted = cli.json("service", "restart", "--json")
            assert restarted["running"] is True and restarted["pid"] != first
            assert not process_running(first)
            # -f printed the new lines as they were written: the old service stopping, the new one ready
            seen = _read_until(follow, f"(pid {restarted['pid']})", timeout=30)
            assert "stopping" in seen and f"ready on {Endpoint(PalotPaths(cli.home)).socket}" in seen
        finally:
            follow.send_signal(signal.SIGINT)
            # Read what it still writes while it exits: with the pipe full, its last flush would wait forever.
            follow.communicate(timeout=10)
            assert follow.returncode == 130  # Ctrl-C: the usual exit code, no traceback
        stopped = cli.run("service", "stop")
        assert stopped.returncode == 0, stopped.stderr
        assert f"stopped the Palot service (pid {restarted['pid']})" in stopped.stdout
        assert not process_running(restarted["pid"])
        assert process_running(restarted["opencode_pid"])  # `service stop` leaves OpenCode; `down` stops it
        assert "was not running" in cli.run("service", "stop").stdout
        assert not_running(cli)
    finally:
        cli.run("down", timeout=60)
        proc.wait(30)


def test_serve_runs_the_service_in_the_foreground_until_stopped(tmp_path: Path, opencode_bin: Path):
    cli = Cli(tmp_path / "home")
    serve = subprocess.Popen([str(PALOT), "serve", "--scripted", str(CORE_SCRIPT), "--isolated"], env=cli.env,
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        seen = _read_until(serve, "ready on", timeout=120, stream="stderr")
        assert str(Endpoint(PalotPaths(cli.home)).socket) in seen
        status = cli.json("service", "status", "--json")
        assert status["pid"] == serve.pid
        serve.send_signal(signal.SIGTERM)  # what systemd sends
        assert serve.wait(30) == 0
        assert not_running(cli)
    finally:
        if serve.poll() is None:
            serve.kill()
        cli.run("down", timeout=60)
    assert "usage: palot serve" in cli.run("serve", "--help").stdout


async def _pid_when_ready(home: Path, proc: subprocess.Popen[bytes]) -> int:
    client = await wait_ready(home, proc)
    try:
        return (await client.status()).pid
    finally:
        await client.close()


def _read_until(proc: subprocess.Popen[str], marker: str, timeout: float, stream: str = "stdout") -> str:
    """What ``proc`` printed until a line with ``marker`` (failing after ``timeout`` s)."""
    fd = getattr(proc, stream).fileno()  # read unbuffered: select() knows nothing of Python's buffers
    text = ""
    deadline = time.monotonic() + timeout
    while marker not in text:
        left = deadline - time.monotonic()
        assert left > 0, f"no '{marker}' within {timeout} s in:\n{text}"
        ready, _, _ = select.select([fd], [], [], left)
        if ready:
            chunk = os.read(fd, 65536)
            assert chunk, f"the process ended before '{marker}':\n{text}"
            text += chunk.decode(errors="replace")
    return text


def test_the_systemd_unit_runs_palot_serve():
    unit = (Path(__file__).parent.parent / "contrib" / "systemd" / "palot.service").read_text()
    lines = [ln.strip() for ln in unit.splitlines()]
    assert "ExecStart=palot serve" in lines and "Restart=on-failure" in lines
    assert "WantedBy=default.target" in lines
    assert os.path.basename(PALOT) == "palot"
