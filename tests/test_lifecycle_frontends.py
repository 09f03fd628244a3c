"""Retry, request changes and bulk actions from every front end, each the real client on a real service:
the ``palot`` command (a plan, then a question in a terminal or --yes), MCP tools (a dry run first), the
language server (a code action on an agent's changed lines; a bulk plan asked with showMessageRequest) and
the notebook dashboard (buttons and forms)."""

from __future__ import annotations

import asyncio
import json
import os
import pty
import subprocess
from pathlib import Path

from conftest import SCRIPTS, git, make_repo
from jupyter_support import press
from lsp_support import (
    code_actions,
    diagnostics,
    eventually,
    execute,
    lsp_client,
    messages,
    open_file,
    palot_home,
    workspace,
)
from lsprotocol import types as lsp
from mcp import Client
from mcp_support import data, error_text, mcp_server
from palot import api
from palot.client import PalotClient
from palot_jupyter import Dashboard
from pytest_lsp import LanguageClient
from service_support import running_service
from test_cli import PALOT

__all__ = ["lsp_client", "palot_home", "workspace"]  # fixtures

SCRIPT = SCRIPTS / "lifecycle.json"
Status = api.AgentStatus


def _files(agent: api.Agent) -> Path:
    return Path(agent.environment.host_path or agent.environment.directory)


async def _settled(palot: PalotClient, repo: Path, prompt: str, **options: object) -> api.Agent:
    agent = await palot.spawn(repo, prompt, **options)  # type: ignore[arg-type]
    return await palot.wait(agent.id, timeout=90)


def _palot(home: Path, *args: str, stdin: int | None = subprocess.DEVNULL) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(PALOT), *args], env={**os.environ, "PALOT_HOME": str(home), "COLUMNS": "200"},
                          stdin=stdin, capture_output=True, text=True, timeout=120)


def _in_a_terminal(home: Path, answer: str, *args: str) -> subprocess.CompletedProcess[str]:
    """``palot`` with a terminal as its stdin, where the person types ``answer``."""
    main, terminal = pty.openpty()
    try:
        os.write(main, answer.encode())
        return _palot(home, *args, stdin=terminal)
    finally:
        os.close(main)
        os.close(terminal)


# --- the command line ---------------------------------------------------------------------------------


async def test_the_command_line_plans_bulk_archives_asks_or_takes_yes_requests_changes_and_retries(
        tmp_path: Path, opencode_bin: Path) -> None:
    home, repo, other = tmp_path / "home", make_repo(tmp_path / "web"), make_repo(tmp_path / "backend")
    async with running_service(home, SCRIPT) as palot:
        first, second = await asyncio.gather(_settled(palot, repo, "write a greeting module"),
                                             _settled(palot, repo, "write a greeting module", title="second"))
        elsewhere = await _settled(palot, other, "write a greeting module")
        failed = await _settled(palot, repo, "flaky job")
        assert [a.status for a in (first, second, elsewhere, failed)] == [Status.COMPLETED] * 3 + [Status.FAILED]

        # Request changes: comments as PATH:LINE:TEXT reach the agent with their diff lines.
        bad = _palot(home, "agents", "request-changes", first.id, "--comment", "greeting.py:two:oops")
        assert bad.returncode == 2 and "is not a review comment of the form PATH:LINE:COMMENT" in bad.stderr
        sent = _palot(home, "agents", "request-changes", first.id, "--comment", "greeting.py:2:use an f-string",
                      "--comment", "greeting.py:1-3:add a docstring", "--note", "thanks")
        assert sent.returncode == 0, sent.stderr
        first = await palot.wait(first.id, timeout=90)
        received = (_files(first) / "review-received.txt").read_text()
        assert "Comment: use an f-string" in received and "greeting.py, lines 1-3:" in received
        assert "Also: thanks" in received

        # Not in a terminal and no --yes: the plan, and how to carry it out; nothing is done.
        planned = _palot(home, "agents", "archive", "--status", "completed", "--project", str(repo))
        assert planned.returncode == 0, planned.stderr
        assert first.id in planned.stdout and second.id in planned.stdout and elsewhere.id not in planned.stdout
        assert "2 agents selected: 2 to archive" in planned.stdout and "run it again with --yes" in planned.stdout
        assert {(await palot.get(a.id)).status for a in (first, second)} == {Status.COMPLETED}

        # In a terminal the person is asked: "n" does nothing, "y" archives them.
        declined = _in_a_terminal(home, "n\n", "agents", "archive", "--status", "completed", "--project", str(repo))
        assert "Archive these 2 agents? [y/N]" in declined.stdout and "nothing was done" in declined.stdout
        assert (await palot.get(second.id)).status == Status.COMPLETED
        done = _in_a_terminal(home, "y\n", "agents", "archive", "--status", "completed", "--project", str(repo))
        assert done.returncode == 0, done.stdout + done.stderr
        assert done.stdout.count("archived; its work is on branch") == 2
        assert {(await palot.get(a.id)).status for a in (first, second)} == {Status.ARCHIVED}
        assert (await palot.get(elsewhere.id)).status == Status.COMPLETED

        # Destroy in bulk keeps unmerged work unless forced; --yes carries out the plan without a question.
        kept = _palot(home, "agents", "destroy", "--status", "failed", "--yes", "--json")
        assert [(i["agent_id"], i["outcome"]) for i in json.loads(kept.stdout)["items"]] == [(failed.id, "skipped")]
        one_and_filters = _palot(home, "agents", "destroy", failed.id, "--status", "failed")
        assert one_and_filters.returncode == 2 and "not both" in one_and_filters.stderr

        retried = json.loads(_palot(home, "agents", "retry", failed.id, "--json").stdout)
        assert retried["title"] == "flaky job (retry)" and retried["prompt"] == "flaky job"
        assert (await palot.get(failed.id)).status == Status.FAILED


# --- MCP -----------------------------------------------------------------------------------------------


async def test_mcp_tools_plan_a_bulk_action_then_carry_it_out_request_changes_and_retry(
        tmp_path: Path, opencode_bin: Path) -> None:
    repo = make_repo(tmp_path / "project")
    async with running_service(tmp_path / "home", SCRIPT) as palot, Client(await mcp_server(palot)) as client:
        agent = await _settled(palot, repo, "write a greeting module")
        failed = await _settled(palot, repo, "flaky job")

        off = error_text(await client.call_tool("request_changes", {
            "agent": agent.id, "comments": [{"path": "nothere.py", "line": 1, "comment": "why"}]}))
        assert "nothere.py" in off and "greeting.py" in off
        view = data(await client.call_tool("request_changes", {
            "agent": agent.id, "comments": [{"path": "greeting.py", "line": 3, "comment": "return early"}]}))
        assert view["id"] == agent.id
        await palot.wait(agent.id, timeout=90, until=[Status.COMPLETED])
        assert "Comment: return early" in (_files(agent) / "review-received.txt").read_text()

        plan = data(await client.call_tool("bulk_agents", {"operation": "archive", "status": "completed"}))
        assert plan["dry_run"] and [(i["agent_id"], i["outcome"]) for i in plan["items"]] == [(agent.id, "would")]
        assert (await palot.get(agent.id)).status == Status.COMPLETED
        done = data(await client.call_tool("bulk_agents", {"operation": "archive", "status": "completed",
                                                          "agents": [agent.id], "dry_run": False}))
        assert [i["outcome"] for i in done["items"]] == ["done"]
        assert (await palot.get(agent.id)).status == Status.ARCHIVED
        assert "say which agents" in error_text(await client.call_tool("bulk_agents", {"operation": "abort"}))

        retry = data(await client.call_tool("retry_agent", {"agent": failed.id}))
        assert retry["title"] == "flaky job (retry)" and retry["id"] != failed.id


# --- the language server ---------------------------------------------------------------------------------


async def test_the_editor_requests_a_change_on_an_agents_lines_and_confirms_a_bulk_archive(
        lsp_client: LanguageClient, palot_home, workspace: Path) -> None:
    uri = open_file(lsp_client, workspace / "README.md")
    agent = await execute(lsp_client, "palot.spawn", {"prompt": "edit readme", "project": str(workspace)})
    async with PalotClient(palot_home.home, autostart=False) as palot:
        await palot.wait(agent["id"], timeout=90, until=[Status.COMPLETED])
        [change] = await eventually(lambda: diagnostics(lsp_client, uri, "agent-change"), what="the agent's edit")
        actions = await code_actions(lsp_client, uri, change.range, [change])
        [request] = [a for a in actions if a.title.startswith("Request a change from")]
        assert request.title == f"Request a change from {agent['id']} “edit readme” here"

        # The editor has no free-text box: the person picks a comment among a few offered.
        lsp_client.answer_question = lambda params: next(  # type: ignore[attr-defined]
            (a for a in params.actions or [] if a.title == "Undo this change"), None)
        resolved = await lsp_client.code_action_resolve_async(request)
        assert resolved.command is not None
        await lsp_client.workspace_execute_command_async(lsp.ExecuteCommandParams(
            command=resolved.command.command, arguments=resolved.command.arguments))
        await eventually(lambda: messages(lsp_client, f"Sent 1 review comment to agent {agent['id']}"),
                         what="the comment sent")
        asked = [q for q in lsp_client.questions if "What should agent" in q.message]  # type: ignore[attr-defined]
        assert asked and "README.md, line 1" in asked[0].message
        sent = [m.text for m in await palot.messages(agent["id"]) if m.role == "user"]
        assert "README.md, line 1:" in sent[-1] and "Comment: Undo this change" in sent[-1]
        assert "+# sample project, edited by an agent" in sent[-1] or "edited by an agent" in sent[-1]
        await palot.wait(agent["id"], timeout=90, until=[Status.COMPLETED])

        # A bulk archive: the plan is shown and asked; the button carries it out.
        lsp_client.answer_question = lambda params: next(  # type: ignore[attr-defined]
            (a for a in params.actions or [] if a.title.startswith("Archive")), None)
        plan = await execute(lsp_client, "palot.bulk", {"operation": "archive", "agents": [agent["id"]]})
        assert plan["dry_run"] and [i["outcome"] for i in plan["items"]] == ["would"]
        archived = await eventually(
            lambda: messages(lsp_client, f"{agent['id']}  completed"), what="the bulk archive's outcome")
        assert "archived; its work is on branch" in archived[-1]
        assert (await palot.get(agent["id"])).status == Status.ARCHIVED
        question = [q for q in lsp_client.questions if q.message.startswith("Archive 1 agent")]  # type: ignore[attr-defined]
        assert question and agent["id"] in question[0].message


# --- the notebook ------------------------------------------------------------------------------------------


async def test_the_dashboard_retries_requests_changes_and_previews_then_confirms_a_bulk_archive(
        tmp_path: Path, opencode_bin: Path) -> None:
    repo = make_repo(tmp_path / "project")
    async with running_service(tmp_path / "home", SCRIPT) as palot:
        dash = Dashboard(palot)
        await dash.start()
        try:
            agent = await _settled(palot, repo, "write a greeting module")
            failed = await _settled(palot, repo, "flaky job")
            await dash.sync()

            dash.select(failed.id)
            await dash.sync()
            assert not dash.detail.retry_button.disabled
            press(dash.detail.retry_button)
            await dash.sync()
            retry = dash.agents[dash.selected]  # the new agent is selected
            assert retry.id != failed.id and retry.title == "flaky job (retry)"

            dash.select(agent.id)
            await dash.sync()
            dash.detail.review_comments.value = "greeting.py:2:use an f-string\n\nREADME.md:1:nope\n"
            press(dash.detail.review_button)
            await dash.sync()
            assert "README.md, which the agent did not change" in dash.detail.message.value
            dash.detail.review_comments.value = "greeting.py:2:use an f-string <i>please</i>"
            press(dash.detail.review_button)
            await dash.sync()
            assert "Sent 1 review comment(s)." in dash.detail.message.value
            await palot.wait(agent.id, timeout=90, until=[Status.COMPLETED])
            assert "use an f-string <i>please</i>" in (_files(agent) / "review-received.txt").read_text()

            bulk = dash.overview.bulk
            bulk.form.operation.value = "archive"
            bulk.form.status.value = ("completed",)
            press(bulk.preview_button)
            await dash.sync()
            assert bulk.planned() == [agent.id] and bulk.confirm_button.layout.display is None
            assert "nothing is done until you confirm" in bulk.result.value
            assert (await palot.get(agent.id)).status == Status.COMPLETED
            press(bulk.confirm_button)
            await dash.sync()
            assert (await palot.get(agent.id)).status == Status.ARCHIVED
            assert "1 done" in bulk.result.value and bulk.confirm_button.layout.display == "none"
            assert git(repo, "show", f"{agent.branch}:greeting.py").startswith("def greet")
        finally:
            await dash.aclose()
