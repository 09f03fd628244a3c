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
