"""Two container agents editing the same file name: every front end names the agent that edited.

Both agents' OpenCode servers call their working directory ``/workspace``, so the
directory of OpenCode's ``file.edited`` cannot tell them apart; the service knows
which environment's server sent it and publishes ``agent.file`` with the agent and
the file on this machine, once, for every front end. Each round prompts the
*writer* first (it writes ``shared.txt`` after a 3 s delay, then lingers) and the
*talker* second (it talks slowly, touching no file), so the talker is the agent
that changed last when the writer's edit arrives. Watched at once: an MCP client,
an editor (LSP), the service's event stream as the notebook and `palot agents
watch --json` read it.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
from conftest import SCRIPTS, Engine, make_repo
from lsp_support import diagnostics, eventually, execute, open_file, start_lsp
from mcp import Client
from mcp.client.subscriptions import ResourceUpdated
from service_support import Watch, running_service
from mcp_support import mcp_server

from palot import api
from palot.client import PalotClient
from palot.events import EventHub, event_source, make_event
from palot.opencode import GlobalEvent
from palot.paths import PalotPaths
from palot_mcp.notifications import diff_uri

pytestmark = pytest.mark.filterwarnings("ignore:resources/(un)?subscribe is removed")

ROUTING_SCRIPT = SCRIPTS / "routing.json"


async def two_container_agents(client: PalotClient, repo: Path) -> tuple[api.Agent, api.Agent]:
    agents = []
    for name in ("first", "second"):
        agent = await client.spawn(repo, f"say hi, {name}", environment="container", title=name)
        agent = await client.wait(agent.id, timeout=120)
        assert agent.status == api.AgentStatus.COMPLETED, agent.error
        agents.append(agent)
    first, second = agents
    assert first.environment.directory == second.environment.directory == "/workspace"
    assert first.environment.host_path and second.environment.host_path
    assert first.environment.host_path != second.environment.host_path
    return first, second


async def test_every_front_end_attributes_each_container_agents_edit_to_that_agent(
    tmp_path: Path, repo: Path, opencode_bin: Path, container_engine: Engine
):
    home = tmp_path / "home"
    async with running_service(home, ROUTING_SCRIPT) as client:
        first, second = await two_container_agents(client, repo)
        stream: list[api.Event] = []

        async def read_stream() -> None:
            async for event in client.events():
                stream.append(event)

        reader = asyncio.create_task(read_stream())
        watch = Watch(home)
        editor = await start_lsp(PalotPaths(home), repo)
        try:
            uri = open_file(editor, repo / "shared.txt", "plaintext")
            async with Client(await mcp_server(client)) as mcp:
                updates: list[str] = []
                uris = [diff_uri(first.id), diff_uri(second.id)]
                async with mcp.listen(resource_subscriptions=uris) as subscription:

                    async def collect() -> None:
                        async for event in subscription:
                            if isinstance(event, ResourceUpdated):
                                updates.append(event.uri)

                    collector = asyncio.create_task(collect())
                    try:
                        for writer, talker in ((first, second), (second, first)):
                            printed = len(watch.events)
                            await client.prompt(writer.id, f"write slowly {writer.title}")
                            await client.prompt(talker.id, "talk slowly")
                            await asyncio.sleep(1.0)  # both are running; their status notifications are in
                            updates.clear()
                            edited = str(Path(writer.environment.host_path or "") / "shared.txt")
                            await eventually(lambda e=edited: Path(e).read_text().startswith("write slowly"),
                                             timeout=60, what=f"{writer.title} to write shared.txt")

                            # The service's stream (what the notebook reads) names the writer and its file.
                            await eventually(lambda w=writer, e=edited: any(
                                ev.type == api.FILE_CHANGED and ev.agent_id == w.id and ev.host_path == e
                                and ev.ranges == [(1, 1)] for ev in stream), timeout=10, what="agent.file")
                            assert not [ev for ev in stream if ev.type == api.FILE_CHANGED
                                        and ev.agent_id == talker.id]
                            # The CLI's watch prints it for the writer.
                            await eventually(lambda w=writer, e=edited, n=printed: (w.id, e) in watch.files(n),
                                             timeout=10, what="palot agents watch to print the edit")
                            assert talker.id not in {agent for agent, _ in watch.files(printed)}
                            # The assistant (MCP) hears of the writer's diff, not the talker's.
                            await eventually(lambda u=diff_uri(writer.id): u in updates, timeout=10,
                                             what=f"a diff notification for {writer.title}")

                            # The editor shows the writer's change, attributed while it still runs.
                            def writer_shown_running(w: api.Agent = writer) -> bool:
                                return any(w.id in d.message and "(running)" in d.message
                                           for d in diagnostics(editor, uri, "agent-change"))

                            await eventually(writer_shown_running, timeout=60,
                                             what=f"the editor to show {writer.title}'s change while it runs")
                            assert (await client.get(talker.id)).status == api.AgentStatus.RUNNING
                            assert diff_uri(talker.id) not in updates, (writer.title, updates)
                            for agent in (writer, talker):
                                await client.abort(agent.id)
                            stream.clear()
                    finally:
                        collector.cancel()

            for agent in (first, second):
                result = await execute(editor, "palot.showDiff", {"agent": agent.id, "path": "shared.txt",
                                                                  "target": "file"})
                host_file = Path(agent.environment.host_path or "") / "shared.txt"
                assert result["uri"] == host_file.as_uri()
                assert host_file.read_text() == f"write slowly {agent.title}\n"
                diff = await client.diff(agent.id)
                assert [f.path for f in diff.files] == ["shared.txt"]
                assert f"+write slowly {agent.title}" in diff.patch
        finally:
            reader.cancel()
            watch.stop()
            await editor.shutdown_session()
            await editor.stop()


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    return make_repo(tmp_path / "project", {"shared.txt": "original\n"})


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
