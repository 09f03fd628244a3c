"""Parity: every action of ``palot.api`` is a ``palot-lsp`` command taking every field of its request, by its api
name, checked by the api; from a real LSP client, through the real Palot service with the scripted model."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from conftest import git
from lsp_support import (
    README,
    eventually,
    execute,
    lsp_client,
    messages,
    open_file,
    palot_home,
    workspace,
)
from lsprotocol import types as lsp
from pygls.exceptions import JsonRpcException
from pytest_lsp import LanguageClient

from palot import api
from palot_lsp import ACTION_COMMANDS, COMMAND_FIELDS, OBJECT_FIELDS

__all__ = ["lsp_client", "palot_home", "workspace"]  # fixtures


async def error_of(client: LanguageClient, command: str, *arguments: Any) -> JsonRpcException:
    with pytest.raises(JsonRpcException) as e:
        await execute(client, command, *arguments)
    return e.value


def test_every_action_has_a_command_taking_every_field_by_its_api_name():
    assert set(ACTION_COMMANDS) == set(api.ACTIONS)
    for action, spec in api.ACTIONS.items():
        fields = COMMAND_FIELDS[ACTION_COMMANDS[action]]
        assert set(spec.request.model_fields) <= set(fields), action
    for command in (ACTION_COMMANDS["spawn"], ACTION_COMMANDS["move"]):
        assert OBJECT_FIELDS[command] == {"options": tuple(api.ContainerOptions.model_fields)}
        assert set(OBJECT_FIELDS[command]["options"]) == {"memory", "cpus", "pids", "network", "ports"}
    assert ACTION_COMMANDS["spawn"] == "palot.spawn" and ACTION_COMMANDS["reply"] == "palot.replyPermission"
    assert ACTION_COMMANDS["create_pr"] == "palot.createPr" and ACTION_COMMANDS["diff"] == "palot.showDiff"


async def test_the_editor_is_offered_a_command_for_every_action(lsp_client: LanguageClient):
    caps = lsp_client.initialize_result.capabilities  # type: ignore[attr-defined]
    assert caps.execute_command_provider is not None
    offered = set(caps.execute_command_provider.commands)
    assert {ACTION_COMMANDS[action] for action in api.ACTIONS} <= offered
    status = await execute(lsp_client, "palot.status")
    assert status["api_version"] == api.API_VERSION and status["opencode_connected"] is True


async def test_a_spawn_with_every_option_works_and_bad_arguments_get_the_apis_clear_errors(
    lsp_client: LanguageClient, workspace: Path
):
    # A branch to start from, with a file main does not have.
    git(workspace, "checkout", "-q", "-b", "release")
    (workspace / "RELEASE.md").write_text("release notes\n")
    git(workspace, "add", "-A")
    git(workspace, "commit", "-q", "-m", "release")
    git(workspace, "checkout", "-q", "main")

    models = await execute(lsp_client, "palot.models", {"project": str(workspace)})
    assert models and all(isinstance(m, str) for m in models)

    # Unknown names and bad values are refused before anything is spawned.
    e = await error_of(lsp_client, "palot.spawn", {"prompt": "edit readme", "bogus": 1})
    assert e.code == -32602
    assert e.message.startswith("palot.spawn: unknown argument 'bogus'; it takes: prompt, uri, range, project, "
                                "environment, title, model, base_branch, branch, setup_script, permission_mode, "
                                "options")
    e = await error_of(lsp_client, "palot.spawn", {"prompt": "edit readme", "options": {"cpus": -1}})
    assert e.code == -32602 and e.message.startswith("palot.spawn: options.cpus: Input should be greater than 0")
    assert e.data["error"] == "invalid_input" and "options.cpus" in e.data["fix"]
    e = await error_of(lsp_client, "palot.spawn", {"prompt": "edit readme", "options": {"gpus": 1}})
    assert e.code == -32602 and e.message.startswith("palot.spawn: options.gpus: Extra inputs are not permitted")
    e = await error_of(lsp_client, "palot.spawn", {"prompt": "edit readme", "environment": "vm"})
    assert e.code == -32602 and "'environment' must be one of worktree, container, cloud, got 'vm'" in e.message
    assert await execute(lsp_client, "palot.list") == []

    agent = await execute(lsp_client, "palot.spawn", {
        "prompt": "edit readme", "project": str(workspace), "environment": "worktree", "title": "Every option",
        "model": models[0], "base_branch": "release", "branch": "palot/every-option",
        "setup_script": "echo ready > SETUP.txt", "permission_mode": "auto"})
    assert (agent["title"], agent["model"], agent["permission_mode"]) == ("Every option", models[0], "auto")
    assert agent["environment"]["type"] == "worktree" and agent["environment"]["branch"] == "palot/every-option"
    assert agent["environment"]["base_commit"] == git(workspace, "rev-parse", "release").strip()
    worktree = Path(agent["environment"]["host_path"])
    assert (worktree / "RELEASE.md").is_file() and (worktree / "SETUP.txt").read_text() == "ready\n"

    done = await execute(lsp_client, "palot.wait", {"agent": agent["id"], "timeout": 60})
    assert done["status"] == "completed"
    assert (await execute(lsp_client, "palot.get", agent["id"]))["id"] == agent["id"]
    assert any(item["kind"] == "edit" for item in await execute(lsp_client, "palot.activity", {"agent": agent["id"]}))
    conversation = await execute(lsp_client, "palot.messages", agent["id"])
    assert conversation[0]["role"] == "user"
    where = await execute(lsp_client, "palot.environment", agent["id"])
    assert (where["type"], where["host_path"]) == ("worktree", str(worktree))
    assert await execute(lsp_client, "palot.moves", agent["id"]) == []
    assert str(workspace) in [p["path"] for p in await execute(lsp_client, "palot.projects")]
    audit = await execute(lsp_client, "palot.audit", {"agent": agent["id"], "limit": 50})
    assert audit and all(entry["agent_id"] == agent["id"] for entry in audit)

    destroyed = await execute(lsp_client, "palot.destroy", {"agent": agent["id"], "force": True})
    assert destroyed["ok"] is True
    e = await error_of(lsp_client, "palot.get", agent["id"])
    assert e.code == lsp.LSPErrorCodes.RequestFailed and e.data["error"] == "agent_not_found"


async def test_one_file_is_applied_as_the_editors_own_edit_when_git_refuses_a_dirty_checkout(
    lsp_client: LanguageClient, workspace: Path
):
    edits: list[lsp.ApplyWorkspaceEditParams] = []

    @lsp_client.feature(lsp.WORKSPACE_APPLY_EDIT)
    def apply_edit(params: lsp.ApplyWorkspaceEditParams) -> lsp.ApplyWorkspaceEditResult:
        edits.append(params)
        return lsp.ApplyWorkspaceEditResult(applied=True)

    (workspace / "NOTES.md").write_text("notes\n")
    git(workspace, "add", "NOTES.md")
    git(workspace, "commit", "-qm", "notes")
    uri = open_file(lsp_client, workspace / "README.md")
    # The setup script leaves a second changed file: only README.md is asked for.
    agent = await execute(lsp_client, "palot.spawn", {"prompt": "edit readme", "setup_script": "echo x > OTHER.txt"})
    await eventually(lambda: messages(lsp_client, f"Agent {agent['id']} “edit readme” completed"),
                     what="completion")
    shown = await execute(lsp_client, "palot.showDiff", {"agent": agent["id"]})
    assert sorted(shown["files"]) == ["OTHER.txt", "README.md"]

    (workspace / "NOTES.md").write_text("my own unfinished notes\n")  # git refuses to apply onto this checkout
    applied = await execute(lsp_client, "palot.apply", {"agent": agent["id"], "path": "README.md"})
    assert applied == {"agent": agent["id"], "files": ["README.md"], "edited": uri}
    [params] = edits
    assert params.label == f"Apply {agent['id']} “edit readme”'s change to README.md"
    [change] = params.edit.document_changes or []
    assert isinstance(change, lsp.TextDocumentEdit) and change.text_document.uri == uri
    [edit] = change.edits
    assert edit.range.start == lsp.Position(0, 0)
    assert edit.new_text.startswith("# sample project, edited by an agent\n")
    # The editor changed its buffer; the checkout on disk and the other file are untouched until it saves.
    assert (workspace / "README.md").read_text() == README and not (workspace / "OTHER.txt").exists()
    assert messages(lsp_client, "in the editor (save the file to keep it)")

    # A document whose lines the agent changed were edited meanwhile conflicts: nothing is edited.
    lsp_client.text_document_did_change(lsp.DidChangeTextDocumentParams(
        text_document=lsp.VersionedTextDocumentIdentifier(uri=uri, version=2),
        content_changes=[lsp.TextDocumentContentChangeWholeDocument(text="# my own title\n")]))
    e = await error_of(lsp_client, "palot.apply", {"agent": agent["id"], "path": "README.md"})
    assert e.code == lsp.LSPErrorCodes.RequestFailed
    assert e.message.startswith("README.md no longer has the lines 1–3 the agent changed: nothing was changed")
    assert len(edits) == 1


async def test_one_file_not_open_in_the_editor_is_applied_by_the_service_and_audited(
    lsp_client: LanguageClient, workspace: Path
):
    agent = await execute(lsp_client, "palot.spawn", {"prompt": "edit readme", "setup_script": "echo x > OTHER.txt"})
    await eventually(lambda: messages(lsp_client, f"Agent {agent['id']} “edit readme” completed"),
                     what="completion")
    applied = await execute(lsp_client, "palot.apply", {"agent": agent["id"], "path": "README.md"})
    assert applied == {"agent": agent["id"], "files": ["README.md"]}
    # Only that file reached the checkout on disk, through the service (which audits it).
    assert (workspace / "README.md").read_text().startswith("# sample project, edited by an agent\n")
    assert not (workspace / "OTHER.txt").exists()
    audit = await execute(lsp_client, "palot.audit", {"agent": agent["id"]})
    assert [e["detail"] for e in audit if e["event"] == "applied"] == [{"files": ["README.md"], "path": "README.md"}]
