"""An agent's later life on the real service (issue 15): auto-archive of completed agents, bulk archive, abort
and destroy by filter (a dry run first), retry of a failed agent, and request changes from review comments."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest
from conftest import SCRIPTS, git, make_repo
from palot import api
from palot.client import PalotClient
from palot.errors import AgentNotFound, InvalidInput, InvalidState
from service_support import running_service
from test_budgets import notifications

SCRIPT = SCRIPTS / "lifecycle.json"
Status = api.AgentStatus
QUICK = "[notifications]\ncoalesce_seconds = 0\n"
GREETING = "def greet(name):\n    message = 'Hello, ' + name\n    return message\n"


def _files(agent: api.Agent) -> Path:
    return Path(agent.environment.host_path or agent.environment.directory)


async def _done(palot: PalotClient, repo: Path, prompt: str = "write a greeting module", **options: object
                ) -> api.Agent:
    agent = await palot.spawn(repo, prompt, **options)  # type: ignore[arg-type]
    agent = await palot.wait(agent.id, timeout=90)
    assert agent.status in (Status.COMPLETED, Status.FAILED), agent
    return agent


async def _waiting(palot: PalotClient, repo: Path) -> api.Agent:
    agent = await palot.spawn(repo, "run a command", permission_mode="ask")
    agent = await palot.wait(agent.id, timeout=90)
    assert agent.status == Status.WAITING, agent
    return agent


async def _until_status(palot: PalotClient, agent_id: str, status: Status, timeout: float = 60) -> api.Agent:
    deadline = time.monotonic() + timeout
    while True:
        agent = await palot.get(agent_id)
        if agent.status == status or time.monotonic() > deadline:
            return agent
        await asyncio.sleep(0.2)


# --- auto-archive ---------------------------------------------------------------------------------------


async def test_a_completed_agent_is_archived_after_the_setting_with_its_work_on_its_branch_and_a_waiting_one_is_not(
        tmp_path: Path, opencode_bin: Path) -> None:
    home = tmp_path / "home"
    repo = make_repo(tmp_path / "project")
    home.mkdir()
    settings = home / "settings.toml"
    # Off (0): a completed agent stays as it is, however long it is left alone.
    settings.write_text(QUICK + "[housekeeping]\narchive_completed_after_hours = 0\ncheck_seconds = 0.2\n")
    async with running_service(home, SCRIPT) as palot:
        done = await _done(palot, repo)
        assert done.status == Status.COMPLETED
        await asyncio.sleep(2)
        assert (await palot.get(done.id)).status == Status.COMPLETED
        view = await palot.settings()
        assert view.settings["housekeeping"] == {"archive_completed_after_hours": 0, "check_seconds": 0.2,
                                                 "release_idle_minutes": 10}

    # 1.8 s: the agent completed before this service started, judged by the store's time of its last change.
    settings.write_text(QUICK + "[housekeeping]\narchive_completed_after_hours = 0.0005\ncheck_seconds = 0.2\n")
    async with running_service(home, SCRIPT) as palot, notifications(home) as seen:
        waiting = await _waiting(palot, repo)
        archived = await _until_status(palot, done.id, Status.ARCHIVED)
        assert archived.status == Status.ARCHIVED, archived
        # Its work is on its branch in the project (the worktree is gone).
        assert git(repo, "show", f"{done.branch}:greeting.py") == GREETING
        assert not _files(done).exists()
        entry = [e for e in await palot.audit(done.id) if e.event == "archived"]
        assert len(entry) == 1 and entry[0].detail["reason"] == "auto-archive: completed and unchanged for 1.8 s"

        # The waiting agent, left alone longer than the setting, still waits for its person.
        await asyncio.sleep(max(0.0, waiting.updated_at + 3 - time.time()))
        await asyncio.sleep(0.5)
        still = await palot.get(waiting.id)
        assert still.status == Status.WAITING and time.time() - still.updated_at > 1.8

        # One "done" notification says it was archived automatically and why; not a second plain "archived".
        said = [n for n in seen if done.id in n.agent_ids]
        assert [(n.kind, n.reason) for n in said] == [("done", "auto_archived")], said
        assert said[0].title.endswith("was archived automatically")
        assert "completed and unchanged for 1.8 s" in said[0].body and done.branch in said[0].body
        assert not [n for n in seen if waiting.id in n.agent_ids and n.reason in ("archived", "auto_archived")]


# --- bulk actions ------------------------------------------------------------------------------------------


async def test_bulk_archive_of_completed_agents_in_one_project_leaves_the_others(
        tmp_path: Path, opencode_bin: Path) -> None:
    web = make_repo(tmp_path / "web")
    backend = make_repo(tmp_path / "backend")
    home = tmp_path / "home"
    home.mkdir()
    (home / "settings.toml").write_text(QUICK)
    async with running_service(home, SCRIPT) as palot:
        first, second = await asyncio.gather(_done(palot, web), _done(palot, web, title="second greeting"))
        failed = await _done(palot, web, "flaky job")
        other = await _done(palot, backend)
        assert failed.status == Status.FAILED and other.status == Status.COMPLETED

        # Bad input is refused, naming the fix; nothing changes.
        with pytest.raises(InvalidInput, match="say which agents"):
            await palot.bulk("archive")
        with pytest.raises(InvalidInput, match="not an age"):
            await palot.bulk("archive", older_than="7 days")
        with pytest.raises(InvalidInput, match="unknown project"):
            await palot.bulk("archive", status="completed", project="nowhere", dry_run=False)

        # The dry run (the default) lists what would happen, and does nothing.
        plan = await palot.bulk("archive", status="completed", project=str(web))
        assert plan.dry_run and {i.agent_id for i in plan.items} == {first.id, second.id}
        assert all(i.outcome == "would" and "archive" in i.message and i.branch in i.message for i in plan.items)
        assert {a.status for a in await palot.list(project=str(web))} == {Status.COMPLETED, Status.FAILED}

        done = await palot.bulk("archive", status="completed", project=str(web),
                                agents=[i.agent_id for i in plan.items], dry_run=False)
        assert not done.dry_run and [i.outcome for i in done.items] == ["done", "done"], done
        for agent in (first, second):
            assert (await palot.get(agent.id)).status == Status.ARCHIVED
            assert git(web, "show", f"{agent.branch}:greeting.py") == GREETING
        assert (await palot.get(failed.id)).status == Status.FAILED
        assert (await palot.get(other.id)).status == Status.COMPLETED

        # Abort applies to running agents only: the others are listed as skipped, with the reason.
        aborts = await palot.bulk("abort", project=str(backend), dry_run=False)
        assert [(i.agent_id, i.outcome) for i in aborts.items] == [(other.id, "skipped")]
        assert "not running (completed)" in aborts.items[0].message
        assert (await palot.get(other.id)).status == Status.COMPLETED

        # Destroy never loses work silently: the failed agent's unmerged file keeps it, unless forced.
        assert (await palot.bulk("destroy", status="failed", older_than="7d")).items == []
        plan = await palot.bulk("destroy", status="failed", older_than="1s")
        assert [(i.agent_id, i.outcome) for i in plan.items] == [(failed.id, "skipped")]
        assert "neither applied nor merged" in plan.items[0].message and "force" in plan.items[0].message
        kept = await palot.bulk("destroy", status="failed", older_than="1s", dry_run=False)
        assert [i.outcome for i in kept.items] == ["skipped"]
        assert (await palot.get(failed.id)).status == Status.FAILED
        forced = await palot.bulk("destroy", status="failed", force=True, dry_run=False)
        assert [(i.agent_id, i.outcome) for i in forced.items] == [(failed.id, "done")]
        with pytest.raises(AgentNotFound):
            await palot.get(failed.id)
        bulk_log = [e for e in await palot.audit() if e.event == "bulk"]
        assert [(e.detail["operation"], e.detail["agents"]) for e in bulk_log] == [
            ("archive", [i.agent_id for i in done.items]), ("abort", []), ("destroy", []), ("destroy", [failed.id])]


# --- retry and request changes ------------------------------------------------------------------------------


async def test_retry_of_a_failed_agent_runs_again_from_the_same_base_with_the_same_options(
        tmp_path: Path, opencode_bin: Path) -> None:
    repo = make_repo(tmp_path / "project")
    async with running_service(tmp_path / "home", SCRIPT) as palot:
        failed = await _done(palot, repo, "flaky job", title="flaky job", permission_mode="auto", budget_usd=5.0,
                             setup_script="echo set > setup.txt")
        assert failed.status == Status.FAILED and (_files(failed) / "attempt.txt").exists()
        # The project moved on meanwhile: the retry still starts where the failed agent did.
        (repo / "later.txt").write_text("later\n")
        git(repo, "add", "-A")
        git(repo, "commit", "-q", "-m", "later")

        retry = await palot.retry(failed.id)
        assert retry.id != failed.id and retry.title == "flaky job (retry)" and retry.prompt == failed.prompt
        assert (retry.permission_mode, retry.budget_usd, retry.model) == ("auto", 5.0, failed.model)
        assert retry.environment.type == "worktree" and retry.branch != failed.branch
        assert retry.environment.base_commit == failed.environment.base_commit
        ran = await palot.wait(retry.id, timeout=90)
        assert ran.status == Status.FAILED  # the scripted model fails this job every time: it did run again
        assert (_files(ran) / "attempt.txt").read_text() == "attempted\n"
        assert (_files(ran) / "setup.txt").read_text() == "set\n" and not (_files(ran) / "later.txt").exists()
        assert [m.text for m in await palot.messages(ran.id) if m.role == "user"] == [failed.prompt]

        # The failed agent is left as it was, and its log says who retried it.
        old = await palot.get(failed.id)
        assert (old.status, old.branch, old.error) == (Status.FAILED, failed.branch, failed.error)
        assert [e.detail["retry"] for e in await palot.audit(failed.id) if e.event == "retried"] == [retry.id]
        assert (await palot.retry(retry.id)).title == "flaky job (retry)"  # not "(retry) (retry)"

        waiting = await _waiting(palot, repo)
        count = len(await palot.list())
        with pytest.raises(InvalidState, match="waiting for you"):
            await palot.retry(waiting.id)
        with pytest.raises(AgentNotFound):
            await palot.retry("ag_nothere")
        assert len(await palot.list()) == count


async def test_request_changes_sends_the_comments_with_their_lines_to_the_agent(
        tmp_path: Path, opencode_bin: Path) -> None:
    repo = make_repo(tmp_path / "project")
    async with running_service(tmp_path / "home", SCRIPT) as palot:
        agent = await _done(palot, repo)
        assert agent.status == Status.COMPLETED
        said = len(await palot.messages(agent.id))

        # Comments off the diff are refused, naming the comment and what it could be on; nothing is sent.
        with pytest.raises(InvalidInput) as off_file:
            await palot.request_changes(agent.id, [{"path": "README.md", "line": 1, "comment": "reword"}])
        assert "README.md" in off_file.value.message and "greeting.py" in off_file.value.fix
        with pytest.raises(InvalidInput) as off_lines:
            await palot.request_changes(agent.id, [{"path": "greeting.py", "line": 40, "comment": "why"}])
        assert "line 40" in off_lines.value.message and "1-3" in off_lines.value.fix
        with pytest.raises(InvalidInput, match="no comments"):
            await palot.request_changes(agent.id, [])
        with pytest.raises(InvalidInput, match="end_line"):
            await palot.request_changes(agent.id, [{"path": "greeting.py", "line": 3, "end_line": 1,
                                                    "comment": "x"}])
        assert len(await palot.messages(agent.id)) == said

        await palot.request_changes(agent.id, [
            {"path": "greeting.py", "line": 2, "comment": "use an f-string"},
            {"path": "./greeting.py", "line": 1, "end_line": 3, "comment": "add a docstring <b>now</b>"},
        ], note="keep it short")
        agent = await palot.wait(agent.id, timeout=90)
        assert agent.status == Status.COMPLETED, agent
        received = (_files(agent) / "review-received.txt").read_text()
        assert "1. greeting.py, line 2:" in received and "+    message = 'Hello, ' + name" in received
        assert "Comment: use an f-string" in received
        assert "2. greeting.py, lines 1-3:" in received and "+def greet(name):" in received
        assert "Comment: add a docstring <b>now</b>" in received and "Also: keep it short" in received
        [entry] = [e for e in await palot.audit(agent.id) if e.event == "changes_requested"]
        assert entry.detail["comments"] == [{"path": "greeting.py", "line": 2, "end_line": 2},
                                            {"path": "greeting.py", "line": 1, "end_line": 3}]
