"""Bad input gets a clear error that names the fix, and changes nothing."""

from __future__ import annotations

import asyncio
import hashlib
from pathlib import Path

import pytest

from conftest import git, make_repo
from palot import Palot
from palot.opencode import PermissionRule
from palot.errors import (
    AgentNotFound,
    ApplyConflict,
    BranchExists,
    DirtyCheckout,
    InvalidInput,
    NotAGitRepo,
    PathNotFound,
    UnmergedWork,
)


def _snapshot(palot: Palot, repo: Path) -> tuple:
    """Everything bad input must leave alone: agents, projects, worktrees, branches, files."""
    files = {
        str(p.relative_to(repo)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(repo.rglob("*")) if p.is_file() and ".git" not in p.parts
    }
    worktrees = sorted(str(p) for p in palot.paths.worktrees.rglob("*"))
    return (
        [a.id for a in palot.agents.list(include_archived=True)],
        [p.id for p in palot.store.list_projects()],
        worktrees,
        git(repo, "branch", "--list"),
        git(repo, "status", "--porcelain"),
        files,
    )


async def test_a_path_that_is_not_a_git_repo(palot: Palot, tmp_path: Path, repo: Path):
    plain = tmp_path / "plain"
    plain.mkdir()
    before = _snapshot(palot, repo)
    with pytest.raises(NotAGitRepo) as e:
        await palot.agents.spawn(plain, "write hello")
    assert "git init" in str(e.value)
    assert _snapshot(palot, repo) == before


async def test_a_missing_path(palot: Palot, tmp_path: Path, repo: Path):
    before = _snapshot(palot, repo)
    with pytest.raises(PathNotFound) as e:
        await palot.agents.spawn(tmp_path / "nowhere", "write hello")
    assert "nowhere" in str(e.value)
    assert _snapshot(palot, repo) == before


async def test_an_unknown_agent_id(palot: Palot, repo: Path):
    before = _snapshot(palot, repo)
    for action in (palot.agents.get, palot.agents.diff, palot.agents.archive, palot.agents.apply,
                   palot.agents.abort, palot.agents.activity, palot.agents.pause, palot.agents.resume):
        with pytest.raises(AgentNotFound) as e:
            await action("ag_doesnotexist")
        assert "palot agents list" in str(e.value)
    with pytest.raises(AgentNotFound):
        await palot.agents.prompt("ag_doesnotexist", "hello")
    assert _snapshot(palot, repo) == before


async def test_pausing_or_resuming_a_worktree_agent_is_refused_naming_the_fix_and_changes_nothing(
        palot: Palot, repo: Path):
    agent = await palot.agents.spawn(repo, "write hello")
    done = await palot.agents.wait(agent.id, timeout=60)
    before = (_snapshot(palot, repo), done.status, palot.store.get_environment(done.environment.id or "").data,
              len(palot.store.audit_log(agent_id=agent.id)))
    for action in (palot.agents.pause, palot.agents.resume):
        with pytest.raises(InvalidInput) as e:
            await action(agent.id)
        assert "only cloud agents" in e.value.message and f"palot agents move {agent.id} cloud" in (e.value.fix or "")
    after = await palot.agents.get(agent.id)
    assert (_snapshot(palot, repo), after.status, palot.store.get_environment(done.environment.id or "").data,
            len(palot.store.audit_log(agent_id=agent.id))) == before
    await palot.agents.prompt(agent.id, "write notes")  # it still works
    assert (await palot.agents.wait(agent.id, timeout=60)).status == "completed"


async def test_a_branch_name_collision(palot: Palot, repo: Path):
    git(repo, "branch", "feature/taken")
    before = _snapshot(palot, repo)
    with pytest.raises(BranchExists) as e:
        await palot.agents.spawn(repo, "write hello", branch="feature/taken")
    assert "choose another branch name" in str(e.value)
    assert _snapshot(palot, repo) == before


async def test_other_malformed_spawn_arguments(palot: Palot, repo: Path):
    before = _snapshot(palot, repo)
    bad = [
        dict(prompt=""),
        dict(prompt="x", permission_mode="yolo"),
        dict(prompt="x", environment="mars"),
        dict(prompt="x", model="no-slash"),
        dict(prompt="x", base_branch="does-not-exist"),
        dict(prompt="x", branch="has space"),
    ]
    for kwargs in bad:
        with pytest.raises(InvalidInput) as e:
            await palot.agents.spawn(repo, **kwargs)
        assert e.value.fix, kwargs
    assert _snapshot(palot, repo) == before


async def test_apply_onto_a_dirty_checkout_refuses_and_changes_nothing(palot: Palot, repo: Path):
    agent = await palot.agents.spawn(repo, "edit readme")
    await palot.agents.wait(agent.id, timeout=60)
    (repo / "README.md").write_text("# sample project\nlocal edit the user has not committed\n")
    before = _snapshot(palot, repo)
    with pytest.raises(DirtyCheckout) as e:
        await palot.agents.apply(agent.id)
    assert "README.md" in str(e.value) and "stash" in str(e.value)
    assert _snapshot(palot, repo) == before


async def test_apply_with_a_conflict_refuses_and_changes_nothing(palot: Palot, repo: Path):
    agent = await palot.agents.spawn(repo, "edit readme")
    await palot.agents.wait(agent.id, timeout=60)
    (repo / "README.md").write_text("# a different sample\n")
    git(repo, "commit", "-qam", "user changed the README meanwhile")
    before = _snapshot(palot, repo)
    with pytest.raises(ApplyConflict) as e:
        await palot.agents.apply(agent.id)
    assert "README.md" in str(e.value)
    assert _snapshot(palot, repo) == before


async def test_destroy_refuses_unapplied_work_unless_forced(palot: Palot, repo: Path):
    agent = await palot.agents.spawn(repo, "write hello")
    agent = await palot.agents.wait(agent.id, timeout=60)
    worktree = Path(agent.environment.directory)
    with pytest.raises(UnmergedWork) as e:
        await palot.agents.destroy(agent.id)
    assert "--force" in str(e.value)
    assert (worktree / "hello.txt").exists() and palot.agents.list()[0].id == agent.id

    await palot.agents.destroy(agent.id, force=True)
    assert not worktree.exists()
    assert agent.environment.branch not in git(repo, "branch", "--list")
    assert palot.agents.list(include_archived=True) == []
    assert "destroyed" in [e.event for e in palot.store.audit_log(agent_id=agent.id)]


async def test_destroy_after_apply_needs_no_force(palot: Palot, repo: Path):
    agent = await palot.agents.spawn(repo, "write hello")
    await palot.agents.wait(agent.id, timeout=60)
    await palot.agents.apply(agent.id)
    await palot.agents.destroy(agent.id)
    assert (repo / "hello.txt").exists()
    assert palot.agents.list() == []


async def test_external_sessions_are_listed_read_only(palot: Palot, tmp_path: Path):
    project = make_repo(tmp_path / "ext")
    # A Palot agent makes the project known; a session started directly in OpenCode is then discovered.
    agent = await palot.agents.spawn(project, "write hello")
    await palot.agents.wait(agent.id, timeout=60)
    session = await palot.agents._client().create_session(str(project), title="started in the OpenCode TUI")
    await palot.agents.resync()
    external = [a for a in palot.agents.list() if a.read_only]
    assert [(a.id, a.environment.type, a.title) for a in external] == [
        (session.id, "external", "started in the OpenCode TUI")]
    assert (await palot.agents.get(session.id)).read_only
    assert await palot.agents.activity(session.id) == []
    from palot.errors import ReadOnlyAgent

    for action in (palot.agents.archive, palot.agents.abort, palot.agents.apply):
        with pytest.raises(ReadOnlyAgent):
            await action(session.id)
    with pytest.raises(ReadOnlyAgent):
        await palot.agents.prompt(session.id, "hi")


async def test_an_external_session_shows_its_real_status_in_this_process_and_a_new_one(palot: Palot, tmp_path: Path):
    project = make_repo(tmp_path / "ext")
    agent = await palot.agents.spawn(project, "write hello")  # makes the project known
    await palot.agents.wait(agent.id, timeout=60)
    client = palot.agents._client()  # the OpenCode TUI, as far as Palot can tell
    session = await client.create_session(str(project), title="asking in the TUI",
                                          permission=[PermissionRule(permission="edit", pattern="*", action="ask")])
    await client.prompt_async(session.id, str(project), "write hello")

    async def status_becomes(value: str) -> str | None:
        deadline = asyncio.get_running_loop().time() + 30
        while True:
            now = next((a.status.value for a in palot.agents.list() if a.id == session.id), None)
            if now == value or asyncio.get_running_loop().time() > deadline:
                return now
            await asyncio.sleep(0.1)

    assert await status_becomes("waiting") == "waiting"  # for its permission, followed live
    async with Palot(palot.paths, attach_any=True, supervise=False) as other:  # started while it waits
        [seen] = [a for a in other.agents.list() if a.id == session.id]
        assert (seen.status.value, [p.permission for p in seen.permissions]) == ("waiting", ["edit"])
    await client.abort(session.id, str(project))
    assert await status_becomes("paused") == "paused"


async def test_an_unknown_model_is_refused_with_the_models_there_are_and_nothing_is_created(palot: Palot, repo: Path):
    before = _snapshot(palot, repo)
    with pytest.raises(InvalidInput) as e:
        await palot.agents.spawn(repo, "write hello", model="nosuch/model")
    assert "nosuch/model" in e.value.message and "palot-scripted/scripted" in (e.value.fix or "")
    assert _snapshot(palot, repo) == before
    agent = await palot.agents.spawn(repo, "write hello", model="palot-scripted/scripted")  # a known one works
    assert (await palot.agents.wait(agent.id, timeout=60)).status.value == "completed"
    with pytest.raises(InvalidInput, match="nosuch/model"):
        await palot.agents.prompt(agent.id, "write notes", model="nosuch/model")
    assert (await palot.agents.get(agent.id)).status.value == "completed"
