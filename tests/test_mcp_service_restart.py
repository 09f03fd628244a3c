"""palot-mcp outlives a restart of the Palot service: its client starts the service again, tools keep working,
and subscribed clients are told that everything may have changed (the service's ``resync`` event)."""

from __future__ import annotations

import asyncio
from pathlib import Path

from mcp import Client
from mcp.client.subscriptions import ResourcesListChanged
from mcp_support import data, mcp_server
from service_support import start_service, stop_service, wait_ready

from palot.client import PalotClient
from palot.paths import PalotPaths


async def test_after_the_service_restarts_tools_work_and_listeners_hear_a_list_change(
    paths: PalotPaths, opencode_bin: Path, repo: Path
):
    proc = start_service(paths.home)
    await (await wait_ready(paths.home, proc)).close()
    palot = PalotClient(paths.home)  # like palot-mcp's own client: it starts the service when it is gone
    try:
        async with Client(await mcp_server(palot)) as client:
            agent = data(await client.call_tool("spawn_agent", {"project": str(repo), "prompt": "write hello"}))
            data(await client.call_tool("wait_for_agent", {"agent": agent["id"], "timeout": 60}))
            first = data(await client.call_tool("service_status", {}))
            async with client.listen(resources_list_changed=True) as changes:
                await stop_service(paths.home, proc)  # the service (and OpenCode) stop, as on an upgrade
                async with asyncio.timeout(120):  # the feed's reconnect starts the service again
                    assert isinstance(await anext(aiter(changes)), ResourcesListChanged)
            listed = data(await client.call_tool("list_agents", {}))
            got = data(await client.call_tool("get_agent", {"agent": agent["id"]}))
            second = data(await client.call_tool("service_status", {}))
        assert second["pid"] != first["pid"] and second["opencode_connected"]
        assert agent["id"] in [a["id"] for a in listed["agents"]]
        assert got["status"] == "completed"
    finally:
        await palot.close()
        await stop_service(paths.home)
