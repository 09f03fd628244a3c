"""Two container agents editing the same file name: every front end names the agent that edited.

Both agents' OpenCode servers call their working directory ``/workspace``, so the
directory of OpenCode's ``file.edited`` cannot tell them apart; the core knows
which environment's server sent it and publishes ``palot.agent.file`` with the
agent and the file on this machine. Each round prompts the *writer* first (it
writes ``shared.txt`` after a 3 s delay, then lingers) and the *talker* second
(it talks slowly, touching no file), so the talker is the agent that changed
last when the writer's edit arrives.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
from conftest import SCRIPTS, Engine, make_repo, running_palot
from lsp_support import diagnostics, eventually, execute, open_file, start_lsp
from mcp import Client
from mcp.client.subscriptions import ResourceUpdated
from palot import Agent, AgentStatus, Palot
from palot.events import EventHub, event_source, make_event
from palot.opencode import GlobalEvent

from palot_mcp import build_server
from palot_mcp.notifications import diff_uri

pytestmark = pytest.mark.filterwarnings("ignore:resources/(un)?subscribe is removed")

ROUTING_SCRIPT = SCRIPTS / "routing.json"


def routing_palot(home: Path, opencode_bin: Path):
    return running_palot(home, opencode_bin, ROUTING_SCRIPT)


async def two_container_agents(palot: Palot, repo: Path) -> tuple[Agent, Agent]:
    agents = []
    for name in ("first", "second"):
        agent = await palot.agents.spawn(repo, f"say hi, {name}", environment="container", title=name)
        agent = await palot.agents.wait(agent.id, timeout=120)
        assert agent.status == AgentStatus.COMPLETED, agent.error
        agents.append(agent)
    first, second = agents
    assert first.environment.directory == second.environment.directory == "/workspace"
    assert first.environment.host_path and second.environment.host_path
    assert first.environment.host_path != second.environment.host_path
    return first, second


async def start_round(palot: Palot, writer: Agent, talker: Agent) -> None:
    await palot.agents.prompt(writer.id, f"write slowly {writer.title}")
    await palot.agents.prompt(talker.id, "talk slowly")


async def end_round(palot: Palot, *agents: Agent) -> None:
    for agent in agents:
        await palot.agents.abort(agent.id)


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    return make_repo(tmp_path / "project", {"shared.txt": "original\n"})


async def test_mcp_diff_notifications_name_the_container_agent_that_edited(
    tmp_path: Path, repo: Path, opencode_bin: Path, container_engine: Engine
):
    async with routing_palot(tmp_path / "home", opencode_bin) as palot:
        first, second = await two_container_agents(palot, repo)
        async with Client(build_server(palot)) as client:
            updates: list[str] = []
            uris = [diff_uri(first.id), diff_uri(second.id)]
            async with client.listen(resource_subscriptions=uris) as subscription:

                async def collect() -> None:
                    async for event in subscription:
                        if isinstance(event, ResourceUpdated):
                            updates.append(event.uri)

                collector = asyncio.create_task(collect())
                try:
                    for writer, talker in ((first, second), (second, first)):
                        await start_round(palot, writer, talker)
                        await asyncio.sleep(1.0)  # both are running; their status notifications are in
                        updates.clear()
                        edited = writer.environment.host_path and Path(writer.environment.host_path) / "shared.txt"
                        assert edited
                        wrote = f"write slowly {writer.title}\n"
                        await eventually(lambda f=edited, w=wrote: f.read_text() == w,
                                         timeout=60, what=f"{writer.title} to write shared.txt")
                        await eventually(lambda u=diff_uri(writer.id): u in updates, timeout=10,
                                         what=f"a diff notification for {writer.title}")
                        await asyncio.sleep(1.0)
                        # The talker is still talking: nothing changed its diff, so nothing said so.
                        assert (await palot.agents.get(talker.id)).status == AgentStatus.RUNNING
                        assert diff_uri(talker.id) not in updates, (writer.title, updates)
                        await end_round(palot, writer, talker)
                finally:
                    collector.cancel()

        for agent in (first, second):
            diff = await palot.agents.diff(agent.id)
            assert [f.path for f in diff.files] == ["shared.txt"]
            assert f"+write slowly {agent.title}" in diff.patch


async def test_lsp_attributes_each_container_agents_edit_to_itself_and_opens_its_own_file(
    tmp_path: Path, repo: Path, opencode_bin: Path, container_engine: Engine
):
    async with routing_palot(tmp_path / "home", opencode_bin) as palot:
        first, second = await two_container_agents(palot, repo)
        # The editor's Palot resumes both environments' event streams when it starts.
        client = await start_lsp(palot.paths, repo)
        try:
            uri = open_file(client, repo / "shared.txt", "plaintext")
            for writer, talker in ((first, second), (second, first)):
                await start_round(palot, writer, talker)

                def writer_shown_running(writer: Agent = writer) -> bool:
                    return any(writer.id in d.message and "(running)" in d.message
                               for d in diagnostics(client, uri, "agent-change"))

                # Attributed while the writer still runs: not by the refresh that follows its completion.
                await eventually(writer_shown_running, timeout=60,
                                 what=f"the editor to show {writer.title}'s change while it runs")
                assert (await palot.agents.get(writer.id)).status == AgentStatus.RUNNING
                await end_round(palot, writer, talker)

            for agent in (first, second):
                result = await execute(client, "palot.showDiff",
                                       {"agent": agent.id, "path": "shared.txt", "target": "file"})
                host_file = Path(agent.environment.host_path or "") / "shared.txt"
                assert result["uri"] == host_file.as_uri()
                assert host_file.read_text() == f"write slowly {agent.title}\n"
        finally:
            await client.shutdown_session()
            await client.stop()


async def test_the_hub_tells_apart_sessionless_events_of_two_environments_with_the_same_directory():
    async def quiet() -> AsyncIterator[GlobalEvent]:
        await asyncio.Event().wait()
        yield make_event("never")

    def environment(session: str) -> Callable[[], AsyncIterator[GlobalEvent]]:
        async def events() -> AsyncIterator[GlobalEvent]:
            yield make_event("session.status", "/workspace", sessionID=session, status={"type": "busy"})
            yield make_event("file.edited", "/workspace", file=f"/workspace/{session}.txt")
            await asyncio.Event().wait()
        return events

    hub = EventHub(quiet)
    with hub.subscribe(session_id="ses_a", types=["file.edited"], replay=False) as only_a:
        hub.add_source("env_a", environment("ses_a"))
        hub.add_source("env_b", environment("ses_b"))
        try:
            edited = await only_a.get(timeout=5)
            assert edited.payload.properties["file"] == "/workspace/ses_a.txt" and event_source(edited) == "env_a"
            await asyncio.sleep(0.1)
            assert only_a.pending() == 0  # env_b's edit in its own /workspace is not session a's
        finally:
            await hub.stop()
