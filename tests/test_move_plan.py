"""The decisions of a move, without any I/O: the ports a container publishes, the agent's status and resume
after a move (or its undo), what a restart does with a move left unfinished, and the one list of steps."""

from __future__ import annotations

import time

import pytest

from palot import api
from palot.migration.manifest import (
    EnvironmentRef,
    GitState,
    MigrationManifest,
    ProcessRecord,
    SessionState,
)
from palot.migration.plan import (
    UNDOABLE,
    decide_recovery,
    last_user_text,
    plan_move,
    resume_note,
    steps_left,
    target_options,
)
from palot.migration.steps import TABLE, progress_line
from palot.store import MigrationRecord


def manifest(status_before: str = "completed", was_busy: bool = False, resumed: bool = False,
             processes: list[ProcessRecord] | None = None, last_prompt: str | None = None) -> MigrationManifest:
    m = MigrationManifest(
        id="mig_1", agent_id="ag_1", created_at=time.time(), status_before=status_before,
        source=EnvironmentRef(type="worktree", environment_id="env_a"),
        target=EnvironmentRef(type="container", environment_id="env_b"),
        git=GitState(branch="palot/x", base_commit="abc", snapshot_ref="refs/palot/migrations/mig_1"),
        session=SessionState(id="ses_1", was_busy=was_busy, resumed=resumed, last_prompt=last_prompt),
    )
    m.environment.processes = processes or []
    return m


def record(state: str) -> MigrationRecord:
    return MigrationRecord(id="mig_1", agent_id="ag_1", source_env_id="env_a", target_type="container",
                           state=state, step="import_code", created_at=0.0, updated_at=0.0)


SERVER = [ProcessRecord(command="npm run dev", cwd=".", ports=[5173, 3000]), ProcessRecord(command="x", cwd=".")]


def test_a_container_publishes_the_ports_the_dev_servers_listened_on() -> None:
    assert target_options("container", {"memory": "2g"}, SERVER) == {"memory": "2g", "ports": [3000, 5173]}


@pytest.mark.parametrize(("target", "options"), [
    ("container", {"ports": [8080]}),  # the person chose the ports
    ("container", {"network": "none"}),  # nothing can reach it
    ("worktree", {}),  # a worktree shares the host's ports
    ("cloud", {}),
])
def test_ports_are_kept_as_given_otherwise(target: str, options: dict) -> None:
    assert target_options(target, options, SERVER) == options


def test_no_processes_no_ports() -> None:
    assert target_options("container", {}, []) == {}


def test_a_move_that_stopped_a_turn_leaves_the_agent_paused_and_resumes_it() -> None:
    plan = plan_move(manifest(status_before="running", was_busy=True), resume=None)
    assert plan.status_after == "paused" and plan.send_note


def test_an_idle_agent_keeps_its_status_and_is_not_prompted() -> None:
    plan = plan_move(manifest(status_before="completed"), resume=None)
    assert plan.status_after == "completed" and not plan.send_note


def test_resume_says_otherwise_both_ways() -> None:
    assert plan_move(manifest(), resume=True).send_note
    assert not plan_move(manifest(was_busy=True), resume=False).send_note


def test_the_resume_note_is_never_sent_twice() -> None:
    assert not plan_move(manifest(was_busy=True, resumed=True), resume=None).send_note
    assert not plan_move(manifest(resumed=True), resume=True).send_note


def test_a_restart_rolls_back_before_the_commit_point_and_finishes_after_it() -> None:
    assert decide_recovery(record("running")) == "roll_back"
    assert decide_recovery(record("committed")) == "finish"
    for over in ("completed", "rolled_back", "failed"):
        assert decide_recovery(record(over)) == "nothing"


def test_finishing_runs_only_the_steps_after_the_commit_point_not_yet_done() -> None:
    assert steps_left(set()) == ["resume", "cleanup"]
    assert steps_left({("resume", "started")}) == ["resume", "cleanup"]
    assert steps_left({("resume", "done"), ("cleanup", "started")}) == ["cleanup"]
    assert steps_left({("resume", "done"), ("cleanup", "done")}) == []


def test_the_steps_are_one_list_the_api_names_and_the_engine_runs() -> None:
    assert tuple(s.name for s in TABLE) == api.STEPS
    assert all(s.label for s in TABLE)
    assert UNDOABLE == api.STEPS[:api.STEPS.index("resume")]
    # Only steps before the commit point have an undo.
    assert all(s.undo is None for s in TABLE if s.name not in UNDOABLE)
    assert progress_line("provision", "worktree", "container") == "[4/9] creating the container"
    assert progress_line("cleanup", "worktree", "cloud") == "[9/9] removing the old worktree"


def test_the_last_prompt_is_the_last_text_a_person_wrote() -> None:
    messages = [
        {"info": {"role": "user"}, "parts": [{"type": "text", "text": "first"}]},
        {"info": {"role": "user"}, "parts": [{"type": "text", "text": "fix the bug"},
                                             {"type": "text", "text": "note", "synthetic": True}]},
        {"info": {"role": "assistant"}, "parts": [{"type": "text", "text": "on it"}]},
    ]
    assert last_user_text(messages) == "fix the bug"
    assert last_user_text([]) is None


def test_the_resume_note_says_where_the_agent_is_what_came_and_what_it_was_doing() -> None:
    note = resume_note(manifest(was_busy=True, processes=SERVER[:1], last_prompt="fix the bug"), "/workspace")
    assert "from a git worktree to a container; your working directory is now /workspace" in note
    assert "`npm run dev` (port 5173, 3000)" in note
    assert "You were working on: fix the bug" in note and note.endswith("Continue where you left off.")
    idle = resume_note(manifest(), "/workspace")
    assert "restarted" not in idle and "working on" not in idle and idle.endswith("Carry on from here.")
