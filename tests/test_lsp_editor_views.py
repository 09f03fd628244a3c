"""What an extension with views of its own (the VS Code extension's Agents view and diff editor) asks of
``palot-lsp``: agents' views pushed as they change, a quiet list, and both versions of a changed file. From a
real LSP client, through the real Palot service with the scripted model."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from lsp_support import README, eventually, execute, lsp_client, messages, palot_home, start_lsp, workspace
from pygls.exceptions import JsonRpcException
from pytest_lsp import LanguageClient

from palot import PalotPaths

__all__ = ["lsp_client", "palot_home", "workspace"]  # fixtures


async def agent_views_client(home: PalotPaths, folder: Path) -> tuple[LanguageClient, list[dict[str, Any]]]:
    """A client that asks for ``palot/agent`` notifications, and the notifications it got."""
    client = await start_lsp(home, folder, initialization_options={"agentEvents": True})
    received: list[dict[str, Any]] = []

    @client.feature("palot/agent")
    def agent(params: Any) -> None:
        received.append({"id": params.id, "agent": None if params.agent is None else
                         {"status": params.agent.status, "title": params.agent.title}})

    return client, received


async def test_an_extension_that_asks_gets_each_agents_view_as_it_changes_until_it_is_archived(
    palot_home: PalotPaths, workspace: Path
):
    client, received = await agent_views_client(palot_home, workspace)
    try:
        agent = await execute(client, "palot.spawn", {"prompt": "edit readme", "title": "Views"})
        await eventually(lambda: any(r["id"] == agent["id"] and r["agent"] and r["agent"]["status"] == "completed"
                                     for r in received), what="the completed view")
        assert all(r["agent"]["title"] == "Views" for r in received if r["agent"])
        await execute(client, "palot.archive", {"agent": agent["id"]})
        await eventually(lambda: received[-1] == {"id": agent["id"], "agent": None}, what="the agent's removal")
    finally:
        await client.shutdown_session()
        await client.stop()


async def test_an_editor_that_does_not_ask_gets_no_agent_views(lsp_client: LanguageClient):
    got: list[Any] = []
    lsp_client.feature("palot/agent")(lambda params: got.append(params))
    agent = await execute(lsp_client, "palot.spawn", {"prompt": "edit readme"})
    await eventually(lambda: messages(lsp_client, f"Agent {agent['id']} “edit readme” completed"), what="completion")
    assert got == []


async def test_a_quiet_list_answers_without_a_message(lsp_client: LanguageClient):
    agent = await execute(lsp_client, "palot.spawn", {"prompt": "edit readme"})
    before = len(lsp_client.messages)
    listed = await execute(lsp_client, "palot.list", {"quiet": True})
    assert [a["id"] for a in listed] == [agent["id"]]
    assert len(lsp_client.messages) == before
    await execute(lsp_client, "palot.list")
    assert messages(lsp_client, agent["id"])


async def test_file_versions_gives_the_base_and_the_agents_version_of_a_changed_file(
    lsp_client: LanguageClient, workspace: Path
):
    agent = await execute(lsp_client, "palot.spawn", {"prompt": "edit readme"})
    await eventually(lambda: messages(lsp_client, f"Agent {agent['id']} “edit readme” completed"), what="completion")
    versions = await execute(lsp_client, "palot.fileVersions", {"agent": agent["id"], "path": "README.md"})
    assert versions["base"] == README
    assert versions["text"] == README.replace("sample project", "sample project, edited by an agent")
    assert versions["text"] == (Path(agent["environment"]["directory"]) / "README.md").read_text()
    assert versions["status"] == "modified" and versions["path"] == "README.md"
    listed = await execute(lsp_client, "palot.showDiff", {"agent": agent["id"], "show": False})
    assert listed["shown"] is False and [(f["path"], f["additions"], f["deletions"]) for f in listed["files"]] == [
        ("README.md", 1, 1)]
    assert lsp_client.shown_documents == []

    try:
        await execute(lsp_client, "palot.fileVersions", {"agent": agent["id"], "path": "NOTES.md"})
    except JsonRpcException as e:
        assert f"agent {agent['id']} has no changes to NOTES.md" in e.message
        assert e.data["fix"] == "wait for it to edit the file, or prompt it"
    else:
        raise AssertionError("a file the agent did not change has no versions")
