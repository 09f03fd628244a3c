"""``palot-lsp`` commands from a real LSP client, on the real shared server with the scripted model."""

from __future__ import annotations

import asyncio
import concurrent.futures
import os
import socket
import subprocess
from pathlib import Path
from typing import Any

import pytest
from lsp_support import (
    PALOT_LSP,
    README,
    code_actions,
    eventually,
    execute,
    lsp_client,
    messages,
    open_file,
    palot_home,
    start_lsp,
    whole_file,
    workspace,
)
from lsprotocol import types as lsp
from pygls.exceptions import JsonRpcException
from pygls.lsp.client import LanguageClient as PlainClient
from pytest_lsp import LanguageClient

from palot import PalotPaths


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])

__all__ = ["lsp_client", "palot_home", "workspace"]  # fixtures

COMMANDS = ["palot.abort", "palot.activity", "palot.addTemplate", "palot.apply", "palot.archive", "palot.audit",
            "palot.bulk", "palot.createPr", "palot.destroy", "palot.diskUse", "palot.environment",
            "palot.fileVersions", "palot.gc", "palot.get", "palot.inbox", "palot.list", "palot.messages", "palot.models", "palot.move",
            "palot.moves", "palot.pause", "palot.projects", "palot.prompt", "palot.removeTemplate", "palot.replyInbox",
            "palot.replyPermission", "palot.requestChanges", "palot.resume", "palot.retry", "palot.setBudget", "palot.settings",
            "palot.showDiff", "palot.showTemplate", "palot.spawn", "palot.status", "palot.templates",
            "palot.wait"]  # one per action of palot.api.ACTIONS, and palot.fileVersions (for an editor's diff view)


async def agent_status(client: LanguageClient, agent_id: str) -> str:
    [agent] = [a for a in await execute(client, "palot.list") if a["id"] == agent_id]
    return agent["status"]


async def wait_status(client: LanguageClient, agent_id: str, *statuses: str, timeout: float = 60) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while (status := await agent_status(client, agent_id)) not in statuses:
        assert asyncio.get_running_loop().time() < deadline, f"{agent_id} still {status}, not {statuses}"
        await asyncio.sleep(0.1)


async def test_initialize_advertises_the_commands_code_actions_and_hover(palot_home: PalotPaths, workspace: Path):
    client = await start_lsp(palot_home, workspace)
    try:
        result = client.initialize_result  # type: ignore[attr-defined]
    finally:
        await client.shutdown_session()
        await client.stop()
    caps = result.capabilities
    assert caps.execute_command_provider is not None
    assert sorted(caps.execute_command_provider.commands) == COMMANDS
    assert isinstance(caps.code_action_provider, lsp.CodeActionOptions)
    assert caps.code_action_provider.resolve_provider is True
    assert caps.hover_provider
    assert result.server_info is not None and result.server_info.name == "palot-lsp"


async def test_spawn_with_a_selection_reports_progress_and_gives_the_agent_those_lines(
    lsp_client: LanguageClient, workspace: Path
):
    uri = open_file(lsp_client, workspace / "README.md")
    selection = {"start": {"line": 0, "character": 0}, "end": {"line": 3, "character": 0}}
    agent = await execute(lsp_client, "palot.spawn", {"prompt": "write notes about this", "uri": uri,
                                                      "range": selection, "title": "Notes"})
    assert agent["title"] == "Notes" and agent["environment"]["branch"] == "palot/notes"
    assert agent["prompt"] == f"write notes about this\n\nREADME.md, lines 1–3:\n```markdown\n{README}```\n"
    assert agent["project_path"] == str(workspace)

    [reports] = lsp_client.progress_reports.values()
    assert isinstance(reports[0], lsp.WorkDoneProgressBegin) and reports[0].title == "Spawning a Palot agent"
    assert any(isinstance(r, lsp.WorkDoneProgressReport) and "palot/notes" in (r.message or "") for r in reports)
    assert isinstance(reports[-1], lsp.WorkDoneProgressEnd) and reports[-1].message == "done"

    await eventually(lambda: messages(lsp_client, f"Agent {agent['id']} “Notes” completed"), what="completion")
    listed = await execute(lsp_client, "palot.list")
    assert [(a["id"], a["status"]) for a in listed] == [(agent["id"], "completed")]
    assert (Path(agent["environment"]["directory"]) / "NOTES.md").is_file()
    assert not (workspace / "NOTES.md").exists()


async def test_an_agent_is_aborted_prompted_again_and_archived_from_the_editor(lsp_client: LanguageClient):
    agent = await execute(lsp_client, "palot.spawn", {"prompt": "slow task"})
    await wait_status(lsp_client, agent["id"], "running")
    paused = await execute(lsp_client, "palot.abort", agent["id"])  # positional arguments work too
    assert paused["status"] == "paused"

    prompted = await execute(lsp_client, "palot.prompt", {"agent": agent["id"], "text": "write notes"})
    assert prompted["status"] in ("running", "completed")  # a scripted turn can finish before the answer
    await eventually(lambda: messages(lsp_client, f"Agent {agent['id']} “slow task” completed"), what="completion")

    archived = await execute(lsp_client, "palot.archive", {"agent": agent["id"]})
    assert archived["status"] == "archived"
    assert messages(lsp_client, f"its work is kept on branch {archived['environment']['branch']}")
    assert await execute(lsp_client, "palot.list") == []
    assert [a["id"] for a in await execute(lsp_client, "palot.list", {"includeArchived": True})] == [agent["id"]]


async def test_show_diff_opens_the_agents_diff_or_its_file_and_apply_brings_the_change_home(
    lsp_client: LanguageClient, workspace: Path
):
    agent = await execute(lsp_client, "palot.spawn", {"prompt": "edit readme"})
    await eventually(lambda: messages(lsp_client, f"Agent {agent['id']} “edit readme” completed"), what="completion")

    shown = await execute(lsp_client, "palot.showDiff", {"agent": agent["id"]})
    assert shown["shown"] is True and shown["files"] == ["README.md"]
    diff_doc = lsp_client.shown_documents[-1]
    assert diff_doc.uri == shown["uri"] and diff_doc.uri.endswith(".diff")
    assert "+# sample project, edited by an agent" in Path(diff_doc.uri.removeprefix("file://")).read_text()

    await execute(lsp_client, "palot.showDiff", {"agent": agent["id"], "path": "README.md", "target": "file"})
    file_doc = lsp_client.shown_documents[-1]
    assert file_doc.uri == (Path(agent["environment"]["directory"]) / "README.md").as_uri()
    assert file_doc.selection == lsp.Range(lsp.Position(0, 0), lsp.Position(1, 0))

    applied = await execute(lsp_client, "palot.apply", {"agent": agent["id"]})
    assert applied == {"agent": agent["id"], "files": ["README.md"]}
    assert (workspace / "README.md").read_text().startswith("# sample project, edited by an agent\n")
    assert messages(lsp_client, f"Applied agent {agent['id']}'s changes to your checkout: README.md")


# --- bad input ----------------------------------------------------------------------------


async def error_of(client: LanguageClient, command: str, *arguments: Any) -> JsonRpcException:
    with pytest.raises(JsonRpcException) as e:
        await execute(client, command, *arguments)
    return e.value


async def raw_request(client: LanguageClient, msg_id: int, method: str, params: Any) -> Any:
    """Send a request as raw JSON (a client that does not type-check its params) and await the answer."""
    future: concurrent.futures.Future[Any] = concurrent.futures.Future()
    client.protocol._request_futures[msg_id] = future
    client.protocol._send_data({"jsonrpc": "2.0", "id": msg_id, "method": method, "params": params})
    return await asyncio.wait_for(asyncio.wrap_future(future), 10)


async def test_bad_commands_get_clear_errors_and_change_nothing(lsp_client: LanguageClient, workspace: Path):
    e = await error_of(lsp_client, "palot.nope")
    assert e.code == -32602 and "unknown command 'palot.nope'; Palot's commands are: palot.abort" in e.message
    e = await error_of(lsp_client, "palot.spawn", {"uri": "file:///x"})  # a prompt, or a template
    assert e.code == -32602 and e.message.startswith("palot.spawn: the prompt is empty: say what the agent should "
                                                     "work on, or give a template")
    e = await error_of(lsp_client, "palot.replyPermission", {"agent": "ag_1", "reply": "sure"})
    assert e.code == -32602 and "'reply' must be one of once, always, reject" in e.message

    e = await error_of(lsp_client, "palot.prompt", {"agent": "ag_nobody", "text": "hello"})
    assert e.code == lsp.LSPErrorCodes.RequestFailed
    assert e.message == "no agent 'ag_nobody' — run `palot agents list` to see agent ids"
    assert e.data == {"error": "agent_not_found", "message": "no agent 'ag_nobody'",
                      "fix": "run `palot agents list` to see agent ids"}
    e = await error_of(lsp_client, "palot.spawn", {"prompt": "write hello", "project": "/nonexistent/place"})
    assert e.code == lsp.LSPErrorCodes.RequestFailed and "/nonexistent/place" in e.message
    assert await execute(lsp_client, "palot.list") == []
    assert [m for m in lsp_client.messages if m.type == lsp.MessageType.Error] == []  # answers, not pop-ups


async def test_requests_with_malformed_params_are_answered_not_dropped(lsp_client: LanguageClient, workspace: Path):
    uri = (workspace / "README.md").as_uri()
    for msg_id, method, params, problem in [
        (901, "textDocument/codeAction", {"textDocument": {"uri": uri}}, "required field missing @ $.params.range"),
        (902, "textDocument/hover", {"textDocument": {"uri": uri}, "position": {"line": "one", "character": 0}},
         "expected int @ $.params.position.line"),
        (903, "workspace/executeCommand", {"command": "palot.list", "arguments": 5}, "@ $.params.arguments"),
    ]:
        with pytest.raises(JsonRpcException) as e:
            await raw_request(lsp_client, msg_id, method, params)
        assert e.value.code == -32602 and e.value.message.startswith(f"invalid params for {method}: ")
        assert problem in e.value.message
    # A broken notification is logged, and the server carries on.
    lsp_client.protocol._send_data({"jsonrpc": "2.0", "method": "textDocument/didOpen", "params": {"bad": 1}})
    await eventually(lambda: [m for m in lsp_client.log_messages if "ignored invalid params for textDocument/didOpen"
                              in m.message], 10, "a log message about the notification")
    assert await execute(lsp_client, "palot.list") == []


async def test_an_unusable_palot_home_is_reported_and_every_command_says_so(tmp_path: Path, workspace: Path):
    not_a_dir = tmp_path / "home"
    not_a_dir.write_text("")
    client = await start_lsp(PalotPaths(not_a_dir), workspace)
    try:
        await eventually(lambda: [m for m in client.messages if m.type == lsp.MessageType.Error and
                                  m.message.startswith(f"Palot could not start: Palot cannot use {not_a_dir} as "
                                                       "its data directory (it is a file)")], 20, "the error")
        e = await error_of(client, "palot.list")
        assert e.code == lsp.LSPErrorCodes.RequestFailed
        assert e.message.endswith("set PALOT_HOME to a folder you can write to, or unset it")
        # The editor keeps working: code actions still answer.
        actions = await code_actions(client, (workspace / "README.md").as_uri(), whole_file(3))
        assert [a.title for a in actions] == ["Ask an agent about this", "Fix with an agent"]
    finally:
        await client.shutdown_session()
        await client.stop()


async def test_a_failing_agent_is_announced_as_an_error(lsp_client: LanguageClient):
    agent = await execute(lsp_client, "palot.spawn", {"prompt": "provoke an error", "title": "Doomed"})
    [failed] = await eventually(lambda: [m for m in lsp_client.messages if m.type == lsp.MessageType.Error],
                                what="the failure message")
    assert failed.message.startswith(f"Agent {agent['id']} “Doomed” failed: ")
    assert "scripted failure for the test" in failed.message


async def test_the_server_also_listens_on_tcp(palot_home: PalotPaths, workspace: Path):
    port = free_port()
    proc = subprocess.Popen([PALOT_LSP, "--tcp", "--port", str(port)], stdin=subprocess.DEVNULL,
                            env={**os.environ, "PALOT_HOME": str(palot_home.home)})
    client = PlainClient("tcp-test", "1")
    try:
        for _ in range(100):
            try:
                await client.start_tcp("127.0.0.1", port)
                break
            except OSError:
                await asyncio.sleep(0.1)
        result = await client.initialize_async(lsp.InitializeParams(
            capabilities=lsp.ClientCapabilities(), root_uri=workspace.as_uri()))
        client.initialized(lsp.InitializedParams())
        assert result.server_info is not None and result.server_info.name == "palot-lsp"
        listed = await client.workspace_execute_command_async(lsp.ExecuteCommandParams(command="palot.list"))
        assert listed == []
        await client.shutdown_async(None)
        client.exit(None)
        proc.wait(timeout=10)
    finally:
        await client.stop()
        if proc.poll() is None:
            proc.terminate()
            proc.wait(timeout=10)


async def test_a_setup_script_that_reads_stdin_gets_nothing_and_leaves_the_protocol_alone(
    lsp_client: LanguageClient, workspace: Path
):
    """Over stdio, palot-lsp's stdin is the editor's JSON-RPC stream: a setup script that keeps reading stdin
    while the editor sends requests must get none of their bytes, and every request is answered."""
    script = "for i in $(seq 30); do cat >> stdin-seen.txt 2>/dev/null; sleep 0.1; done; echo read >> stdin-seen.txt"
    spawning = asyncio.create_task(execute(lsp_client, "palot.spawn", {
        "prompt": "write hello", "project": str(workspace), "setupScript": script}))
    answered = 0
    while not spawning.done():  # requests arriving while the script reads
        await asyncio.wait_for(execute(lsp_client, "palot.list", {}), 30)
        answered += 1
        await asyncio.sleep(0.1)
    agent = await asyncio.wait_for(spawning, 30)
    assert answered >= 5
    assert (Path(agent["environment"]["directory"]) / "stdin-seen.txt").read_text() == "read\n"


async def test_a_permission_request_asks_with_an_inbox_button_and_the_picked_request_is_answered(
    lsp_client: LanguageClient
):
    mine: dict[str, str] = {}
    asked: list[lsp.ShowMessageRequestParams] = []

    def ask(params: lsp.ShowMessageRequestParams) -> lsp.MessageActionItem | None:
        asked.append(params)
        titles = [a.title for a in params.actions or []]
        # The notification's button, then the agent's request in the inbox, then the answer to it.
        pick = next((t for t in titles if t == "Open inbox" or mine.get("id", "?") in t), None)
        if pick is None and mine.get("id", "?") in params.message and "Allow once" in titles:
            pick = "Allow once"
        return lsp.MessageActionItem(title=pick) if pick else None

    lsp_client.answer_question = ask  # type: ignore[attr-defined]
    agent = await execute(lsp_client, "palot.spawn", {"prompt": "edit readme", "permission_mode": "ask"})
    mine["id"] = agent["id"]
    await eventually(lambda: messages(lsp_client, f"Answered 1 permission request: {agent['id']} edit"),
                     what="the answer picked in the inbox")
    await eventually(lambda: messages(lsp_client, f"Agent {agent['id']} “edit readme” completed"), what="completion")
    note = next(p for p in asked if [a.title for a in p.actions or []] == ["Open inbox"])
    assert note.type == lsp.MessageType.Warning and agent["id"] in note.message
    question = next(p for p in asked if "Allow once" in [a.title for a in p.actions or []])
    assert question.message.startswith(f"Agent {agent['id']} “edit readme” in project asks to edit: ")
    assert [a.title for a in question.actions or []] == ["Allow once", "Allow always", "Reject"]

    budget = await execute(lsp_client, "palot.setBudget", {"agent": agent["id"], "usd": 5})
    assert budget["budget_usd"] == 5 and messages(lsp_client, f"Agent {agent['id']} “edit readme”'s budget: $5.00")
    settings = await execute(lsp_client, "palot.settings")
    assert settings["path"].endswith("settings.toml")
    assert [i for i in await execute(lsp_client, "palot.inbox", {"pick": False}) if i["agent_id"] == agent["id"]] == []
    with pytest.raises(JsonRpcException) as e:
        await execute(lsp_client, "palot.replyInbox", {"reply": "once"})
    assert e.value.code == -32602 and "say which requests" in e.value.message


async def test_templates_are_added_picked_and_spawned_from_in_the_editor(lsp_client: LanguageClient, workspace: Path):
    asked: list[lsp.ShowMessageRequestParams] = []
    pick: dict[str, str] = {}

    def ask(params: lsp.ShowMessageRequestParams) -> lsp.MessageActionItem | None:
        asked.append(params)
        titles = [a.title for a in params.actions or []]
        return lsp.MessageActionItem(title=pick["title"]) if pick.get("title") in titles else None

    lsp_client.answer_question = ask  # type: ignore[attr-defined]
    saved = await execute(lsp_client, "palot.addTemplate", {"name": "notes", "prompt": "write notes, plainly",
                                                            "project": str(workspace), "title": "Notes"})
    assert saved["replaced"] is False and messages(lsp_client, f"added template 'notes' for {workspace}")
    await execute(lsp_client, "palot.addTemplate", {"name": "greet",
                                                    "prompt": "Write a templated greeting for {name}."})
    assert (await execute(lsp_client, "palot.showTemplate", {"name": "greet"}))["variables"] == ["name"]

    # The quick pick: a template without variables spawns an agent in the workspace at once.
    pick["title"] = "notes"
    listed = await execute(lsp_client, "palot.templates", {"project": str(workspace)})
    assert [t["name"] for t in listed] == ["greet", "notes"]
    question = await eventually(lambda: next((p for p in asked if "which template" in p.message), None),
                                what="the templates offered")
    assert [a.title for a in question.actions or []] == ["greet (name)", "notes"]
    await eventually(lambda: messages(lsp_client, "“Notes” is working on branch palot/notes"), what="the spawn")
    [agent] = await execute(lsp_client, "palot.list")
    assert (agent["prompt"], agent["project_path"]) == ("write notes, plainly", str(workspace))
    await eventually(lambda: messages(lsp_client, f"Agent {agent['id']} “Notes” completed"), what="completion")

    # One that needs variables says how to give them; palot.spawn takes the template and its vars.
    pick["title"] = "greet (name)"
    await execute(lsp_client, "palot.templates")
    usage = 'run palot.spawn with {"template": "greet", "vars": {"name": "…"}}'
    await eventually(lambda: messages(lsp_client, usage), what="how to fill the variables")
    with pytest.raises(JsonRpcException) as e:
        await execute(lsp_client, "palot.spawn", {"template": "greet", "vars": {"nme": "Ada"}})
    assert "has no variable nme" in e.value.message and len(await execute(lsp_client, "palot.list")) == 1
    greeted = await execute(lsp_client, "palot.spawn", {"template": "greet", "vars": {"name": "Ada"}})
    assert greeted["prompt"] == "Write a templated greeting for Ada."
    await eventually(lambda: messages(lsp_client, f"Agent {greeted['id']} “Write a templated greeting for Ada.” "
                                                  "completed"), what="completion")
    assert (Path(greeted["environment"]["host_path"]) / "GREETING.md").read_text() == "Hello, Ada!\n"
    removed = await execute(lsp_client, "palot.removeTemplate", {"name": "greet"})
    assert removed["message"] == "removed template 'greet' for every project"
