"""Shared helpers of the MCP tests: a Palot service per test module, palot-mcp subprocesses, the Inspector CLI.

Not a test module; the ``test_mcp_*`` modules import it by name (pytest puts
``tests/`` on ``sys.path``).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from mcp import StdioServerParameters
from mcp_types import CallToolResult
from service_support import running_service

from palot.client import PalotClient
from palot_mcp import PalotMCPServer, build_server

REPO_ROOT = Path(__file__).resolve().parent.parent
INSPECTOR_DIR = REPO_ROOT / ".cache" / "mcp-inspector"
PALOT_MCP = Path(sys.executable).parent / "palot-mcp"


def data(result: CallToolResult) -> dict[str, Any]:
    """The structured result of a successful tool call (fails the test with the tool's error otherwise)."""
    assert not result.is_error, result.content
    assert result.structured_content is not None
    return result.structured_content


def error_text(result: CallToolResult) -> str:
    """The message of a tool error (fails the test if the call succeeded)."""
    assert result.is_error, result.structured_content
    return " ".join(getattr(block, "text", "") for block in result.content)


async def mcp_server(client: PalotClient) -> PalotMCPServer:
    """The MCP server over ``client``, built in a thread: registering its tools is CPU work (their JSON
    schemas, 0.2 s or more), which would hold the test's event loop (palot-mcp builds it before its loop runs)."""
    return await asyncio.to_thread(build_server, client)


def server_env(home: Path, **extra: str) -> dict[str, str]:
    """Environment for a palot-mcp subprocess using the Palot data dir ``home`` (and its shared server)."""
    return {**os.environ, "PALOT_HOME": str(home), **extra}


def palot_mcp_command() -> str:
    if not PALOT_MCP.exists():
        pytest.fail(f"{PALOT_MCP} is missing: install the project (`make setup`) so the palot-mcp script exists")
    return str(PALOT_MCP)


@contextlib.asynccontextmanager
async def module_service(factory: pytest.TempPathFactory) -> AsyncIterator[PalotClient]:
    """A real Palot service (scripted model) for one test module's fresh home, and a client of it. palot-mcp
    processes started with ``server_env(palot.paths.home)`` find it through ``PALOT_HOME``."""
    async with running_service(factory.mktemp("palot-home")) as client:
        yield client


def stdio_server(palot: PalotClient) -> StdioServerParameters:
    """``palot-mcp`` on stdio, using the service ``palot`` is a client of."""
    return StdioServerParameters(command=palot_mcp_command(), args=[], env=server_env(palot.paths.home))


# --- palot-mcp over HTTP ---------------------------------------------------------------


@dataclass
class HttpServer:
    url: str
    token: str
    process: subprocess.Popen[str]
    stderr: list[str] = field(default_factory=list)

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


def _pump_lines(stream: Any, lines: list[str], ready: queue.Queue[str]) -> None:
    for line in stream:
        lines.append(line)
        ready.put(line)


def stop_process(process: subprocess.Popen[Any], timeout: float = 10.0) -> None:
    """Stop one process we started, by its PID: SIGTERM, then SIGKILL if it lingers."""
    if process.poll() is None:
        os.kill(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            os.kill(process.pid, signal.SIGKILL)
            process.wait(timeout)


@contextlib.contextmanager
def http_server(palot: PalotClient, token: str | None = None, timeout: float = 60.0) -> Iterator[HttpServer]:
    """``palot-mcp --transport http --port 0``, ready to serve; ``token=None`` lets it generate (and print) one."""
    env = server_env(palot.paths.home)
    env.pop("PALOT_MCP_TOKEN", None)
    if token is not None:
        env["PALOT_MCP_TOKEN"] = token
    process = subprocess.Popen([palot_mcp_command(), "--transport", "http", "--port", "0"], env=env,
                               stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    server = HttpServer(url="", token=token or "", process=process)
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=_pump_lines, args=(process.stderr, server.stderr, lines), daemon=True).start()
    try:
        deadline = time.monotonic() + timeout
        while not (server.url and server.token):
            try:
                line = lines.get(timeout=max(0.1, deadline - time.monotonic()))
            except queue.Empty:
                pytest.fail(f"palot-mcp did not start in {timeout}s: {''.join(server.stderr)}")
            if match := re.search(r" at (http://127\.0\.0\.1:\d+/mcp)$", line.strip()):
                server.url = match.group(1)
            elif match := re.search(r"generated for this run .*: (\S+)$", line.strip()):
                server.token = match.group(1)
        yield server
    finally:
        stop_process(process)


# --- the MCP Inspector CLI (a third-party client) ------------------------------------------


def inspector_command() -> list[str]:
    """Node 22 and the Inspector's CLI, as `make test-deps` installs them; the test fails when they are missing."""
    node = INSPECTOR_DIR / "node_modules" / ".bin" / "node"
    launcher = INSPECTOR_DIR / "node_modules" / "@modelcontextprotocol" / "inspector" / "clients" / "launcher" / \
        "build" / "index.js"
    missing = [str(p) for p in (node, launcher) if not p.exists()]
    if missing:
        pytest.fail(f"the MCP Inspector CLI is not installed ({', '.join(missing)} missing): run `make test-deps`")
    return [str(node), str(launcher), "--cli"]


def inspector(target: list[str], *args: str, home: Path, exit_code: int = 0, timeout: float = 90.0) -> Any:
    """Run one Inspector CLI command and return its JSON result (the CLI exits 5 on a tool error)."""
    env = {**os.environ, "HOME": str(home), "MCP_CATALOG_PATH": str(home / "catalog.json"),
           "MCP_CLIENT_CONFIG_PATH": str(home / "client.json"), "NO_COLOR": "1"}
    done = subprocess.run([*inspector_command(), *target, *args, "--format", "json", "--quiet"],
                          env=env, capture_output=True, text=True, timeout=timeout)
    assert done.returncode == exit_code, f"inspector {args} exited {done.returncode}: {done.stderr}\n{done.stdout}"
    return json.loads(done.stdout)
