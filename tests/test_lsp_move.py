"""``palot.move`` from a real LSP client: a live agent moves worktree → container, through the Palot service.

The service runs the moves, so the container engine it uses is the one of *its* environment: this module
starts its own service once the test engine runs (``DOCKER_HOST``), and the engine-less test its own.
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest
from conftest import Engine, git
from lsp_support import (
    eventually,
    execute,
    lsp_client,
    messages,
    serve,
    start_lsp,
    workspace,
)
from lsprotocol import types as lsp
from pygls.exceptions import JsonRpcException
from pytest_lsp import LanguageClient
from service_support import running_service

from palot import PalotPaths
from palot.api import STEPS

__all__ = ["lsp_client", "workspace"]  # fixtures


@pytest.fixture(scope="module")
def palot_home(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, opencode_bin: Path,
               container_engine: Engine) -> PalotPaths:
    """This module's Palot service, started once the test's container engine runs (it uses DOCKER_HOST)."""
    return serve(tmp_path_factory.mktemp("palot-lsp-move") / "home", request)

MOVING = "Moving a Palot agent"


async def spawn_completed(client: LanguageClient, prompt: str, title: str) -> dict[str, Any]:
    """A worktree agent, spawned from the editor, whose turn has finished (as the editor was told)."""
    agent = await execute(client, "palot.spawn", {"prompt": prompt, "title": title})
    await eventually(lambda: messages(client, f"Agent {agent['id']} “{title}” completed"), what="completion")
    return await listed(client, agent["id"])


async def listed(client: LanguageClient, agent_id: str) -> dict[str, Any]:
    [agent] = [a for a in await execute(client, "palot.list") if a["id"] == agent_id]
    return agent


async def error_of(client: LanguageClient, command: str, *arguments: Any) -> JsonRpcException:
    with pytest.raises(JsonRpcException) as e:
        await execute(client, command, *arguments)
    return e.value


def progress_runs(client: LanguageClient, title: str) -> list[list[Any]]:
    """Every ``$/progress`` run (begin … end) with this title, in the order they began."""
    return [reports for reports in client.progress_reports.values()
            if reports and isinstance(reports[0], lsp.WorkDoneProgressBegin) and reports[0].title == title]


def unchanged(before: dict[str, Any], after: dict[str, Any]) -> None:
    assert after["environment"] == before["environment"]
    assert (after["status"], after["session_id"]) == (before["status"], before["session_id"])
    assert (Path(after["environment"]["directory"]) / "NOTES.md").is_file()  # its work is where it was


async def test_moving_an_agent_to_the_environment_it_is_in_is_refused_and_changes_nothing(
    lsp_client: LanguageClient,
):
    caps = lsp_client.initialize_result.capabilities  # type: ignore[attr-defined]
    assert "palot.move" in caps.execute_command_provider.commands
    before = await spawn_completed(lsp_client, "write notes", "Notes")
    assert before["environment"]["type"] == "worktree"

    e = await error_of(lsp_client, "palot.move", before["id"], "worktree")  # positional arguments work too
    assert e.code == lsp.LSPErrorCodes.RequestFailed
    assert e.message == f"agent {before['id']} is already in a worktree — " \
                        "move it to another kind of environment: container, cloud"
    assert e.data["error"] == "invalid_input"
    [run] = progress_runs(lsp_client, MOVING)
    assert [type(r) for r in run] == [lsp.WorkDoneProgressBegin, lsp.WorkDoneProgressEnd]  # no step started
    assert run[-1].message == "failed"

    # Arguments the command cannot use are InvalidParams, naming what is expected.
    e = await error_of(lsp_client, "palot.move", {"agent": before["id"], "target": "vm"})
    assert e.code == -32602 and "'target' must be one of worktree, container, cloud, got 'vm'" in e.message
    e = await error_of(lsp_client, "palot.move", {"agent": before["id"], "target": "container", "options": "2g"})
    assert e.code == -32602 and "palot.move: 'options' must be a JSON object, got '2g'" in e.message
    e = await error_of(lsp_client, "palot.move", {"agent": before["id"]})
    assert e.code == -32602 and e.message.startswith("palot.move needs 'target'; pass one object: {\"agent\": string")

    unchanged(before, await listed(lsp_client, before["id"]))
    assert not messages(lsp_client, "now runs in")
    assert [m for m in lsp_client.messages if m.type == lsp.MessageType.Error] == []  # answers, not pop-ups


async def test_a_move_to_a_container_without_an_engine_says_how_to_start_one(
    tmp_path: Path, workspace: Path, monkeypatch: pytest.MonkeyPatch, opencode_bin: Path
):
    monkeypatch.setenv("DOCKER_HOST", "unix:///nonexistent/palot-test/docker.sock")  # the service's environment
    async with running_service(tmp_path / "home"):
        await _move_without_an_engine(PalotPaths(tmp_path / "home"), workspace)


async def _move_without_an_engine(home: PalotPaths, workspace: Path) -> None:
    client = await start_lsp(home, workspace)
    try:
        before = await spawn_completed(client, "write notes", "Notes")
        e = await error_of(client, "palot.move", {"agent": before["id"], "target": "container",
                                                  "options": {"memory": "1g"}})
        assert e.code == lsp.LSPErrorCodes.RequestFailed
        assert e.message.startswith("no container engine is reachable")
        assert e.data["error"] == "engine_unavailable" and "DOCKER_HOST" in e.data["fix"]
        unchanged(before, await listed(client, before["id"]))
    finally:
        await client.shutdown_session()
        await client.stop()


async def test_a_worktree_agent_moves_to_a_container_with_progress_and_says_where_it_runs(
    container_engine: Engine, lsp_client: LanguageClient, workspace: Path
):
    before = await spawn_completed(lsp_client, "write notes", "Notes")
    worktree = Path(before["environment"]["directory"])

    result = await execute(lsp_client, "palot.move", {"agent": before["id"], "target": "container",
                                                      "options": {"memory": "1g", "cpus": 1}})
    assert (result["agent_id"], result["source"], result["target"], result["state"]) == \
        (before["id"], "worktree", "container", "completed")
    assert result["branch"] == before["environment"]["branch"] == "palot/notes"
    assert result["files_changed"] == 1 and result["messages"] >= 2 and result["resumed"] is False

    # Every step of the move was a $/progress report, in order, between begin and end.
    [run] = progress_runs(lsp_client, MOVING)
    assert isinstance(run[0], lsp.WorkDoneProgressBegin)
    assert isinstance(run[-1], lsp.WorkDoneProgressEnd) and run[-1].message == "done"
    steps = [r.message for r in run[1:-1]]
    assert all(isinstance(r, lsp.WorkDoneProgressReport) for r in run[1:-1])
    assert [s.split("]")[0] + "]" for s in steps] == [f"[{n}/{len(STEPS)}]" for n in range(1, len(STEPS) + 1)]
    assert "exporting the conversation" in steps[2] and steps[-1] == "[9/9] removing the old worktree"

    # The editor is told where the agent now runs; the end of a move is not announced as a finished turn.
    [shown] = messages(lsp_client, "now runs in")
    assert shown.startswith(f"Agent {before['id']} “Notes” now runs in a container ({result['environment_id']}) "
                            "on branch palot/notes")
    assert len(messages(lsp_client, f"Agent {before['id']} “Notes” completed")) == 1

    after = await listed(lsp_client, before["id"])
    assert after["environment"]["type"] == "container" and after["environment"]["id"] == result["environment_id"]
    assert (after["status"], after["session_id"], after["environment"]["branch"]) == \
        ("completed", before["session_id"], "palot/notes")
    assert not worktree.exists()  # the old worktree is gone
    shown_diff = await execute(lsp_client, "palot.showDiff", {"agent": before["id"]})
    assert shown_diff["files"] == ["NOTES.md"]  # its work came along

    # Archived from the editor: the container goes, the branch with the work comes home.
    archived = await execute(lsp_client, "palot.archive", {"agent": before["id"]})
    assert archived["status"] == "archived"
    assert git(workspace, "diff", "--name-only", "main", "palot/notes").split() == ["NOTES.md"]
    names = subprocess.run(["docker", "-H", container_engine.host, "ps", "-a", "--format", "{{.Names}}"],
                           capture_output=True, text=True, check=True).stdout.split()
    assert f"palot-{result['environment_id']}" not in names
