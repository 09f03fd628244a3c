"""Code actions from ``palot-lsp``, as a real client receives and runs them, on the real server."""

from __future__ import annotations

from pathlib import Path

from lsp_support import (
    README,
    code_actions,
    diagnostics,
    eventually,
    lsp_client,
    messages,
    open_file,
    palot_home,
    run_action,
    workspace,
)
from lsprotocol import types as lsp
from pytest_lsp import LanguageClient

__all__ = ["lsp_client", "palot_home", "workspace"]  # fixtures

SELECTION = lsp.Range(lsp.Position(0, 0), lsp.Position(3, 0))  # the whole README, as an editor selects it


def titled(actions: list[lsp.CodeAction], prefix: str) -> lsp.CodeAction:
    [action] = [a for a in actions if a.title.startswith(prefix)]
    return action


async def test_fix_with_an_agent_on_a_selection_then_show_and_apply_its_change_to_the_file(
    lsp_client: LanguageClient, workspace: Path
):
    uri = open_file(lsp_client, workspace / "README.md")
    actions = await code_actions(lsp_client, uri, SELECTION)
    assert [(a.title, a.kind) for a in actions] == [
        ("Ask an agent about this", lsp.CodeActionKind.Empty), ("Fix with an agent", lsp.CodeActionKind.QuickFix)]
    assert all(a.command is None and a.data for a in actions)  # this client resolves the command when picked

    agent = await run_action(lsp_client, titled(actions, "Fix with an agent"))
    # The selected lines travel with the prompt; "TODO: edit readme" picks the scripted edit.
    assert agent["prompt"] == f"Fix the problems in this code.\n\nREADME.md, lines 1–3:\n```markdown\n{README}```\n"
    [change] = await eventually(lambda: diagnostics(lsp_client, uri, "agent-change"), what="the agent's edit")
    await eventually(lambda: messages(lsp_client, f"Agent {agent['id']} “Fix the problems in this code.” completed"),
                     what="completion")

    cursor = lsp.Range(lsp.Position(0, 4), lsp.Position(0, 4))
    on_change = await code_actions(lsp_client, uri, cursor, [change])
    label = f"{agent['id']} “Fix the problems in this code.”"
    assert [a.title for a in on_change] == [f"Show the agent's change: {label}",
                                           f"Apply the agent's change to this file: {label}",
                                           f"Request a change from {label} here"]
    assert await code_actions(lsp_client, uri, lsp.Range(lsp.Position(2, 0), lsp.Position(2, 0))) == []

    shown = await run_action(lsp_client, on_change[0])
    assert shown["files"] == ["README.md"] and lsp_client.shown_documents[-1].uri == shown["uri"]
    applied = await run_action(lsp_client, on_change[1])
    assert applied == {"agent": agent["id"], "files": ["README.md"]}
    assert (workspace / "README.md").read_text() == README.replace("sample project", "sample project, edited by an "
                                                                                       "agent")
    assert [p.title for r in lsp_client.progress_reports.values() for p in r
            if isinstance(p, lsp.WorkDoneProgressBegin)] == ["Spawning a Palot agent", "Applying an agent's changes"]


async def test_another_servers_diagnostic_is_fixed_by_an_agent_given_the_problem_and_the_lines(
    lsp_client: LanguageClient, workspace: Path
):
    uri = open_file(lsp_client, workspace / "README.md")
    lint = lsp.Diagnostic(range=lsp.Range(lsp.Position(2, 0), lsp.Position(2, 17)), source="markdownlint",
                          message="MD001: write hello before the TODO", severity=lsp.DiagnosticSeverity.Warning)
    actions = await code_actions(lsp_client, uri, lsp.Range(lsp.Position(2, 3), lsp.Position(2, 3)), [lint])
    [fix] = actions
    assert fix.title == "Fix this diagnostic with an agent: MD001: write hello before the TODO"
    assert fix.kind == lsp.CodeActionKind.QuickFix and list(fix.diagnostics or []) == [lint]

    agent = await run_action(lsp_client, fix)
    assert agent["prompt"] == ("Fix this problem reported by markdownlint: MD001: write hello before the TODO\n\n"
                               "README.md, line 3:\n```markdown\nTODO: edit readme\n```\n")
    assert agent["title"].startswith("Fix this problem reported by markdownlint")
    assert messages(lsp_client, f"Agent {agent['id']} “Fix this problem reported by markdownlint")
