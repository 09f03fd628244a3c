"""The MCP tools, driven by a real MCP client (in-process) against real OpenCode with the scripted model."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio
from conftest import git, make_repo
from mcp import Client
from mcp_support import data, error_text, mcp_server, module_service

from palot import api
from palot.client import PalotClient

pytestmark = pytest.mark.asyncio(loop_scope="module")

EVERY_ACTION = {
    "list_projects", "list_agents", "get_agent", "spawn_agent", "send_prompt", "abort_agent", "reply_permission",
    "get_activity", "get_diff", "wait_for_agent", "apply_agent", "create_pr", "archive_agent", "destroy_agent",
    "environment_status", "move_agent", "service_status", "list_models", "get_messages", "list_moves",
    "get_audit_log", "set_budget", "list_inbox", "reply_inbox", "get_settings", "list_templates", "get_template",
    "save_template", "remove_template", "retry_agent", "request_changes", "bulk_agents", "disk_use",
    "collect_garbage", "pause_agent", "resume_agent",
}


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def palot(tmp_path_factory: pytest.TempPathFactory, opencode_bin: Path) -> AsyncIterator[PalotClient]:
    async with module_service(tmp_path_factory) as p:
        yield p


async def spawn(client: Client, project: Path, prompt: str, **arguments: object) -> str:
    return data(await client.call_tool("spawn_agent", {"project": str(project), "prompt": prompt, **arguments}))["id"]


async def wait(client: Client, agent_id: str) -> dict:
    result = data(await client.call_tool("wait_for_agent", {"agent": agent_id, "timeout": 60}))
    assert result["settled"], result
    return result["agent"]


async def answer_streaming(palot: PalotClient, agent_id: str, timeout: float = 30) -> None:
    """Until the agent's slow answer is streaming. Its message appears when the turn starts; the words follow a
    second or two later and take about ten seconds (one chunk a second). Their text is stored only at the end,
    and the service streams no deltas, so the wait after the message is a time, well inside that window."""
    async with asyncio.timeout(timeout):
        while not any(m.role == "assistant" for m in await palot.messages(agent_id)):
            await asyncio.sleep(0.1)
    await asyncio.sleep(2.5)


async def test_every_user_action_is_a_tool_with_a_description_schemas_and_hints(palot: PalotClient):
    async with Client(await mcp_server(palot)) as client:
        tools = {t.name: t for t in (await client.list_tools()).tools}
    assert set(tools) == EVERY_ACTION
    for tool in tools.values():
        assert tool.description and tool.title and tool.output_schema, tool.name
        assert tool.input_schema["type"] == "object"
        assert tool.annotations is not None and tool.annotations.read_only_hint is not None, tool.name
    read_only = {name for name, t in tools.items() if t.annotations.read_only_hint}
    assert read_only == {"list_projects", "list_agents", "get_agent", "get_activity", "get_diff", "wait_for_agent",
                         "environment_status", "service_status", "list_models", "get_messages", "list_moves",
                         "get_audit_log", "list_inbox", "get_settings", "list_templates", "get_template",
                         "disk_use"}
    # bulk_agents can destroy many agents (a dry run unless told otherwise)
    assert sorted(n for n, t in tools.items() if t.annotations.destructive_hint) == \
        ["bulk_agents", "collect_garbage", "destroy_agent", "remove_template"]
    assert tools["archive_agent"].annotations.idempotent_hint and not tools["destroy_agent"].annotations.idempotent_hint
    assert tools["pause_agent"].annotations.idempotent_hint and tools["resume_agent"].annotations.idempotent_hint
    spawn_args = tools["spawn_agent"].input_schema["properties"]
    assert set(spawn_args) >= {"project", "prompt", "environment", "model", "base_branch", "setup_script",
                               "permission_mode"}
    # Optional (a template's default applies when it is not given), one of the three modes when it is.
    assert [b.get("enum") for b in spawn_args["permission_mode"]["anyOf"]] == [["default", "ask", "auto"], None]
    assert tools["spawn_agent"].input_schema["required"] == ["project"]  # a prompt, or a template
    assert {"template", "vars"} <= set(spawn_args)


async def test_spawn_wait_diff_apply_end_to_end_with_progress(palot: PalotClient, repo: Path):
    progress: list[tuple[float, str | None]] = []

    async def on_progress(value: float, total: float | None, message: str | None) -> None:
        progress.append((value, message))

    async with Client(await mcp_server(palot)) as client:
        agent = data(await client.call_tool("spawn_agent", {"project": str(repo), "prompt": "write hello please",
                                                            "title": "Say hello"}, progress_callback=on_progress))
        # (A scripted turn can finish before the answer on a loaded machine.)
        assert agent["status"] in ("running", "completed") and agent["environment"]["branch"] == "palot/say-hello"
        done = await wait(client, agent["id"])
        assert done["status"] == "completed", done["error"]
        diff = data(await client.call_tool("get_diff", {"agent": agent["id"]}))
        assert not (repo / "hello.txt").exists()
        applied = data(await client.call_tool("apply_agent", {"agent": agent["id"]}))

    assert len(progress) >= 3 and [v for v, _ in progress] == sorted(v for v, _ in progress)
    assert "palot/say-hello" in (progress[0][1] or "") and agent["id"] in (progress[-1][1] or "")
    assert [(f["path"], f["status"], f["additions"]) for f in diff["files"]] == [("hello.txt", "added", 1)]
    assert "+hello from the agent" in diff["patch"]
    assert applied["files"] == ["hello.txt"] and applied["project_path"] == str(repo)
    assert (repo / "hello.txt").read_text() == "hello from the agent\n"


async def test_activity_cursor_reads_only_what_is_new(palot: PalotClient, repo: Path):
    async with Client(await mcp_server(palot)) as client:
        agent_id = await spawn(client, repo, "write notes")
        await wait(client, agent_id)
        first = data(await client.call_tool("get_activity", {"agent": agent_id}))
        assert ("write", "NOTES.md") in [(i["kind"], i["target"]) for i in first["items"]]
        assert first["items"][-1]["kind"] == "message"
        assert first["next_cursor"] == first["items"][-1]["index"] + 1

        cursor = first["next_cursor"]
        nothing_new = data(await client.call_tool("get_activity", {"agent": agent_id, "since": cursor}))
        assert nothing_new["items"] == [] and nothing_new["next_cursor"] == cursor

        data(await client.call_tool("send_prompt", {"agent": agent_id, "text": "write hello"}))
        await wait(client, agent_id)
        new = data(await client.call_tool("get_activity", {"agent": agent_id, "since": cursor}))
        page = data(await client.call_tool("get_activity", {"agent": agent_id, "limit": 1}))

    assert new["items"] and all(i["index"] >= cursor for i in new["items"])
    assert ("write", "hello.txt") in [(i["kind"], i["target"]) for i in new["items"]]
    assert len(page["items"]) == 1 and page["more"] and page["next_cursor"] == page["items"][0]["index"] + 1


async def test_a_permission_request_is_answered_with_reply_permission(palot: PalotClient, repo: Path):
    async with Client(await mcp_server(palot)) as client:
        agent_id = await spawn(client, repo, "edit readme", permission_mode="ask")
        waiting = await wait(client, agent_id)
        assert waiting["status"] == "waiting"
        assert [p["permission"] for p in waiting["permissions"]] == ["edit"]
        data(await client.call_tool("reply_permission", {"agent": agent_id, "reply": "once"}))
        done = await wait(client, agent_id)
    assert done["status"] == "completed" and done["permissions"] == []
    assert "edited by an agent" in (Path(done["environment"]["directory"]) / "README.md").read_text()


async def test_abort_pauses_an_agent_and_a_prompt_resumes_it(palot: PalotClient, repo: Path):
    async with Client(await mcp_server(palot)) as client:
        agent = data(await client.call_tool("spawn_agent", {"project": str(repo), "prompt": "slow task"}))
        await answer_streaming(palot, agent["id"])
        assert data(await client.call_tool("abort_agent", {"agent": agent["id"]}))["status"] == "paused"
        assert (await wait(client, agent["id"]))["status"] == "paused"

        resumed = data(await client.call_tool("send_prompt", {"agent": agent["id"], "text": "write hello"}))
        assert resumed["status"] in ("running", "completed")  # a scripted turn can finish before the answer
        done = await wait(client, agent["id"])
    assert done["status"] == "completed"
    assert (Path(done["environment"]["directory"]) / "hello.txt").exists()


async def test_create_pr_archive_and_destroy_finish_agents(palot: PalotClient, repo: Path, tmp_path: Path):
    remote = tmp_path / "remote.git"
    git(tmp_path, "init", "-q", "--bare", str(remote))
    git(repo, "remote", "add", "origin", str(remote))
    async with Client(await mcp_server(palot)) as client:
        agent_id, unapplied = await spawn(client, repo, "write hello"), await spawn(client, repo, "write notes")
        agent, _ = await asyncio.gather(wait(client, agent_id), wait(client, unapplied))
        env = data(await client.call_tool("environment_status", {"agent": agent_id}))
        pr = data(await client.call_tool("create_pr", {"agent": agent_id, "title": "Say hello"}))
        archived = data(await client.call_tool("archive_agent", {"agent": agent_id}))
        again = data(await client.call_tool("archive_agent", {"agent": agent_id}))
        listed = data(await client.call_tool("list_agents", {"include_archived": True, "project": str(repo)}))
        refused = error_text(await client.call_tool("destroy_agent", {"agent": unapplied}))
        gone = data(await client.call_tool("destroy_agent", {"agent": unapplied, "force": True}))
        unknown = error_text(await client.call_tool("get_agent", {"agent": unapplied}))

    assert (env["type"], env["state"], env["directory"]) == ("worktree", "running", agent["environment"]["directory"])
    assert env["resources"]["disk_bytes"] > 0
    assert pr["pushed"] and pr["branch"] == agent["environment"]["branch"]
    assert git(remote, "show", f"{pr['branch']}:hello.txt") == "hello from the agent\n"
    if pr["url"] is None:  # no gh here: the message says what is missing
        assert "gh auth login" in pr["message"]
    assert archived["status"] == again["status"] == "archived"
    assert not Path(agent["environment"]["directory"]).exists()
    assert git(repo, "show", f"{pr['branch']}:hello.txt") == "hello from the agent\n"  # the branch stays
    assert agent_id in [a["id"] for a in listed["agents"]]
    assert "neither applied nor merged" in refused and "force" in refused
    assert gone["agent_id"] == unapplied and gone["destroyed"]
    assert "no agent" in unknown
    assert "palot/write-notes" not in git(repo, "branch", "--list")


async def test_projects_and_agents_are_listed_with_filters_and_pages(palot: PalotClient, tmp_path: Path):
    one, two = make_repo(tmp_path / "one"), make_repo(tmp_path / "two")
    async with Client(await mcp_server(palot)) as client:
        a, b = await spawn(client, one, "write hello"), await spawn(client, two, "provoke an error")
        done, failed = await asyncio.gather(wait(client, a), wait(client, b))
        projects = {p["name"]: p for p in data(await client.call_tool("list_projects", {}))["projects"]}
        in_one = data(await client.call_tool("list_agents", {"project": "one"}))
        failed_ones = data(await client.call_tool("list_agents", {"status": "failed", "environment": "worktree"}))
        everyone = data(await client.call_tool("list_agents", {}))
        first = data(await client.call_tool("list_agents", {"limit": 1}))
        second = data(await client.call_tool("list_agents", {"limit": 1, "offset": 1}))
        last = data(await client.call_tool("list_agents", {"limit": 2, "offset": everyone["total"] - 1}))

    assert done["status"] == "completed"
    assert failed["status"] == "failed" and "scripted failure" in failed["error"]
    assert projects["one"]["agents"] == 1 and projects["two"]["path"] == str(two)
    assert [x["id"] for x in in_one["agents"]] == [a]
    assert b in [x["id"] for x in failed_ones["agents"]] and a not in [x["id"] for x in failed_ones["agents"]]
    assert first["total"] == everyone["total"] >= 2 and first["next_offset"] == 1
    assert [x["id"] for x in first["agents"] + second["agents"]] == [x["id"] for x in everyone["agents"][:2]]
    assert last["agents"] == everyone["agents"][-1:] and last["next_offset"] is None
    assert last["total"] == everyone["total"]


async def test_bad_input_and_failed_operations_are_tool_errors_that_name_the_fix(palot: PalotClient, tmp_path: Path):
    not_git = tmp_path / "plain"
    not_git.mkdir()
    clean = make_repo(tmp_path / "clean")
    async with Client(await mcp_server(palot)) as client:
        unknown = error_text(await client.call_tool("get_agent", {"agent": "ag_nope"}))
        refused = error_text(await client.call_tool("spawn_agent", {"project": str(not_git), "prompt": "hi"}))
        bad_type = error_text(await client.call_tool("wait_for_agent", {"agent": "ag_x", "timeout": "soon"}))
        missing = error_text(await client.call_tool("send_prompt", {"agent": "ag_x"}))
        extra = error_text(await client.call_tool("list_projects", {"verbose": True}))
        bad_mode = error_text(await client.call_tool("spawn_agent", {"project": "x", "prompt": "y",
                                                                     "permission_mode": "yolo"}))
        agent_id = await spawn(client, clean, "write hello")
        await wait(client, agent_id)
        no_remote = error_text(await client.call_tool("create_pr", {"agent": agent_id}))
        (clean / "README.md").write_text("edited by hand\n")
        dirty = error_text(await client.call_tool("apply_agent", {"agent": agent_id}))

    assert "no agent 'ag_nope'" in unknown and "agents list" in unknown
    assert "not inside a git work tree" in refused and "git init" in refused  # what failed, then the fix
    assert "timeout" in bad_type and "input schema" in bad_type
    assert "text: required" in missing
    assert "no argument 'verbose'" in extra
    assert "permission_mode" in bad_mode and "'ask'" in bad_mode
    assert "remote add" in no_remote
    assert dirty.startswith("apply_agent:") and "—" in dirty and "Traceback" not in dirty
    assert not (clean / "hello.txt").exists()


async def test_status_models_messages_moves_and_audit_tools_and_the_old_agent_id_name(palot: PalotClient, repo: Path):
    async with Client(await mcp_server(palot)) as client:
        status = data(await client.call_tool("service_status", {}))
        models = data(await client.call_tool("list_models", {"project": str(repo)}))
        agent_id = await spawn(client, repo, "write hello")
        await wait(client, agent_id)
        messages = data(await client.call_tool("get_messages", {"agent": agent_id}))
        moves = data(await client.call_tool("list_moves", {"agent": agent_id}))
        audit = data(await client.call_tool("get_audit_log", {"agent": agent_id}))
        unknown_audit = error_text(await client.call_tool("get_audit_log", {"agent": "ag_nope"}))
        managed = data(await client.call_tool("list_agents", {"include_external": False, "limit": 1000}))
        legacy = data(await client.call_tool("get_agent", {"agent_id": agent_id}))
        both = error_text(await client.call_tool("get_agent", {"agent_id": agent_id, "agent": agent_id}))
        bad_limit = error_text(await client.call_tool("spawn_agent", {
            "project": str(repo), "prompt": "write hello", "environment": "container", "options": {"cpus": 0}}))
        empty = error_text(await client.call_tool("spawn_agent", {"project": str(repo), "prompt": "   "}))
        bad_option = error_text(await client.call_tool("move_agent", {
            "agent": agent_id, "target": "container", "options": {"gpus": 1}}))

    assert status["api_version"] == api.API_VERSION and status["opencode_connected"] is True
    assert models["models"] and all("/" in m for m in models["models"])
    assert messages["agent_id"] == agent_id
    assert [m["role"] for m in messages["messages"]][:2] == ["user", "assistant"]
    assert messages["messages"][0]["text"] == "write hello"
    assert moves == {"agent_id": agent_id, "moves": []}
    assert audit["entries"] and {e["agent_id"] for e in audit["entries"]} == {agent_id}
    assert "no agent 'ag_nope'" in unknown_audit
    assert agent_id in [a["id"] for a in managed["agents"]]
    assert all(a["environment"]["type"] != "external" for a in managed["agents"])
    assert legacy["id"] == agent_id
    assert "pass only 'agent'" in both
    assert "options" in bad_limit and "greater than 0" in bad_limit
    assert "options.gpus: extra inputs are not permitted" in bad_option
    assert empty.startswith("spawn_agent: invalid arguments: prompt: the prompt is empty: say what")


async def test_the_inbox_settings_and_budget_tools_and_the_overview_resource(palot: PalotClient):
    async with Client(await mcp_server(palot)) as client:
        inbox = data(await client.call_tool("list_inbox", {}))
        assert inbox == {"items": [], "total": 0}
        settings = data(await client.call_tool("get_settings", {}))
        assert settings["path"].endswith("settings.toml") and isinstance(settings["settings"], dict)
        # The request models' own checks reach the assistant as tool errors that say what to give.
        assert "say which requests" in error_text(await client.call_tool("reply_inbox", {"reply": "once"}))
        assert "give a budget" in error_text(await client.call_tool("set_budget", {"agent": "ag_none"}))
        contents = (await client.read_resource("palot://agents")).contents
        overview = json.loads(contents[0].text)
    status = await palot.status()
    assert overview["inbox"] == status.inbox == 0
    assert overview["spend"] == (status.spend.model_dump(mode="json") if status.spend else None)


async def test_a_template_is_saved_listed_and_spawned_from_with_its_variables(palot: PalotClient, tmp_path: Path):
    project = make_repo(tmp_path / "templated")
    async with Client(await mcp_server(palot)) as client:
        saved = data(await client.call_tool("save_template", {
            "name": "greet", "project": str(project), "prompt": "Write a templated greeting for {name}.",
            "title": "Greeting"}))
        assert saved["replaced"] is False and saved["template"]["variables"] == ["name"]
        listed = data(await client.call_tool("list_templates", {"project": str(project)}))
        assert [(t["name"], t["project"], t["variables"]) for t in listed["templates"]] == [
            ("greet", str(project), ["name"])]
        shown = data(await client.call_tool("get_template", {"name": "greet", "project": str(project)}))
        assert shown["prompt"] == "Write a templated greeting for {name}."

        # A missing variable is a tool error naming it and the fix; nothing is spawned.
        missing = error_text(await client.call_tool("spawn_agent", {"project": str(project), "template": "greet"}))
        assert "template 'greet' needs a value for name" in missing and "--var name=VALUE" in missing
        assert git(project, "branch", "--format=%(refname:short)").split() == ["main"]

        agent = data(await client.call_tool("spawn_agent", {"project": str(project), "template": "greet",
                                                            "vars": {"name": "Ada"}}))
        assert (agent["prompt"], agent["title"]) == ("Write a templated greeting for Ada.", "Greeting")
        done = await wait(client, agent["id"])
        assert done["status"] == "completed"
        assert (Path(done["environment"]["host_path"]) / "GREETING.md").read_text() == "Hello, Ada!\n"
        removed = data(await client.call_tool("remove_template", {"name": "greet", "project": str(project)}))
        assert removed["message"] == f"removed template 'greet' of {project}"
        assert data(await client.call_tool("list_templates", {})) == {"templates": [], "total": 0}
