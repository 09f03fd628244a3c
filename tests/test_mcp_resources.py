"""MCP resources and change notifications: a subscribed client hears when its agent changes.

Both protocol eras are covered: 2026-07-28 clients listen with
``subscriptions/listen``; handshake-era clients (Claude Desktop, Cursor, the
Inspector) use ``resources/subscribe`` and receive notifications on their connection.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from mcp import Client
from mcp.client.subscriptions import ResourcesListChanged, ResourceUpdated
from mcp.shared.exceptions import MCPError
from mcp_support import data, mcp_server, module_service

from palot.client import PalotClient

pytestmark = [
    pytest.mark.asyncio(loop_scope="module"),
    pytest.mark.filterwarnings("ignore:resources/(un)?subscribe is removed"),  # still how 2025 clients subscribe
]


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def palot(tmp_path_factory: pytest.TempPathFactory, opencode_bin: Path) -> AsyncIterator[PalotClient]:
    async with module_service(tmp_path_factory) as p:
        yield p


async def agent_waiting_for_permission(client: Client, repo: Path) -> str:
    """An agent that cannot finish until someone answers its permission request."""
    agent_id = data(await client.call_tool("spawn_agent", {"project": str(repo), "prompt": "edit readme",
                                                           "permission_mode": "ask"}))["id"]
    waited = data(await client.call_tool("wait_for_agent", {"agent": agent_id, "timeout": 60}))
    assert waited["agent"]["status"] == "waiting"
    return agent_id


async def read_json(client: Client, uri: str) -> Any:
    contents = (await client.read_resource(uri)).contents
    assert contents[0].mime_type == "application/json"
    return json.loads(contents[0].text)


async def test_a_listening_client_is_told_when_agents_appear_and_when_its_agent_finishes(
    palot: PalotClient, repo: Path
):
    async with Client(await mcp_server(palot)) as client:
        assert client.server_capabilities.resources.subscribe
        async with client.listen(resources_list_changed=True) as changes:
            agent_id = await agent_waiting_for_permission(client, repo)
            async with asyncio.timeout(10):
                assert isinstance(await anext(aiter(changes)), ResourcesListChanged)

        uri = f"palot://agents/{agent_id}"
        updates: list[str] = []
        async with client.listen(resource_subscriptions=[uri]) as subscription:
            data(await client.call_tool("reply_permission", {"agent": agent_id, "reply": "once"}))
            async with asyncio.timeout(60):
                async for event in subscription:
                    assert isinstance(event, ResourceUpdated)
                    updates.append(event.uri)
                    if (await read_json(client, uri))["status"] == "completed":
                        break
    assert updates and set(updates) == {uri}


async def test_a_listening_client_hears_needs_you_and_done_through_palot_notifications(
    palot: PalotClient, repo: Path
):
    """A 2026-07-28 client gets no log messages outside a request's stream: the notifications resource is how
    it hears "needs you" and "done"."""
    async with Client(await mcp_server(palot)) as client:
        assert "palot://notifications" in [r.uri for r in (await client.list_resources()).resources] + \
            [t.uri_template for t in (await client.list_resource_templates()).resource_templates]
        async with client.listen(resource_subscriptions=["palot://notifications"]) as subscription:
            agent_id = await agent_waiting_for_permission(client, repo)
            seen: dict[str, Any] = {}
            async with asyncio.timeout(60):
                async for event in subscription:
                    assert isinstance(event, ResourceUpdated) and event.uri == "palot://notifications"
                    notes = (await read_json(client, "palot://notifications"))["notifications"]
                    seen |= {n["reason"]: n for n in notes if agent_id in n["agent_ids"]}
                    if "permission" in seen and "completed" not in seen and "replied" not in seen:
                        seen["replied"] = data(await client.call_tool("reply_permission",
                                                                      {"agent": agent_id, "reply": "once"}))
                    if "completed" in seen:
                        break
        assert seen["permission"]["kind"] == "needs_you" and seen["permission"]["action"] == "palot inbox"
        assert seen["completed"]["kind"] == "done" and seen["completed"]["action"] == f"palot agents diff {agent_id}"
        listed = (await read_json(client, "palot://notifications"))["notifications"]
        assert [n["time"] for n in listed] == sorted((n["time"] for n in listed), reverse=True)  # newest first
        data(await client.call_tool("destroy_agent", {"agent": agent_id, "force": True}))


async def test_a_subscribed_handshake_era_client_gets_resources_updated_and_list_changed(
    palot: PalotClient, repo: Path
):
    notifications: asyncio.Queue[tuple[str, str | None]] = asyncio.Queue()
    said: list[Any] = []  # notifications/message: the service's "needs you" and "done"

    async def on_message(message: Any) -> None:
        method = getattr(message, "method", None)
        if method == "notifications/message":
            said.append(message.params)
        if method and method.startswith("notifications/resources/"):
            params = getattr(message, "params", None)
            await notifications.put((method, str(getattr(params, "uri", "")) or None))

    async def next_notification(method: str) -> str | None:
        async with asyncio.timeout(60):
            while True:
                got, uri = await notifications.get()
                if got == method:
                    return uri

    async with Client(await mcp_server(palot), mode="legacy", message_handler=on_message) as client:
        assert client.server_capabilities.resources.subscribe and client.server_capabilities.resources.list_changed
        agent_id = await agent_waiting_for_permission(client, repo)
        await next_notification("notifications/resources/list_changed")  # the agent appeared

        uri = f"palot://agents/{agent_id}"
        await client.subscribe_resource(uri)
        data(await client.call_tool("reply_permission", {"agent": agent_id, "reply": "once"}))
        assert await next_notification("notifications/resources/updated") == uri
        while (await read_json(client, uri))["status"] != "completed":
            assert await next_notification("notifications/resources/updated") == uri

        async with asyncio.timeout(10):  # the service merges notifications for a second before it says them
            while not any(p.level == "info" and agent_id in p.data["agent_ids"] for p in said):
                await asyncio.sleep(0.1)
        asked = next(p for p in said if agent_id in p.data["agent_ids"] and p.data["reason"] == "permission")
        assert asked.level == "warning" and asked.logger == "palot" and asked.data["action"] == "palot inbox"
        done = next(p for p in said if p.level == "info" and agent_id in p.data["agent_ids"])
        assert done.data["kind"] == "done" and done.data["reason"] == "completed"
        assert done.data["action"] == f"palot agents diff {agent_id}"

        await asyncio.sleep(0.3)  # let the last coalesced notifications arrive, then forget them
        while not notifications.empty():
            notifications.get_nowait()
        data(await client.call_tool("destroy_agent", {"agent": agent_id, "force": True}))
        await next_notification("notifications/resources/list_changed")  # the agent went
        assert uri not in [r.uri for r in (await client.list_resources()).resources]
        await client.unsubscribe_resource(uri)


async def test_each_agent_is_a_resource_with_its_diff_and_activity(palot: PalotClient, repo: Path):
    async with Client(await mcp_server(palot)) as client:
        agent_id = data(await client.call_tool("spawn_agent", {"project": str(repo), "prompt": "write hello"}))["id"]
        data(await client.call_tool("wait_for_agent", {"agent": agent_id, "timeout": 60}))
        listed = {r.uri: r for r in (await client.list_resources()).resources}
        templates = {t.uri_template for t in (await client.list_resource_templates()).resource_templates}
        agents = await read_json(client, "palot://agents")
        agent = await read_json(client, f"palot://agents/{agent_id}")
        diff = await read_json(client, f"palot://agents/{agent_id}/diff")
        activity = await read_json(client, f"palot://agents/{agent_id}/activity")
        with pytest.raises(MCPError) as unknown:
            await client.read_resource("palot://agents/ag_missing")

    assert {"palot://agents", f"palot://agents/{agent_id}"} <= set(listed)
    assert listed[f"palot://agents/{agent_id}"].title == "write hello"
    assert templates == {"palot://agents/{agent_id}", "palot://agents/{agent_id}/diff",
                         "palot://agents/{agent_id}/activity"}
    assert agent_id in [a["id"] for a in agents["agents"]]
    assert agent["status"] == "completed"
    assert [f["path"] for f in diff["files"]] == ["hello.txt"]
    assert ("write", "hello.txt") in [(i["kind"], i["target"]) for i in activity["items"]]
    assert "no agent 'ag_missing'" in str(unknown.value)


async def test_diff_and_activity_subscribers_hear_when_the_agent_edits_a_file(palot: PalotClient, repo: Path):
    async with Client(await mcp_server(palot)) as client:
        agent_id = await agent_waiting_for_permission(client, repo)
        uris = {f"palot://agents/{agent_id}/diff", f"palot://agents/{agent_id}/activity"}
        heard: set[str] = set()
        async with client.listen(resource_subscriptions=sorted(uris)) as subscription:
            data(await client.call_tool("reply_permission", {"agent": agent_id, "reply": "once"}))  # it edits
            async with asyncio.timeout(60):
                async for event in subscription:
                    heard.add(event.uri)
                    if heard == uris:
                        break
        diff = await read_json(client, f"palot://agents/{agent_id}/diff")
    assert heard == uris
    assert [f["path"] for f in diff["files"]] == ["README.md"]
