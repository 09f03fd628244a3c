"""A client and a service of different Palot versions: an idle service is restarted as this version; a busy
one is left alone and the client says exactly what to do."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from conftest import SCRIPTS, make_repo
from service_support import stop_service

from palot import __version__
from palot.client import PalotClient
from palot.endpoint import Endpoint
from palot.errors import ServiceVersionMismatch
from palot.paths import PalotPaths

SCRIPT = SCRIPTS / "service.json"
OLD = "0.1.9"


def start_old_service(home: Path) -> subprocess.Popen[bytes]:
    """The real service, reporting itself as Palot 0.1.9 (as an older install would)."""
    code = ("import sys, palot; palot.__version__ = %r\n"
            "from palot.service.main import main\n"
            "sys.exit(main(['--scripted', %r, '--isolated']))") % (OLD, str(SCRIPT))
    PalotPaths(home).ensure()
    return subprocess.Popen([sys.executable, "-c", code], env={**os.environ, "PALOT_HOME": str(home)},
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)


async def raw_status(home: Path) -> dict:
    transport = httpx.AsyncHTTPTransport(uds=str(Endpoint(PalotPaths(home)).socket))
    async with httpx.AsyncClient(transport=transport, base_url="http://palot") as http:
        return (await http.post("/v1/status", json={})).json()


async def wait_old(home: Path) -> dict:
    for _ in range(600):
        try:
            return await raw_status(home)
        except (httpx.ConnectError, FileNotFoundError):
            await asyncio.sleep(0.1)
    raise AssertionError("the old service did not start")


async def test_an_idle_service_of_another_version_is_restarted_as_this_one(tmp_path: Path, opencode_bin: Path):
    home = tmp_path / "home"
    old = start_old_service(home)
    try:
        before = await wait_old(home)
        assert before["palot_version"] == OLD
        lines: list[str] = []
        client = PalotClient(home, progress=lines.append)
        try:
            status = await client.connect()
            assert status.palot_version == __version__ and status.pid != before["pid"]
            assert any(f"restarting the Palot service ({OLD} → {__version__})" in line for line in lines), lines
            assert old.wait(30) == 0  # the old one stopped cleanly
            # Restarted the way it ran: with the scripted model, so the same agents and models are there.
            assert (Endpoint(PalotPaths(home)).read_state() or {})["options"]["scripted"] == str(SCRIPT)
            assert status.opencode_pid == before["opencode_pid"]  # OpenCode was not touched
        finally:
            await client.close()
    finally:
        await stop_service(home)
        if old.poll() is None:
            old.kill()


async def test_a_busy_service_of_another_version_is_left_alone_with_what_to_do(tmp_path: Path, opencode_bin: Path):
    home = tmp_path / "home"
    repo = make_repo(tmp_path / "project")
    old = start_old_service(home)
    try:
        before = await wait_old(home)
        transport = httpx.AsyncHTTPTransport(uds=str(Endpoint(PalotPaths(home)).socket))
        async with httpx.AsyncClient(transport=transport, base_url="http://palot", timeout=60) as http:
            spawned = (await http.post("/v1/spawn", json={"project": str(repo), "prompt": "slow write"})).json()
        assert spawned["status"] in ("running", "provisioning"), spawned
        client = PalotClient(home)
        try:
            with pytest.raises(ServiceVersionMismatch) as caught:
                await client.connect()
        finally:
            await client.close()
        assert f"runs Palot {OLD}, this is {__version__}, and 1 agent(s) are working" in caught.value.message
        assert "palot service restart" in (caught.value.fix or "")
        after = await raw_status(home)
        assert after["pid"] == before["pid"] and after["palot_version"] == OLD  # still the one that works
    finally:
        # Stopped through its own socket (a client of this version would refuse to talk to it).
        transport = httpx.AsyncHTTPTransport(uds=str(Endpoint(PalotPaths(home)).socket))
        async with httpx.AsyncClient(transport=transport, base_url="http://palot") as http:
            await http.post("/v1/admin/shutdown", json={"stop_opencode": True})
        try:
            old.wait(30)
        except subprocess.TimeoutExpired:
            old.kill()
