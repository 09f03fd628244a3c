"""``palot-mcp`` as a subprocess on stdio, the way Claude Desktop, Cursor or VS Code start it."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio
from mcp import Client
from mcp_support import data, error_text, palot_mcp_command, module_service, server_env, stdio_server

from palot.client import PalotClient

pytestmark = pytest.mark.asyncio(loop_scope="module")


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def palot(tmp_path_factory: pytest.TempPathFactory, opencode_bin: Path) -> AsyncIterator[PalotClient]:
    async with module_service(tmp_path_factory) as p:
        yield p


async def test_a_handshake_era_stdio_client_spawns_waits_diffs_and_applies(palot: PalotClient, repo: Path):
    progress: list[str | None] = []

    async def on_progress(value: float, total: float | None, message: str | None) -> None:
        progress.append(message)

    async with Client(stdio_server(palot), mode="legacy") as client:
        assert client.server_info.name == "palot"
        agent = data(await client.call_tool("spawn_agent", {"project": str(repo), "prompt": "write hello"},
                                            progress_callback=on_progress))
        waited = data(await client.call_tool("wait_for_agent", {"agent": agent["id"], "timeout": 60}))
        diff = data(await client.call_tool("get_diff", {"agent": agent["id"], "path": "hello.txt"}))
        applied = data(await client.call_tool("apply_agent", {"agent": agent["id"]}))

    assert any(m and "creating the OpenCode session" in m for m in progress)
    assert waited["settled"] and waited["agent"]["status"] == "completed"
    assert [f["path"] for f in diff["files"]] == ["hello.txt"] and "+hello from the agent" in diff["patch"]
    assert applied["files"] == ["hello.txt"]
    assert (repo / "hello.txt").read_text() == "hello from the agent\n"
    # The agent was spawned through the palot-mcp process; the test's own client sees it in the service.
    assert [a.id for a in await palot.list(project=str(repo))] == [agent["id"]]


async def test_a_2026_stdio_client_lists_tools_and_agents(palot: PalotClient, repo: Path):
    async with Client(stdio_server(palot)) as client:  # negotiates the newest protocol (server/discover)
        assert client.protocol_version >= "2026"
        tools = {t.name for t in (await client.list_tools()).tools}
        listed = data(await client.call_tool("list_agents", {}))
        unknown = error_text(await client.call_tool("abort_agent", {"agent": "ag_missing"}))
    assert {"spawn_agent", "wait_for_agent", "apply_agent"} <= tools
    assert listed["total"] == len(await palot.list())
    assert "no agent 'ag_missing'" in unknown


async def test_a_server_that_cannot_reach_opencode_says_why_and_how_to_fix_it(tmp_path: Path):
    env = server_env(tmp_path / "palot-home", PALOT_OPENCODE_BIN=str(tmp_path / "no-opencode"))
    process = await asyncio.create_subprocess_exec(palot_mcp_command(), env=env, stdin=asyncio.subprocess.DEVNULL,
                                                   stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    stdout, stderr = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode == 1
    assert b"is not installed" in stderr and b"palot doctor --fix" in stderr
    assert b"Traceback" not in stderr and stdout == b""


async def test_a_setup_script_that_reads_stdin_gets_nothing_and_leaves_the_protocol_alone(
    palot: PalotClient, repo: Path
):
    """Subprocesses never inherit palot-mcp's stdin, which is the client's JSON-RPC stream: a setup script that
    keeps reading stdin while the client sends requests must get none of their bytes."""
    script = "for i in $(seq 30); do cat >> stdin-seen.txt 2>/dev/null; sleep 0.1; done; echo read >> stdin-seen.txt"
    async with Client(stdio_server(palot)) as client:
        spawning = asyncio.create_task(client.call_tool("spawn_agent", {
            "project": str(repo), "prompt": "write hello", "setup_script": script}))
        answered = 0
        while not spawning.done():  # requests arriving while the script reads
            await asyncio.wait_for(client.call_tool("list_agents", {}), 30)
            answered += 1
            await asyncio.sleep(0.1)
        agent = data(await spawning)
    worktree = Path(agent["environment"]["directory"])
    assert answered >= 5
    assert (worktree / "stdin-seen.txt").read_text() == "read\n"  # nothing of the protocol
