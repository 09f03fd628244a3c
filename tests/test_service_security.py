"""Who may talk to the service: this uid only on the unix socket (checked by the server, not just by file
modes), a token on the optional loopback TCP listener, and one service per home."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from conftest import SCRIPTS
from palot import api
from palot.client import PalotClient
from palot.endpoint import Endpoint
from palot.paths import PalotPaths
from service_support import (
    running_service,
    service_env,
    start_service,
    stop_service,
    wait_ready,
)

SCRIPT = SCRIPTS / "service.json"
NOBODY = 65534

# Run as another uid: a raw HTTP request on the socket; prints what came back (or the error).
RAW = """
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.settimeout(10)
s.connect(sys.argv[1])
data = b""
try:  # the server may close the connection before the request is even sent
    s.sendall(b"POST /v1/status HTTP/1.1\\r\\nHost: palot\\r\\nContent-Length: 2\\r\\nConnection: close\\r\\n\\r\\n{}")
    while True:
        chunk = s.recv(65536)
        if not chunk:
            break
        data += chunk
except OSError as e:
    print("error:", type(e).__name__)
print("answer:", data[:12].decode(errors="replace"))
"""


@pytest.fixture
def reachable_home() -> Iterator[Path]:
    """A home another uid can traverse to (pytest's tmp dirs are 0700 to everyone but root)."""
    top = Path(tempfile.mkdtemp(prefix="palot-sec-", dir="/tmp"))  # not $TMPDIR: its parents may be 0700
    os.chmod(top, 0o711)
    try:
        yield top / "home"
    finally:
        shutil.rmtree(top, ignore_errors=True)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def _raw_status(socket_path: Path, uid: int | None) -> str:
    def become() -> None:
        assert uid is not None
        os.setgroups([])
        os.setgid(uid)
        os.setuid(uid)

    out = subprocess.run(["/usr/bin/python3", "-I", "-c", RAW, str(socket_path)], capture_output=True, text=True,
                         timeout=30, cwd="/", preexec_fn=become if uid is not None else None, check=False)
    assert out.returncode == 0, out.stderr
    return out.stdout


async def test_socket_is_private_and_another_uid_is_refused_by_the_server(
        reachable_home: Path, opencode_bin: Path) -> None:
    async with running_service(reachable_home, SCRIPT) as palot:
        sock = Endpoint(PalotPaths(reachable_home)).socket
        assert sock.is_socket()
        assert _mode(sock) == 0o600 and _mode(sock.parent) == 0o700
        assert sock.stat().st_uid == os.getuid() == 0

        # Open the file modes for this test only, so only the service's peer-uid check stands in the way.
        os.chmod(reachable_home, 0o711)
        os.chmod(sock.parent, 0o711)
        os.chmod(sock, 0o666)
        try:
            assert "answer: HTTP/1.1 200" in _raw_status(sock, None)  # the check's control: root is answered
            refused = _raw_status(sock, NOBODY)
            assert "HTTP/1.1" not in refused, refused
        finally:
            os.chmod(sock, 0o600)
            os.chmod(sock.parent, 0o700)
        assert _mode(sock) == 0o600 and _mode(sock.parent) == 0o700
        log = Endpoint(PalotPaths(reachable_home)).log_file.read_text()
        assert f"refused a connection from uid {NOBODY}" in log
        # The service is unharmed and still serves its own uid.
        assert (await palot.status()).pid == (await palot.connect()).pid


async def test_tcp_listener_is_loopback_only_and_needs_the_token(tmp_path: Path, opencode_bin: Path) -> None:
    home = tmp_path / "palot-home"
    async with running_service(home, SCRIPT, tcp="127.0.0.1:0") as palot:
        status = await palot.status()
        assert status.tcp is not None
        host, _, port = status.tcp.rpartition(":")
        assert host == "127.0.0.1" and int(port) > 0
        listening = subprocess.run(["ss", "-Hltnp", f"sport = :{port}"], capture_output=True, text=True,  # noqa: ASYNC221
                                   check=True).stdout
        assert f"127.0.0.1:{port}" in listening and f"pid={status.pid}," in listening, listening
        assert len(listening.strip().splitlines()) == 1

        token_file = Endpoint(PalotPaths(home)).token_file
        assert _mode(token_file) == 0o600
        token = token_file.read_text().strip()
        assert len(token) >= 32
        url = f"http://{status.tcp}"

        async with httpx.AsyncClient(base_url=url) as http:
            for headers in ({}, {"Authorization": "Bearer not-the-token"}, {"Authorization": f"Basic {token}"},
                            {"Authorization": f"Bearer {token[:-1]}"}):
                answer = await http.post("/v1/status", json={}, headers=headers)
                assert answer.status_code == 401, (headers, answer.text)
                error = answer.json()["error"]
                assert error["message"] == "missing or wrong token for the Palot service"
                assert str(token_file) in error["fix"] and "Bearer" in error["fix"]
                assert token not in answer.text
            events = await http.get("/v1/events", headers={"Authorization": "Bearer wrong"})
            assert events.status_code == 401

        for wrong in (None, "wrong"):
            outsider = PalotClient(url=url, token=wrong)
            try:
                with pytest.raises(api.PalotError, match="missing or wrong token") as raised:
                    await outsider.status()
                assert raised.value.fix and str(token_file) in raised.value.fix
            finally:
                await outsider.close()

        remote = PalotClient(url=url, token=token)
        try:
            seen = await remote.connect()
            assert seen.pid == status.pid and seen.tcp == status.tcp
            assert await remote.list() == []
        finally:
            await remote.close()


async def test_tcp_listener_refuses_a_non_loopback_address(tmp_path: Path, opencode_bin: Path) -> None:
    home = tmp_path / "palot-home"
    proc = start_service(home, SCRIPT, tcp="0.0.0.0:0")
    try:
        assert proc.wait(30) == 1
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    log = Endpoint(PalotPaths(home)).log_file.read_text()
    assert "loopback" in log and "0.0.0.0" in log
    assert not Endpoint(PalotPaths(home)).socket.exists()
    await stop_service(home)  # the OpenCode server it may have started


async def test_a_second_service_for_the_same_home_exits_0_without_taking_over(tmp_path: Path,
                                                                            opencode_bin: Path) -> None:
    home = tmp_path / "palot-home"
    proc = start_service(home, SCRIPT)
    palot = await wait_ready(home, proc)
    try:
        before = await palot.status()
        state = Endpoint(PalotPaths(home)).read_state()
        sock_inode = Endpoint(PalotPaths(home)).socket.stat().st_ino
        second = subprocess.run(  # noqa: ASYNC221 - the test waits for it on purpose
            [sys.executable, "-m", "palot.service", "--scripted", str(SCRIPT), "--isolated"],
            env=service_env(home), capture_output=True, text=True, timeout=60, check=False)
        assert second.returncode == 0, second.stderr
        assert "already runs" in second.stderr
        assert proc.poll() is None
        after = await palot.status()
        assert after.pid == before.pid == proc.pid and after.started_at == before.started_at
        assert after.opencode_pid == before.opencode_pid
        assert Endpoint(PalotPaths(home)).read_state() == state
        assert Endpoint(PalotPaths(home)).socket.stat().st_ino == sock_inode
    finally:
        await palot.close()
        await stop_service(home, proc)
