"""Agents in git worktrees on the real shared OpenCode server, driven by the scripted model."""

from __future__ import annotations

import asyncio
from pathlib import Path

from conftest import git, make_repo
from palot import AgentStatus, Palot


async def test_spawn_writes_file_in_worktree_diff_shows_it_and_apply_brings_it_home(palot: Palot, repo: Path):
    agent = await palot.agents.spawn(repo, "write hello please", title="Say hello")
    assert agent.environment.branch == "palot/say-hello"
    worktree = Path(agent.environment.directory)
    assert worktree.is_dir() and worktree != repo

    agent = await palot.agents.wait(agent.id, timeout=60)
    assert agent.status == AgentStatus.COMPLETED, agent.error
    assert (worktree / "hello.txt").read_text() == "hello from the agent\n"
    assert not (repo / "hello.txt").exists()

    diff = await palot.agents.diff(agent.id)
    assert [(f.path, f.status, f.additions, f.deletions) for f in diff.files] == [("hello.txt", "added", 1, 0)]
    assert "+hello from the agent" in diff.patch

    changed = await palot.agents.apply(agent.id)
    assert changed == ["hello.txt"]
    assert (repo / "hello.txt").read_text() == "hello from the agent\n"

    activity = await palot.agents.activity(agent.id)
    assert [(i.kind, i.target) for i in activity if i.kind == "write"] == [("write", "hello.txt")]
    assert activity[-1].kind == "message" and "Created hello.txt" in activity[-1].summary
    messages = await palot.agents.messages(agent.id)
    assert [m.role for m in messages][:2] == ["user", "assistant"]
    assert messages[0].text == "write hello please"


async def test_archive_keeps_branch_and_removes_worktree(palot: Palot, repo: Path):
    agent = await palot.agents.spawn(repo, "write notes")
    agent = await palot.agents.wait(agent.id, timeout=60)
    worktree = Path(agent.environment.directory)
    archived = await palot.agents.archive(agent.id)
    assert archived.status == AgentStatus.ARCHIVED
    assert not worktree.exists()
    # The uncommitted file the agent wrote is kept, committed on its branch.
    assert git(repo, "show", f"{agent.environment.branch}:NOTES.md") == "# Notes\n\nwritten by the agent\n"
    diff = await palot.agents.diff(agent.id)
    assert [f.path for f in diff.files] == ["NOTES.md"]
    assert palot.agents.list() == [] or all(a.id != agent.id for a in palot.agents.list())
    assert [a.id for a in palot.agents.list(include_archived=True)] == [agent.id]


async def test_two_agents_in_two_projects_share_one_server(palot: Palot, tmp_path: Path):
    one = make_repo(tmp_path / "one")
    two = make_repo(tmp_path / "two")
    a = await palot.agents.spawn(one, "write hello")
    b = await palot.agents.spawn(two, "write notes")
    a, b = await palot.agents.wait(a.id, timeout=60), await palot.agents.wait(b.id, timeout=60)
    assert (a.status, b.status) == (AgentStatus.COMPLETED, AgentStatus.COMPLETED)
    assert (Path(a.environment.directory) / "hello.txt").exists()
    assert (Path(b.environment.directory) / "NOTES.md").exists()
    assert not (Path(a.environment.directory) / "NOTES.md").exists()
    assert {x.project_name for x in palot.agents.list()} == {"one", "two"}
    assert [x.id for x in palot.agents.list(project=str(one))] == [a.id]
    assert [x.id for x in palot.agents.list(status="completed", environment="worktree")] == [b.id, a.id]


async def test_setup_script_runs_in_the_new_worktree_before_the_agent(palot: Palot, repo: Path):
    (repo / ".env.local").write_text("SECRET=1\n")  # untracked, as .env files usually are
    agent = await palot.agents.spawn(repo, "write hello", setup_script='cp "$PALOT_PROJECT"/.env* .')
    assert (Path(agent.environment.directory) / ".env.local").read_text() == "SECRET=1\n"
    assert (await palot.agents.wait(agent.id, timeout=60)).status == AgentStatus.COMPLETED


async def test_a_failing_setup_script_is_a_clear_error_and_leaves_no_worktree(palot: Palot, repo: Path):
    import pytest

    from palot.errors import PalotError

    with pytest.raises(PalotError) as e:
        await palot.agents.spawn(repo, "write hello", setup_script="echo missing tool >&2; exit 3")
    assert "exit code 3" in str(e.value) and "missing tool" in str(e.value)
    assert palot.agents.list() == []
    assert "palot/" not in git(repo, "branch", "--list")
    assert not any(palot.paths.worktrees.rglob("palot-*"))


async def test_create_pr_pushes_the_branch_and_says_what_is_missing_without_gh(palot: Palot, repo: Path, tmp_path):
    import shutil

    import pytest

    from palot.errors import InvalidState

    agent = await palot.agents.spawn(repo, "write hello")
    await palot.agents.wait(agent.id, timeout=60)
    with pytest.raises(InvalidState) as e:
        await palot.agents.create_pr(agent.id)
    assert "remote add" in str(e.value)

    remote = tmp_path / "remote.git"
    git(tmp_path, "init", "-q", "--bare", str(remote))
    git(repo, "remote", "add", "origin", str(remote))
    pr = await palot.agents.create_pr(agent.id, title="Say hello")
    assert pr.pushed and pr.branch == agent.environment.branch
    assert git(remote, "show", f"{pr.branch}:hello.txt") == "hello from the agent\n"
    assert git(remote, "log", "-1", "--format=%s", pr.branch).strip() == "Say hello"
    if shutil.which("gh") is None:
        assert pr.url is None and "gh" in pr.message and "gh auth login" in pr.message


async def test_environment_reports_state_directory_and_disk_use(palot: Palot, repo: Path):
    agent = await palot.agents.spawn(repo, "write hello")
    await palot.agents.wait(agent.id, timeout=60)
    env = await palot.agents.environment(agent.id)
    assert (env.type, env.state, env.directory) == ("worktree", "running", agent.environment.directory)
    assert env.resources and env.resources["disk_bytes"] > 0
    await palot.agents.archive(agent.id)
    assert (await palot.agents.environment(agent.id)).state == "stopped"


async def test_twelve_spawns_at_once_in_one_project_with_one_title_all_get_their_own_branch(palot: Palot, repo: Path):
    """git cannot add two worktrees of one repository at once, and one title makes one slug: neither may fail
    a spawn (50 at once in one project failed with "failed to read .git/worktrees/…/commondir")."""
    agents = await asyncio.gather(*(palot.agents.spawn(repo, "write hello", title="same title") for _ in range(12)))
    branches = sorted(a.branch or "" for a in agents)
    assert len(set(branches)) == 12 and "palot/same-title" in branches and "palot/same-title-12" in branches
    done = await asyncio.gather(*(palot.agents.wait(a.id, timeout=180) for a in agents))
    assert all(a.status.value == "completed" for a in done), [a.error for a in done]
    for agent in done:
        assert (Path(agent.environment.directory) / "hello.txt").exists()
        assert agent.branch in git(repo, "branch", "--list", agent.branch or "")
