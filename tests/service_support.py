"""Helpers of the tests that drive the real Palot service: a ``palot serve`` process per test or module.

Not a test module; tests import it by name (pytest puts ``tests/`` on ``sys.path``).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import subprocess
import sys
import threading
import time
from collections.abc import AsyncIterator
from pathlib import Path

from conftest import CORE_SCRIPT

from palot.client import PalotClient
from palot.endpoint import Endpoint
from palot.errors import ServiceUnavailable
from palot.paths import PalotPaths


PALOT = Path(sys.executable).parent / "palot"


class Watch:
    """`palot agents watch --json` in a subprocess (the CLI's live view), its events collected as printed."""

    def __init__(self, home: Path) -> None:
        self.events: list[dict] = []
        self.proc = subprocess.Popen([str(PALOT), "agents", "watch", "--json"], stdout=subprocess.PIPE,
                                     stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL, text=True,
                                     env=service_env(home))
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            if line.startswith("{"):
                self.events.append(json.loads(line))

    @property
    def ids(self) -> set[str]:
        return {e["agent_id"] for e in self.events if e.get("agent_id")}

    def files(self, since: int = 0) -> list[tuple[str, str]]:
        """(agent, host path) of each ``agent.file`` event printed from the ``since``-th event on."""
        return [(e["agent_id"], e["host_path"]) for e in self.events[since:] if e["type"] == "agent.file"]

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)


def service_env(home: Path, **extra: str) -> dict[str, str]:
    """The environment of a process using the Palot home ``home`` (its service, its OpenCode server)."""
    return {**os.environ, "PALOT_HOME": str(home), **extra}


def start_service(home: Path, script: Path | str | None = CORE_SCRIPT, *, tcp: str | None = None,
                  extra: list[str] | None = None, env: dict[str, str] | None = None,
                  crash_after: str | None = None) -> subprocess.Popen[bytes]:
    """``palot serve`` for ``home`` with the scripted model (isolated, offline), as a separate process;
    ``crash_after`` a move's step: killed right after that step did its work (``crash_service.py``)."""
    args = [sys.executable, "-m", "palot.service"]
    if crash_after is not None:
        args = [sys.executable, str(Path(__file__).parent / "crash_service.py"), crash_after]
    if script is not None:
        args += ["--scripted", str(script), "--isolated"]
    if tcp:
        args += ["--tcp", tcp]
    PalotPaths(home).ensure()
    log = open(Path(home) / "serve.out", "ab")  # noqa: SIM115 - the child keeps it
    return subprocess.Popen([*args, *(extra or [])], env=service_env(home, **(env or {})), stdin=subprocess.DEVNULL,
                            stdout=log,
                            stderr=subprocess.STDOUT, start_new_session=True)


async def wait_ready(home: Path, proc: subprocess.Popen[bytes] | None = None, timeout: float = 120) -> PalotClient:
    """A connected client of ``home``'s service once it answers (never starting one itself)."""
    deadline = time.monotonic() + timeout
    while True:
        client = PalotClient(home, autostart=False)
        try:
            await client.connect()
            return client
        except ServiceUnavailable:
            await client.close()
            if proc is not None and proc.poll() is not None:
                raise AssertionError(f"palot serve exited {proc.returncode}: {_tail(home)}") from None
            if time.monotonic() > deadline:
                raise AssertionError(f"palot serve did not answer in {timeout} s: {_tail(home)}") from None
            await asyncio.sleep(0.1)


def _tail(home: Path) -> str:
    text = ""
    for f in (Path(home) / "serve.out", Endpoint(PalotPaths(home)).log_file):
        with contextlib.suppress(OSError):
            text += f.read_text()[-3000:]
    return text


async def stop_service(home: Path, proc: subprocess.Popen[bytes] | None = None) -> None:
    """Stop the service and its OpenCode server (and the scripted model)."""
    client = PalotClient(home, autostart=False)
    try:
        await client.stop_service(stop_opencode=True)
    finally:
        await client.close()
    if proc is not None:
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@contextlib.asynccontextmanager
async def running_service(home: Path, script: Path | str | None = CORE_SCRIPT, **kwargs: object
                          ) -> AsyncIterator[PalotClient]:
    """A started service for ``home`` and a client of it; both stopped after."""
    proc = start_service(home, script, **kwargs)  # type: ignore[arg-type]
    client = await wait_ready(home, proc)
    try:
        yield client
    finally:
        await client.close()
        await stop_service(home, proc)


# --- what the OpenCode server sees ------------------------------------------------------------------------

QUIET_MS = 8000  # httpx drops a pooled connection idle for 5 s; a stream stays, silent on our side


def opencode_connections(pid: int, port: int) -> dict[int, int]:
    """The established connections of ``pid`` to ``port`` on this machine: local port → ms since it last sent."""
    out = subprocess.run(["ss", "-tinpH", "state", "established", f"( dport = :{port} )"], capture_output=True,
                         text=True, check=True).stdout
    found: dict[int, int] = {}
    local: int | None = None
    for line in out.splitlines():
        if not line.startswith((" ", "\t")):  # the socket line; its details follow on the next one
            local = int(line.split()[2].rpartition(":")[2]) if f"pid={pid}," in line else None
        elif local is not None:
            sent = re.search(r"\blastsnd:(\d+)", line)
            found[local] = int(sent.group(1)) if sent else 0
            local = None
    return found


def opencode_event_streams(pid: int, port: int) -> set[int]:
    """The event streams ``pid`` holds open to ``port``: connections quiet on our side for longer than any
    pooled request connection may idle."""
    return {local for local, quiet in opencode_connections(pid, port).items() if quiet >= QUIET_MS}
