"""Where agents work in the open files: live diagnostics and hovers from ``palot-lsp``, on the real server."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from lsp_support import (
    code_actions,
    diagnostics,
    eventually,
    execute,
    lsp_client,
    messages,
    open_file,
    palot_home,
    run_action,
    workspace,
)
from lsprotocol import types as lsp
from pytest_lsp import LanguageClient

from palot import PalotPaths

__all__ = ["lsp_client", "palot_home", "workspace"]  # fixtures

EDITED = "+# sample project, edited by an agent"


def hover_at(client: LanguageClient, uri: str, line: int):  # type: ignore[no-untyped-def]
    return client.text_document_hover_async(lsp.HoverParams(
        text_document=lsp.TextDocumentIdentifier(uri=uri), position=lsp.Position(line, 3)))


async def test_an_agents_edit_of_an_open_file_shows_live_with_its_status_until_archived(
    lsp_client: LanguageClient, workspace: Path
):
    uri = open_file(lsp_client, workspace / "README.md")
    agent = await execute(lsp_client, "palot.spawn", {"prompt": "edit readme", "title": "Reword the title"})

    [diag] = await eventually(lambda: diagnostics(lsp_client, uri, "agent-change"), what="the agent's edit")
    assert diag.severity == lsp.DiagnosticSeverity.Information and diag.source == "palot"
    assert diag.range == lsp.Range(lsp.Position(0, 0), lsp.Position(0, len("# sample project")))
    assert diag.message.startswith(f"Agent {agent['id']} “Reword the title” (")
    assert diag.message.endswith(") changed line 1 on palot/reword-the-title")
    await eventually(lambda: [d for d in diagnostics(lsp_client, uri) if "(completed)" in d.message],
                     what="the status in the diagnostic to become completed")

    hover = await hover_at(lsp_client, uri, 0)
    assert isinstance(hover.contents, lsp.MarkupContent) and hover.contents.kind == lsp.MarkupKind.Markdown
    assert f"`{agent['id']}` “Reword the title” — **completed**" in hover.contents.value
    assert "branch `palot/reword-the-title`" in hover.contents.value
    assert f"-# sample project\n{EDITED}" in hover.contents.value
    assert await hover_at(lsp_client, uri, 2) is None
    [lens, apply_lens] = await lsp_client.text_document_code_lens_async(lsp.CodeLensParams(
        text_document=lsp.TextDocumentIdentifier(uri=uri)))
    assert lens.range.start.line == 0 and lens.command is not None and apply_lens.command is not None
    assert lens.command.title == f"Palot: {agent['id']} “Reword the title” (completed), 1 change"
    assert (lens.command.command, apply_lens.command.command) == ("palot.showDiff", "palot.apply")
    assert list(lens.command.arguments or []) == [{"agent": agent["id"], "path": "README.md"}]
    assert (workspace / "README.md").read_text().startswith("# sample project\n")  # the checkout is untouched

    await execute(lsp_client, "palot.archive", {"agent": agent["id"]})
    await eventually(lambda: len(lsp_client.diagnostics[uri]) == 0, 10, "the diagnostics to clear")
    assert list(await lsp_client.text_document_code_lens_async(lsp.CodeLensParams(
        text_document=lsp.TextDocumentIdentifier(uri=uri))) or []) == []
    assert lsp_client.code_lens_refreshes >= 2  # type: ignore[attr-defined]  # the editor was asked to re-read


async def test_two_agents_changing_the_same_lines_get_an_overlap_warning_even_one_from_the_cli(
    lsp_client: LanguageClient, workspace: Path, palot_home: PalotPaths
):
    uri = open_file(lsp_client, workspace / "README.md")
    mine = await execute(lsp_client, "palot.spawn", {"prompt": "edit readme", "title": "From the editor"})
    await eventually(lambda: diagnostics(lsp_client, uri, "agent-change"), what="the first agent's edit")
    # The second agent is spawned by another process, the `palot` command line.
    cli = subprocess.run([str(Path(sys.executable).with_name("palot")), "agents", "spawn", str(workspace),
                          "edit readme", "--title", "From the terminal"], capture_output=True, text=True,
                         env={**os.environ, "PALOT_HOME": str(palot_home.home)}, timeout=60)
    assert cli.returncode == 0, cli.stderr

    [warning] = await eventually(lambda: diagnostics(lsp_client, uri, "agent-overlap"), what="the overlap warning")
    assert warning.severity == lsp.DiagnosticSeverity.Warning and warning.range.start.line == 0
    assert f"Agents {mine['id']} “From the editor” (" in warning.message
    assert "“From the terminal” (" in warning.message and "both changed line 1: applying both may conflict" in \
        warning.message
    changes = diagnostics(lsp_client, uri, "agent-change")
    assert sorted(d.message.split("“")[1].split("”")[0] for d in changes) == ["From the editor", "From the terminal"]


async def test_a_pending_permission_on_an_open_file_is_a_warning_answered_by_a_code_action(
    lsp_client: LanguageClient, workspace: Path
):
    uri = open_file(lsp_client, workspace / "README.md")
    agent = await execute(lsp_client, "palot.spawn", {"prompt": "edit readme", "permissionMode": "ask"})

    [asking] = await eventually(lambda: diagnostics(lsp_client, uri, "agent-permission"), what="the request")
    assert asking.severity == lsp.DiagnosticSeverity.Warning and asking.range.start.line == 0
    assert asking.message == (f"Agent {agent['id']} “edit readme” is waiting for permission to edit README.md "
                              "(line 1): allow or reject it with a code action")
    assert messages(lsp_client, f"Agent {agent['id']} “edit readme” is waiting for permission: edit: README.md")

    cursor = lsp.Range(lsp.Position(0, 2), lsp.Position(0, 2))
    actions = await code_actions(lsp_client, uri, cursor, [asking])
    assert [a.title for a in actions] == [
        f"Allow {agent['id']} “edit readme” to edit README.md (once)",
        f"Allow {agent['id']} “edit readme” to edit README.md (always)",
        f"Reject {agent['id']} “edit readme”'s request to edit README.md",
    ]
    assert all(a.kind == lsp.CodeActionKind.QuickFix and list(a.diagnostics or []) == [asking] for a in actions)
    answered = await run_action(lsp_client, actions[0])
    assert answered["permissions"] == []

    await eventually(lambda: diagnostics(lsp_client, uri, "agent-change") and
                     not diagnostics(lsp_client, uri, "agent-permission"), what="the edit after the reply")
    await eventually(lambda: messages(lsp_client, f"Agent {agent['id']} “edit readme” completed"), what="completion")
