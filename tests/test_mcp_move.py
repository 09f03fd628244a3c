"""The MCP move tool: a busy agent moved into a container and resumed there, with progress; bad moves refused."""

from __future__ import annotations

from pathlib import Path

from conftest import Engine
from mcp import Client
from mcp_support import data, error_text, mcp_server

from palot.api import AgentStatus
from palot.client import PalotClient


async def test_move_agent_pauses_a_busy_agent_moves_it_and_resumes_it_with_a_note(
    container_engine: Engine, service: PalotClient, repo: Path  # the engine first: the service inherits DOCKER_HOST
):
    agent = await service.spawn(repo, "slow task")
    await service.wait(agent.id, timeout=30, until=[AgentStatus.RUNNING])
    progress: list[tuple[float, float | None, str | None]] = []

    async def on_progress(value: float, total: float | None, message: str | None) -> None:
        progress.append((value, total, message))

    async with Client(await mcp_server(service)) as client:
        # Bad input first: it changes nothing.
        wrong = await client.call_tool("move_agent", {"agent": agent.id, "target": "worktree"})
        assert f"agent {agent.id} is already in a worktree" in error_text(wrong)
        assert await service.moves(agent.id) == []

        result = data(await client.call_tool("move_agent", {"agent": agent.id, "target": "container"},
                                             progress_callback=on_progress))
        assert result["state"] == "completed" and result["source"] == "worktree" and result["target"] == "container"
        assert result["resumed"] is True and "You were working on: slow task" in result["resume_note"]
        messages = [m for _, _, m in progress]
        assert [m.split("]")[0] for m in messages[:9]] == [f"[{n}/9" for n in range(1, 10)]
        assert progress[0][1] == 9 and "now runs in a container" in (messages[-1] or "")

        waited = data(await client.call_tool("wait_for_agent", {"agent": agent.id, "timeout": 90}))
    assert waited["settled"] and waited["agent"]["status"] == "completed"
    assert waited["agent"]["environment"]["type"] == "container"
    # The interrupted turn and the note that resumed it are both in the conversation, in the container.
    texts = [m.text for m in await service.messages(agent.id) if m.role == "user"]
    assert texts[0] == "slow task" and texts[-1].startswith("[Palot] You were moved from a git worktree to a container")
    statuses = [e.detail.get("to") for e in await service.audit(agent.id) if e.event == "status"]
    assert "migrating" in statuses
