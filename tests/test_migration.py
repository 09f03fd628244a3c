"""Moving a live agent worktree → container → worktree: real OpenCode on both sides, real git, real Docker."""

from __future__ import annotations

import asyncio
import subprocess
import time
import urllib.request
from pathlib import Path

from conftest import Engine, git, make_repo
from migration_support import capture, git_out, make_work, tree
from palot import AgentStatus, Palot
from palot.migration import STEPS

PROMPTS = ["write notes", "edit readme", "write a binary", "write notes", "write hello", "edit readme"]


async def _converse(palot: Palot, agent_id: str, prompts: list[str]) -> None:
    for text in prompts:
        await palot.agents.prompt(agent_id, text)
        agent = await palot.agents.wait(agent_id, timeout=90)
        assert agent.status == AgentStatus.COMPLETED, (text, agent.error)


async def _recall(palot: Palot, agent_id: str, users_before: int) -> None:
    """A new prompt after the move, answered with proof the model was sent the earlier conversation."""
    await palot.agents.prompt(agent_id, "recall the conversation")
    agent = await palot.agents.wait(agent_id, timeout=90)
    assert agent.status == AgentStatus.COMPLETED, agent.error
    last = (await palot.agents.messages(agent_id))[-1]
    assert last.role == "assistant"
    assert f"I remember the first request: write hello. This conversation has {users_before + 1} user messages" \
        in last.text


async def test_round_trip_worktree_container_worktree_keeps_code_history_and_conversation(
    palot: Palot, tmp_path: Path, container_engine: Engine
):
    repo = make_repo(tmp_path / "repo", {"README.md": "# sample project\n", "old.txt": "to be deleted\n"})
    agent = await palot.agents.spawn(repo, "write hello")
    assert (await palot.agents.wait(agent.id, timeout=90)).status == AgentStatus.COMPLETED
    await _converse(palot, agent.id, PROMPTS)
    worktree = Path(agent.environment.directory)
    make_work(worktree)
    (worktree / "old.txt").unlink()
    before = await capture(palot, agent.id)
    assert len(before.messages) >= 20
    assert "data.bin" in before.files and "picture.bin" in before.files
    users = sum(1 for role, _ in before.messages if role == "user")

    steps: list[str] = []
    result = first = await palot.agents.move(agent.id, "container", progress=steps.append)
    assert result.state == "completed" and result.target == "container" and result.messages == len(before.messages)
    assert len(steps) == len(STEPS) and steps[0].startswith("[1/9]")
    moved = await palot.agents.get(agent.id)
    assert moved.environment.type == "container" and moved.status == AgentStatus.COMPLETED
    assert moved.session_id == agent.session_id and moved.environment.branch == agent.environment.branch
    in_container = await capture(palot, agent.id)
    assert in_container.files == before.files  # byte for byte, uncommitted, untracked and binary files too
    assert in_container.status == before.status and in_container.log == before.log
    assert in_container.messages == before.messages
    # The source is gone, its branch is kept; the user's checkout never changed.
    assert not worktree.exists()
    assert agent.environment.branch in git(repo, "branch", "--list", agent.environment.branch)
    assert tree(repo) == {"README.md": b"# sample project\n", "old.txt": b"to be deleted\n"}

    await _recall(palot, agent.id, users)
    before_back = await capture(palot, agent.id)

    result = await palot.agents.move(agent.id, "worktree")
    assert result.state == "completed" and result.target == "worktree"
    back = await palot.agents.get(agent.id)
    assert back.environment.type == "worktree" and back.status == AgentStatus.COMPLETED
    after = await capture(palot, agent.id)
    assert after.files == before_back.files and after.status == before_back.status
    assert after.log == before_back.log and after.messages == before_back.messages
    await _recall(palot, agent.id, users + 1)
    names = subprocess.run(["docker", "-H", container_engine.host, "ps", "-a", "--format", "{{.Names}}"],
                           capture_output=True, text=True).stdout.split()
    assert f"palot-{first.environment_id}" not in names  # the container is gone

    # Every step of both moves is in the journal (before and after) and the audit log.
    moves = palot.migrations.history(agent.id)
    assert [m.state for m in moves] == ["completed", "completed"]
    for m in moves:
        journal = [(j.step, j.phase) for j in palot.store.migration_journal(m.id)]
        assert journal == [(s, p) for s in STEPS for p in ("started", "done")]
        assert "password" not in str(m.manifest).lower()
    events = [e["event"] for e in palot.agents.audit_log(agent.id)]
    assert events.count("migration_started") == 2 and events.count("migration_completed") == 2
    assert git_out(Path(back.environment.directory), "rev-parse", "--abbrev-ref", "HEAD").strip() == \
        agent.environment.branch


async def test_a_running_dev_server_is_recorded_and_restarted_in_the_new_environment(
    palot: Palot, repo: Path, container_engine: Engine
):
    from palot.servers import free_port

    agent = await palot.agents.spawn(repo, "write hello")
    assert (await palot.agents.wait(agent.id, timeout=90)).status == AgentStatus.COMPLETED
    port = free_port()
    command = ["python3", "-m", "http.server", str(port), "--bind", "127.0.0.1"]
    server = subprocess.Popen(command, cwd=agent.environment.directory, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        await _until_serves(lambda: _get(f"http://127.0.0.1:{port}/hello.txt"))
        dev_ports = (await palot.agents.environment(agent.id)).dev_ports
        assert dev_ports
        result = await palot.agents.move(agent.id, "container")
        assert result.processes_restarted == [" ".join(command)]  # the interpreter found through PATH again
        assert f"`{' '.join(command)}` (port {port})" in (result.resume_note or "")
        assert server.wait(10) is not None  # stopped in the source: restarted, not moved live
        env = await palot.agents.environment(agent.id)
        assert env.resources and str(port) in env.resources["ports"]  # published on loopback for the user
        name = f"palot-{result.environment_id}"
        probe = ["docker", "-H", container_engine.host, "exec", name, "python3", "-c",
                 f"import urllib.request; print(urllib.request.urlopen('http://127.0.0.1:{port}/hello.txt').read())"]
        await _until_serves(lambda: "hello from the agent" in subprocess.run(probe, capture_output=True,
                                                                             text=True).stdout)
        # The agent keeps its dev-server ports in the container, and a retry would make one alike.
        assert env.dev_ports == dev_ports
        shown = subprocess.run(["docker", "-H", container_engine.host, "exec", name, "printenv", "PALOT_PORTS"],
                               capture_output=True, text=True)
        assert shown.stdout.strip() == dev_ports, shown
        assert palot.agents.retry_spawn(agent.id)["options"]["ports"] == [port]

        back = await palot.agents.move(agent.id, "worktree")
        assert back.processes_restarted == [" ".join(command)]
        assert (await palot.agents.environment(agent.id)).dev_ports == dev_ports
        await _until_serves(lambda: _get(f"http://127.0.0.1:{port}/hello.txt"))
    finally:
        server.kill()
        for p in await palot.backends["worktree"].processes(palot.store.get_environment(
                palot.store.get_agent(agent.id).environment_id)):
            subprocess.run(["pkill", "-f", p.command])


def _get(url: str) -> bool:
    try:
        return b"hello from the agent" in urllib.request.urlopen(url, timeout=2).read()
    except OSError:
        return False


async def _until_serves(check, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not await asyncio.to_thread(check):
        assert time.monotonic() < deadline, "the dev server did not answer"
        await asyncio.sleep(0.3)
