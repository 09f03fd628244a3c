"""``palot-mcp --transport http``: loopback, bearer token, and third-party clients (the MCP Inspector CLI)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import httpx2
import pytest
import pytest_asyncio
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from mcp_support import HttpServer, data, http_server, inspector, module_service

from palot.client import PalotClient

pytestmark = pytest.mark.asyncio(loop_scope="module")

INITIALIZE = {"jsonrpc": "2.0", "id": 1, "method": "initialize",
              "params": {"protocolVersion": "2025-06-18", "capabilities": {},
                         "clientInfo": {"name": "test", "version": "0"}}}
MCP_HEADERS = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def palot(tmp_path_factory: pytest.TempPathFactory, opencode_bin: Path) -> AsyncIterator[PalotClient]:
    async with module_service(tmp_path_factory) as p:
        yield p


@pytest.fixture(scope="module")
def server(palot: PalotClient) -> Iterator[HttpServer]:
    """palot-mcp over HTTP with a generated token, attached to the module's Palot server."""
    with http_server(palot) as running:
        yield running
    assert not any("Traceback" in line for line in running.stderr), "".join(running.stderr)


async def test_the_server_prints_where_it_listens_and_its_generated_token(server: HttpServer):
    assert server.url.startswith("http://127.0.0.1:") and server.url.endswith("/mcp")
    assert len(server.token) >= 32
    assert sum(server.token in line for line in server.stderr) == 1  # printed once, for the person starting it


async def test_requests_without_the_right_bearer_token_get_401(server: HttpServer):
    async with httpx.AsyncClient(timeout=30) as http:
        missing = await http.post(server.url, json=INITIALIZE, headers=MCP_HEADERS)
        wrong = await http.post(server.url, json=INITIALIZE,
                                headers={**MCP_HEADERS, "Authorization": "Bearer not-the-token"})
        not_bearer = await http.post(server.url, json=INITIALIZE,
                                     headers={**MCP_HEADERS, "Authorization": f"Basic {server.token}"})
        right = await http.post(server.url, json=INITIALIZE, headers={**MCP_HEADERS, **server.headers})
    for refused in (missing, wrong, not_bearer):
        assert refused.status_code == 401
        assert refused.headers["www-authenticate"].startswith("Bearer")
        assert "bearer token" in refused.json()["error_description"]
    assert right.status_code == 200 and "palot" in right.text


async def test_a_client_with_the_token_uses_the_tools(server: HttpServer, palot: PalotClient):
    http = httpx2.AsyncClient(headers=server.headers, timeout=httpx2.Timeout(60, read=300))
    async with http, Client(streamable_http_client(server.url, http_client=http)) as client:
        tools = {t.name for t in (await client.list_tools()).tools}
        listed = data(await client.call_tool("list_agents", {}))
    assert "spawn_agent" in tools
    assert listed["total"] == len(await palot.list())


async def test_the_inspector_cli_lists_tools_and_calls_list_spawn_get(server: HttpServer, repo: Path, tmp_path: Path):
    target = ["--server-url", server.url, "--transport", "http", "--header", f"Authorization: Bearer {server.token}"]

    listed = inspector(target, "--method", "tools/list", home=tmp_path)["result"]["tools"]
    spawned = inspector(target, "--method", "tools/call", "--tool-name", "spawn_agent",
                        "--tool-args-json", f'{{"project": "{repo}", "prompt": "write hello"}}', home=tmp_path)
    agent_id = spawned["result"]["structuredContent"]["id"]
    agents = inspector(target, "--method", "tools/call", "--tool-name", "list_agents", home=tmp_path)
    got = inspector(target, "--method", "tools/call", "--tool-name", "get_agent", "--tool-arg", f"agent={agent_id}",
                    home=tmp_path)
    missing = inspector(target, "--method", "tools/call", "--tool-name", "get_agent", "--tool-arg",
                        "agent=ag_missing", home=tmp_path, exit_code=5)

    by_name = {t["name"]: t for t in listed}
    assert {"spawn_agent", "get_agent", "list_agents", "wait_for_agent"} <= set(by_name)
    assert by_name["get_agent"]["annotations"]["readOnlyHint"] is True and by_name["get_agent"]["outputSchema"]
    assert spawned["result"]["structuredContent"]["environment"]["branch"] == "palot/write-hello"
    assert agent_id in [a["id"] for a in agents["result"]["structuredContent"]["agents"]]
    assert got["result"]["structuredContent"]["id"] == agent_id
    assert got["result"]["structuredContent"]["project_path"] == str(repo)
    assert missing["result"]["isError"] is True
    assert "no agent 'ag_missing'" in missing["result"]["content"][0]["text"]
