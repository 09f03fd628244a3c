"""The service answers every action of palot.api, and its errors keep the message + fix shape."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import pytest

from palot import api
from palot.client import PalotClient
from palot.errors import AgentNotFound, InvalidInput
from palot.service.actions import HANDLERS


def test_every_action_has_a_handler() -> None:
    assert set(HANDLERS) == set(api.ACTIONS)


async def test_spawn_events_and_errors(service: PalotClient, repo: Path) -> None:
    events: list[api.Event] = []

    async def watch() -> None:
        async for event in service.events():
            events.append(event)

    watcher = asyncio.create_task(watch())
    await asyncio.sleep(0.3)
    lines: list[str] = []
    agent = await service.spawn(repo, "create hello.txt", progress=lines.append)
    assert any("creating worktree" in line for line in lines)
    agent = await service.wait(agent.id, timeout=60)
    assert agent.status == api.AgentStatus.COMPLETED
    for _ in range(50):
        if any(e.type == api.AGENT_UPDATED and e.agent and e.agent.status == api.AgentStatus.COMPLETED
               for e in events):
            break
        await asyncio.sleep(0.1)
    watcher.cancel()
    kinds = [e.type for e in events if e.agent_id == agent.id]
    assert kinds[0] == api.AGENT_CREATED
    assert api.ACTIVITY in kinds
    assert (await service.list())[0].id == agent.id
    status = await service.status()
    assert status.agents == 1 and status.upstream_subscriptions == 1

    with pytest.raises(AgentNotFound, match="no agent 'nope'"):
        await service.get("nope")
    with pytest.raises(InvalidInput, match="prompt is empty"):
        await service.spawn(repo, "   ")
    with pytest.raises(InvalidInput, match="environment"):
        await service.call("spawn", {"project": str(repo), "prompt": "x", "environment": "moon"})


async def test_raw_http_errors_are_message_and_fix(service: PalotClient) -> None:
    transport = httpx.AsyncHTTPTransport(uds=str(service.endpoint.socket))
    async with httpx.AsyncClient(transport=transport, base_url="http://palot") as http:
        bad = await http.post("/v1/get", content=b"{not json")
        assert bad.status_code == 400
        assert bad.json()["error"]["fix"]
        unknown = await http.post("/v1/teleport", json={})
        assert unknown.status_code == 400
        assert "unknown action 'teleport'" in unknown.json()["error"]["message"]
        extra = await http.post("/v1/get", json={"agent": "x", "colour": "red"})
        assert extra.status_code == 400 and "colour" in extra.json()["error"]["message"]


async def test_a_list_answer_can_be_read_a_page_at_a_time(service: PalotClient) -> None:
    """A front end showing part of a list (MCP's pages) is sent only that part, and how long the list is."""
    for name in ("alpha", "beta", "gamma"):
        await service.call("template_add", {"name": name, "prompt": f"do {name}"})
    everything = await service.call("templates", {})
    page, total = await service.page("templates", {}, offset=1, limit=1)
    beyond, total_beyond = await service.page("templates", {}, offset=5, limit=2)
    assert total == total_beyond == len(everything) == 3
    assert page == everything[1:2] and beyond == []
    with pytest.raises(InvalidInput, match="'status' does not answer a list"):
        await service.page("status", {}, offset=0, limit=1)
    transport = httpx.AsyncHTTPTransport(uds=str(service.endpoint.socket))
    async with httpx.AsyncClient(transport=transport, base_url="http://palot") as http:
        for query in ("offset=one&limit=2", "offset=0&limit=0", "offset=-1&limit=2"):
            bad = await http.post(f"/v1/templates?{query}", json={})
            assert bad.status_code == 400 and bad.json()["error"]["fix"].startswith("e.g. ?offset=0&limit=50"), query
