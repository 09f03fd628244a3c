"""Every read-only view of an agent works in every state, and says what is no longer available.

Archived container agents (their container, credentials and conversation are
gone), container agents whose container was removed behind Palot's back or
whose engine cannot be reached, and archived worktree agents: ``get``,
``activity``, ``messages``, ``diff`` and ``environment`` answer, and so does
``palot agents show`` as a user runs it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from conftest import Engine
from palot import AgentStatus, Palot

PALOT = Path(sys.executable).parent / "palot"


def cli(palot: Palot, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(PALOT), *args], env={**os.environ, "PALOT_HOME": str(palot.paths.home), **env},
                          capture_output=True, text=True, timeout=120)


def cli_json(palot: Palot, *args: str, **env: str) -> Any:
    out = cli(palot, *args, "--json", **env)
    assert out.returncode == 0, f"palot {' '.join(args)} exited {out.returncode}:\n{out.stdout}\n{out.stderr}"
    return json.loads(out.stdout)


async def finished_agent(palot: Palot, repo: Path, environment: str) -> str:
    agent = await palot.agents.spawn(repo, "write hello", environment=environment)
    agent = await palot.agents.wait(agent.id, timeout=120)
    assert agent.status == AgentStatus.COMPLETED, agent.error
    return agent.id


async def test_an_archived_container_agent_can_still_be_shown_and_says_its_conversation_is_gone(
    palot: Palot, repo: Path, container_engine: Engine
):
    agent_id = await finished_agent(palot, repo, "container")
    archived = await palot.agents.archive(agent_id)
    branch = archived.environment.branch
    assert branch

    agent = await palot.agents.get(agent_id)
    assert agent.status == AgentStatus.ARCHIVED and agent.environment.host_path is None
    assert agent.environment.unavailable == (
        f"the conversation is no longer available: the agent's container was archived; its work is on branch {branch}")
    [notice] = await palot.agents.activity(agent_id)
    assert (notice.kind, notice.verb) == ("notice", "the conversation is no longer available")
    assert branch in notice.summary
    assert await palot.agents.activity(agent_id, since=1) == []
    assert await palot.agents.messages(agent_id) == []
    diff = await palot.agents.diff(agent_id)  # the branch, as archiving kept it in the user's repository
    assert [f.path for f in diff.files] == ["hello.txt"] and diff.unavailable and branch in diff.unavailable
    env = await palot.agents.environment(agent_id)
    assert env.state == "stopped" and env.resources is None and env.unavailable == agent.environment.unavailable

    shown = cli(palot, "agents", "show", agent_id)
    assert shown.returncode == 0, shown.stderr
    assert "Traceback" not in shown.stderr
    assert "the conversation is no longer available" in shown.stdout and branch in shown.stdout
    data = cli_json(palot, "agents", "show", agent_id)
    assert data["agent"]["status"] == "archived"
    assert data["agent"]["environment"]["unavailable"] == agent.environment.unavailable
    assert [item["kind"] for item in data["activity"]] == ["notice"]
    assert cli_json(palot, "agents", "diff", agent_id)["files"][0]["path"] == "hello.txt"
    assert cli_json(palot, "agents", "env", agent_id)["unavailable"] == agent.environment.unavailable


async def test_a_container_agent_shows_clearly_when_its_engine_is_unreachable_or_its_container_is_gone(
    palot: Palot, repo: Path, container_engine: Engine
):
    agent_id = await finished_agent(palot, repo, "container")
    nowhere = {"DOCKER_HOST": "unix:///nonexistent/docker.sock"}

    # No engine for this command: the agent and its conversation (its server is still up) can be read;
    # the environment says the engine cannot be reached, with the fix.
    shown = cli(palot, "agents", "show", agent_id, **nowhere)
    assert shown.returncode == 0 and "Traceback" not in shown.stderr, shown.stderr
    assert "hello.txt" in shown.stdout
    env = cli_json(palot, "agents", "env", agent_id, **nowhere)
    assert env["state"] == "engine unreachable" and env["resources"] is None
    assert "engine" in env["unavailable"]
    envtext = cli(palot, "agents", "env", agent_id, **nowhere)
    assert envtext.returncode == 0 and "engine unreachable" in envtext.stdout, envtext.stderr

    # The container removed behind Palot's back: the conversation cannot be read now, and says why.
    env_id = palot.store.get_agent(agent_id).environment_id
    subprocess.run(["docker", "-H", container_engine.host, "rm", "-f", f"palot-{env_id}"], check=True,
                   capture_output=True)
    [notice] = await palot.agents.activity(agent_id)
    assert notice.kind == "notice" and notice.verb == "the conversation cannot be read now"
    diff = await palot.agents.diff(agent_id)  # its workspace clone is still on this machine
    assert [f.path for f in diff.files] == ["hello.txt"]
    env_now = await palot.agents.environment(agent_id)
    assert env_now.state == "missing" and env_now.unavailable and "container is gone" in env_now.unavailable
    data = cli_json(palot, "agents", "show", agent_id)
    assert data["activity"][0]["verb"] == "the conversation cannot be read now"
    shown = cli(palot, "agents", "show", agent_id)
    assert shown.returncode == 0 and "the conversation cannot be read now" in shown.stdout, shown.stderr


async def test_an_archived_worktree_agent_keeps_its_conversation_and_shows_its_branch(palot: Palot, repo: Path):
    agent_id = await finished_agent(palot, repo, "worktree")
    await palot.agents.archive(agent_id)
    agent = await palot.agents.get(agent_id)
    assert agent.environment.host_path is None
    assert agent.environment.unavailable and agent.environment.branch in agent.environment.unavailable
    activity = await palot.agents.activity(agent_id)
    assert any(item.kind == "write" and "hello.txt" in item.target for item in activity), activity
    diff = await palot.agents.diff(agent_id)
    assert [f.path for f in diff.files] == ["hello.txt"] and diff.unavailable
    assert (await palot.agents.environment(agent_id)).state == "stopped"
    data = cli_json(palot, "agents", "show", agent_id)
    assert data["agent"]["status"] == "archived" and data["activity"]
