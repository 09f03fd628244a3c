"""An agent's status and activity, derived from what OpenCode reports.

The pure functions are fed messages in OpenCode 1.18's shapes (copied from a
real run with the scripted model: a write, an edit, bash, grep, glob, todos,
an API error, an abort); the last test checks the same on the real server.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from palot import AgentStatus, Palot
from palot.agents.activity import build_activity, last_outcome, simplify_messages
from palot.agents.status import LiveState, derive_status
from palot.opencode import Message

ROOT = "/home/me/.palot/worktrees/project-1a2b3c/palot-write-hello-please"
SESSION = "ses_dffb654a6ffeAM49eqGOyhrrPU"
T0 = 1_795_301_157_818  # OpenCode times are milliseconds

# --- derive_status ---------------------------------------------------------------------------------

PERMISSION = {"id": "per_1", "sessionID": SESSION, "permission": "edit", "patterns": ["README.md"]}


@pytest.mark.parametrize(("live", "archived", "expected"), [
    pytest.param(LiveState(busy=True, permissions={"per_1": PERMISSION}, migrating=True, error="x"), True,
                 AgentStatus.ARCHIVED, id="archived-beats-everything"),
    pytest.param(LiveState(migrating=True, provisioning=True, busy=True), False,
                 AgentStatus.MIGRATING, id="migrating-beats-provisioning-and-busy"),
    pytest.param(LiveState(provisioning=True), False, AgentStatus.PROVISIONING, id="provisioning"),
    pytest.param(LiveState(provisioning=True, prompt_pending=True, permissions={"per_1": PERMISSION}), False,
                 AgentStatus.PROVISIONING, id="provisioning-beats-waiting-and-running"),
    pytest.param(LiveState(busy=True, permissions={"per_1": PERMISSION}), False,
                 AgentStatus.WAITING, id="waiting-beats-busy"),
    pytest.param(LiveState(permissions={"per_1": PERMISSION}, aborted=True, error="x"), False,
                 AgentStatus.WAITING, id="waiting-beats-paused-and-failed"),
    pytest.param(LiveState(busy=True), False, AgentStatus.RUNNING, id="running-when-busy"),
    pytest.param(LiveState(prompt_pending=True), False, AgentStatus.RUNNING, id="running-when-prompt-sent"),
    pytest.param(LiveState(busy=True, aborted=True, error="x"), False,
                 AgentStatus.RUNNING, id="running-beats-an-earlier-abort-or-error"),
    pytest.param(LiveState(aborted=True), False, AgentStatus.PAUSED, id="paused-after-abort"),
    pytest.param(LiveState(aborted=True, error="APIError: boom"), False,
                 AgentStatus.PAUSED, id="abort-beats-error"),
    pytest.param(LiveState(error="APIError: scripted failure"), False, AgentStatus.FAILED, id="failed"),
    pytest.param(LiveState(tokens=2490, cost=0.01), False, AgentStatus.COMPLETED, id="completed-when-idle"),
])
def test_derive_status_picks_the_one_status_that_matters(live: LiveState, archived: bool, expected: AgentStatus):
    assert derive_status(live, archived=archived) == expected


def test_only_provisioning_running_and_migrating_count_as_active():
    assert {s for s in AgentStatus if s.active} == {
        AgentStatus.PROVISIONING, AgentStatus.RUNNING, AgentStatus.MIGRATING}


# --- messages in OpenCode's shapes -----------------------------------------------------------------


def user(msg_id: str, text: str, created: int = T0) -> Message:
    return Message.model_validate({
        "info": {"id": msg_id, "sessionID": SESSION, "role": "user", "time": {"created": created},
                 "agent": "build", "model": {"providerID": "palot-scripted", "modelID": "scripted"}},
        "parts": [{"id": f"prt_{msg_id}", "sessionID": SESSION, "messageID": msg_id, "type": "text", "text": text}],
    })


def assistant(msg_id: str, parts: list[dict[str, Any]], *, created: int, completed: int | None = None,
              error: dict[str, Any] | None = None, finish: str | None = "stop") -> Message:
    info: dict[str, Any] = {
        "id": msg_id, "sessionID": SESSION, "role": "assistant", "time": {"created": created},
        "parentID": "msg_user", "modelID": "scripted", "providerID": "palot-scripted", "mode": "build",
        "agent": "build", "path": {"cwd": ROOT, "root": ROOT}, "cost": 0,
        "tokens": {"input": 2473, "output": 17, "reasoning": 0, "cache": {"read": 0, "write": 0}},
    }
    if completed is not None:
        info["time"]["completed"] = completed
        info["finish"] = finish
    if error is not None:
        info["error"] = error
    full = [{"sessionID": SESSION, "messageID": msg_id, **p} for p in parts]
    return Message.model_validate({"info": info, "parts": full})


def step_start(n: int) -> dict[str, Any]:
    return {"id": f"prt_start{n}", "type": "step-start", "snapshot": "309ffe4f7d70cadf589f7f868a2ca45f8cd2ea23"}


def step_finish(n: int, reason: str = "tool-calls") -> dict[str, Any]:
    return {"id": f"prt_finish{n}", "type": "step-finish", "reason": reason, "cost": 0,
            "snapshot": "d946570b2a9c859eb553a06bff9f91e03d52f731",
            "tokens": {"total": 2490, "input": 2473, "output": 17, "reasoning": 0, "cache": {"read": 0, "write": 0}}}


def text(part_id: str, body: str, start: int, **extra: Any) -> dict[str, Any]:
    return {"id": part_id, "type": "text", "text": body, "time": {"start": start, "end": start + 4}, **extra}


def reasoning(part_id: str, body: str, start: int) -> dict[str, Any]:
    return {"id": part_id, "type": "reasoning", "text": body, "time": {"start": start, "end": start + 6}}


def tool(part_id: str, name: str, inp: dict[str, Any], *, start: int | None, status: str = "completed",
         output: str = "", title: str = "", metadata: dict[str, Any] | None = None,
         error: str | None = None) -> dict[str, Any]:
    state: dict[str, Any] = {"status": status, "input": inp}
    if status == "completed":
        state.update(output=output, title=title, metadata=metadata or {})
    if status == "error":
        state["error"] = error
    if status == "running":
        state.update(title=title, metadata=metadata or {})
    if start is not None:
        state["time"] = {"start": start, "end": start + 27} if status != "running" else {"start": start}
    return {"id": part_id, "type": "tool", "tool": name, "callID": f"call_{part_id}", "state": state}


def hello_transcript() -> list[Message]:
    """The "write hello please" run: a write in one step, then a closing text."""
    return [
        user("msg_user", "write hello please"),
        assistant("msg_a1", [
            step_start(1),
            tool("prt_write", "write", {"filePath": "hello.txt", "content": "hello from the agent\n"},
                 start=T0 + 2752, output="Wrote file successfully.", title="hello.txt",
                 metadata={"diagnostics": {}, "filepath": f"{ROOT}/hello.txt", "exists": False, "truncated": False}),
            step_finish(1),
            {"id": "prt_patch", "type": "patch", "hash": "309ffe4f", "files": [f"{ROOT}/hello.txt"]},
        ], created=T0 + 1327, completed=T0 + 2896, finish="tool-calls"),
        assistant("msg_a2", [step_start(2), text("prt_said", "Created hello.txt.", T0 + 3012),
                             step_finish(2, "stop")],
                  created=T0 + 2902, completed=T0 + 3116),
    ]


def one_tool(part: dict[str, Any]) -> list[Message]:
    return [assistant("msg_t", [step_start(1), part, step_finish(1)], created=T0, completed=T0 + 500)]


def lines(messages: list[Message], root: str | None = ROOT) -> list[tuple[str, str, str, str, str]]:
    return [(i.kind, i.verb, i.target, i.summary, i.state) for i in build_activity(messages, root)]


# --- build_activity --------------------------------------------------------------------------------


def test_a_write_then_a_reply_become_two_activity_lines_with_cursor_indexes():
    items = build_activity(hello_transcript(), ROOT)
    assert [(i.index, i.id, i.kind, i.verb, i.target, i.summary, i.state) for i in items] == [
        (0, "prt_write", "write", "Writing", "hello.txt", "1 lines", "completed"),
        (1, "prt_said", "message", "Said", "", "Created hello.txt.", "completed"),
    ]
    # Times in seconds: when the tool started, when the text started.
    assert [i.time for i in items] == [(T0 + 2752) / 1000, (T0 + 3012) / 1000]


def test_user_messages_steps_and_patches_are_not_activity():
    only_user = [user("msg_u", "write hello please")]
    assert build_activity(only_user) == []
    bookkeeping = [assistant("msg_x", [step_start(1), step_finish(1, "stop"),
                                       {"id": "prt_patch", "type": "patch", "hash": "abc", "files": []}],
                             created=T0, completed=T0 + 10)]
    assert build_activity(bookkeeping) == []


def test_paths_inside_the_worktree_are_shown_relative_and_others_as_given():
    part = tool("prt_r", "read", {"filePath": f"{ROOT}/src/app.py"}, start=T0)
    assert lines(one_tool(part)) == [("read", "Reading", "src/app.py", "", "completed")]
    outside = tool("prt_r", "read", {"filePath": "/etc/hosts"}, start=T0)
    assert lines(one_tool(outside)) == [("read", "Reading", "/etc/hosts", "", "completed")]
    # A sibling directory sharing the worktree's name as a prefix is not inside it.
    sibling = tool("prt_r", "read", {"filePath": f"{ROOT}-2/a.py"}, start=T0)
    assert lines(one_tool(sibling))[0][2] == f"{ROOT}-2/a.py"
    assert lines(one_tool(part), root=None)[0][2] == f"{ROOT}/src/app.py"


EDIT_DIFF = f"--- {ROOT}/README.md\n+++ {ROOT}/README.md\n@@ -1,1 +1,3 @@\n # sample project\n+with two\n+new lines\n"


@pytest.mark.parametrize(("part", "expected"), [
    pytest.param(
        tool("p", "edit", {"filePath": "README.md", "oldString": "sample project",
                           "newString": "sample project\nwith two\nnew lines"},
             start=T0, output="Edit applied successfully.", title="README.md",
             metadata={"diagnostics": {}, "diff": EDIT_DIFF, "truncated": False,
                       "filediff": {"file": f"{ROOT}/README.md", "patch": EDIT_DIFF, "additions": 2, "deletions": 0}}),
        ("edit", "Editing", "README.md", "+2 -0", "completed"), id="edit-counts-from-the-file-diff"),
    pytest.param(
        tool("p", "edit", {"filePath": "README.md", "oldString": "a\nb", "newString": "x\ny\nz"},
             start=T0, status="running"),
        ("edit", "Editing", "README.md", "+3 -2", "running"), id="edit-in-progress-counts-the-strings"),
    pytest.param(
        tool("p", "bash", {"command": "echo hi && echo there", "description": "say hi"}, start=T0,
             output="hi\nthere\n", title="echo hi && echo there",
             metadata={"output": "hi\nthere\n", "exit": 0, "truncated": False}),
        ("bash", "Running", "echo hi && echo there", "hi", "completed"), id="bash-first-output-line"),
    pytest.param(
        tool("p", "bash", {"command": "echo oops >&2; exit 3", "description": "fail"}, start=T0,
             output="oops\n", title="echo oops >&2; exit 3",
             metadata={"output": "oops\n", "exit": 3, "truncated": False}),
        ("bash", "Running", "echo oops >&2; exit 3", "exit 3: oops", "completed"), id="bash-nonzero-exit"),
    pytest.param(
        tool("p", "grep", {"pattern": "sample"}, start=T0, title="sample",
             output="Found 1 matches\nREADME.md:\n  Line 1: # sample project\n",
             metadata={"matches": 1, "truncated": False}),
        ("grep", "Searching", "sample", "1 matches", "completed"), id="grep"),
    pytest.param(
        tool("p", "glob", {"pattern": "*.md"}, start=T0, output=f"{ROOT}/README.md",
             metadata={"count": 1, "truncated": False}),
        ("glob", "Finding", "*.md", "1 files", "completed"), id="glob"),
    pytest.param(
        tool("p", "todowrite", {"todos": [
            {"content": "a", "status": "completed", "priority": "high", "id": "1"},
            {"content": "b", "status": "pending", "priority": "low", "id": "2"}]},
            start=T0, title="1 todos"),
        ("todo", "Planning", "", "2 todos, 1 done", "completed"), id="todowrite"),
    pytest.param(
        tool("p", "task", {"description": "explore the tests", "prompt": "...", "subagent_type": "general"},
             start=T0),
        ("task", "Delegating", "explore the tests", "", "completed"), id="task"),
    pytest.param(
        tool("p", "webfetch", {"url": "https://example.com/doc", "format": "markdown"}, start=T0),
        ("web", "Fetching", "https://example.com/doc", "", "completed"), id="webfetch"),
    pytest.param(
        tool("p", "lsp_hover", {"file": "a.py"}, start=T0, title="hover a.py"),
        ("tool", "Lsp_hover", "hover a.py", "", "completed"), id="any-other-tool"),
    pytest.param(
        tool("p", "read", {"filePath": "missing.txt"}, start=T0, status="error",
             error=f"File not found: {ROOT}/missing.txt"),
        ("read", "Reading", "missing.txt", f"File not found: {ROOT}/missing.txt", "error"),
        id="failed-tool-shows-its-error"),
    pytest.param(
        tool("p", "write", {"filePath": "a.txt", "content": "1\n2\n3\n"}, start=None, status="pending"),
        ("write", "Writing", "a.txt", "3 lines", "pending"), id="pending-tool"),
])
def test_each_tool_call_becomes_one_line(part: dict[str, Any], expected: tuple):
    assert lines(one_tool(part)) == [expected]


def test_thinking_and_long_text_show_their_first_line_and_synthetic_text_is_hidden():
    long_line = "word " * 40
    msgs = [assistant("msg_a", [
        step_start(1),
        reasoning("prt_think", "Let me look around first.\nThen act.", T0 + 10),
        text("prt_hidden", "Called the Read tool with the following input: {}", T0 + 20, synthetic=True),
        text("prt_empty", "", T0 + 25),
        text("prt_long", f"\n{long_line}\nsecond line", T0 + 30),
        step_finish(1, "stop"),
    ], created=T0, completed=T0 + 100)]
    items = build_activity(msgs)
    assert [(i.id, i.kind, i.verb) for i in items] == [
        ("prt_think", "thinking", "Thinking"), ("prt_long", "message", "Said")]
    assert items[0].summary == "Let me look around first."
    assert len(items[1].summary) == 120 and items[1].summary.endswith("…")
    assert items[1].summary.startswith("word word")


def test_a_tool_without_a_start_time_takes_its_messages_time():
    part = tool("prt_w", "write", {"filePath": "a.txt", "content": "x\n"}, start=None, status="pending")
    [item] = build_activity([assistant("msg_a", [part], created=T0 + 5000)])
    assert item.time == (T0 + 5000) / 1000


API_ERROR = {"name": "APIError", "data": {
    "message": "scripted failure for the test", "statusCode": 400, "isRetryable": False,
    "responseBody": '{"error": {"message": "scripted failure for the test"}}'}}
ABORTED = {"name": "MessageAbortedError", "data": {"message": "Aborted"}}
#: How Palot says that failure: one line with the fix.
FAILED_TEXT = ("the model provider answered 400: scripted failure for the test — check the provider's status and "
               "your quota, then prompt the agent again")


def test_a_failed_turn_ends_with_an_error_line_but_an_aborted_one_does_not():
    failed = [user("msg_u", "provoke an error"),
              assistant("msg_f", [], created=T0 + 400, completed=T0 + 1600, error=API_ERROR, finish=None)]
    [item] = build_activity(failed)
    assert (item.index, item.id, item.kind, item.verb, item.summary, item.state) == (
        0, "msg_f-error", "error", "Failed", FAILED_TEXT, "error")
    assert item.time == (T0 + 400) / 1000

    aborted = [user("msg_u", "slow task"),
               assistant("msg_s", [step_start(1), text("prt_s", "Thinking very slowly ", T0 + 900)],
                         created=T0 + 400, completed=T0 + 2000, error=ABORTED, finish=None)]
    assert lines(aborted) == [("message", "Said", "", "Thinking very slowly", "completed")]


def test_indexes_run_across_the_whole_session_so_they_work_as_a_cursor():
    msgs = hello_transcript() + [
        user("msg_u2", "write notes"),
        assistant("msg_b1", [step_start(3), tool("prt_notes", "write", {"filePath": "NOTES.md", "content": "# N\n"},
                                                 start=T0 + 9000), step_finish(3)],
                  created=T0 + 8000, completed=T0 + 9100),
        assistant("msg_b2", [text("prt_wrote", "Wrote NOTES.md.", T0 + 9500)], created=T0 + 9200),
    ]
    items = build_activity(msgs, ROOT)
    assert [(i.index, i.id) for i in items] == [
        (0, "prt_write"), (1, "prt_said"), (2, "prt_notes"), (3, "prt_wrote")]


# --- simplify_messages and last_outcome ------------------------------------------------------------


def test_simplified_messages_keep_role_time_text_tools_and_error():
    msgs = hello_transcript() + [
        assistant("msg_f", [], created=T0 + 5000, completed=T0 + 5100, error=API_ERROR, finish=None)]
    simple = simplify_messages(msgs)
    assert [(m.id, m.role, m.text, m.tools, m.error) for m in simple] == [
        ("msg_user", "user", "write hello please", [], None),
        ("msg_a1", "assistant", "", ["write"], None),
        ("msg_a2", "assistant", "Created hello.txt.", [], None),
        ("msg_f", "assistant", "", [], FAILED_TEXT),
    ]
    assert simple[0].time == T0 / 1000


def test_several_text_parts_are_joined_line_by_line():
    msgs = [assistant("msg_a", [text("p1", "First.", T0), text("p2", "Second.", T0 + 1)], created=T0)]
    assert simplify_messages(msgs)[0].text == "First.\nSecond."


@pytest.mark.parametrize(("messages", "expected"), [
    pytest.param([], (False, None, False), id="no-messages"),
    pytest.param(hello_transcript(), (False, None, False), id="finished-turn"),
    pytest.param([user("msg_u", "slow task"),
                  assistant("msg_s", [], created=T0 + 1, completed=T0 + 2, error=ABORTED, finish=None)],
                 (True, None, False), id="aborted"),
    pytest.param([user("msg_u", "provoke an error"),
                  assistant("msg_f", [], created=T0 + 1, completed=T0 + 2, error=API_ERROR, finish=None)],
                 (False, FAILED_TEXT, False), id="failed"),
    pytest.param([user("msg_u", "write hello"), assistant("msg_a", [step_start(1)], created=T0 + 1)],
                 (False, None, True), id="answer-still-streaming"),
    pytest.param(hello_transcript()[:2], (False, None, True), id="stopped-after-a-tool-step"),
    pytest.param([*hello_transcript(), user("msg_u2", "and now notes")], (False, None, True),
                 id="prompt-without-an-answer-yet"),
    pytest.param([user("msg_u", "x"),
                  assistant("msg_f", [], created=T0 + 1, completed=T0 + 2, error=API_ERROR, finish=None),
                  user("msg_u2", "try again"),
                  assistant("msg_ok", [text("p", "Done.", T0 + 4)], created=T0 + 3, completed=T0 + 5)],
                 (False, None, False), id="only-the-newest-answer-counts"),
])
def test_last_outcome_reads_the_newest_turn(messages: list[Message], expected: tuple):
    assert last_outcome(messages) == expected


# --- on the real server ----------------------------------------------------------------------------


async def test_a_real_agents_activity_and_its_since_cursor(palot: Palot, repo: Path):
    agent = await palot.agents.spawn(repo, "write hello please")
    agent = await palot.agents.wait(agent.id, timeout=60)
    assert agent.status == AgentStatus.COMPLETED, agent.error

    items = await palot.agents.activity(agent.id)
    assert [(i.index, i.kind, i.verb, i.target, i.summary, i.state) for i in items] == [
        (0, "write", "Writing", "hello.txt", "1 lines", "completed"),
        (1, "message", "Said", "", "Created hello.txt.", "completed"),
    ]
    assert items[0].time <= items[1].time
    assert [i.index for i in await palot.agents.activity(agent.id, since=1)] == [1]
    assert await palot.agents.activity(agent.id, since=len(items)) == []

    # The next turn's lines come after the cursor, and only they.
    agent = await palot.agents.prompt(agent.id, "write notes")
    agent = await palot.agents.wait(agent.id, timeout=60)
    assert agent.status == AgentStatus.COMPLETED, agent.error
    newer = await palot.agents.activity(agent.id, since=len(items))
    assert [(i.index, i.kind, i.target, i.summary) for i in newer] == [
        (2, "write", "NOTES.md", "3 lines"), (3, "message", "", "Wrote NOTES.md.")]

    # The hand-built transcript above has the shape the real server produces.
    real = await palot.agents._client().messages(agent.session_id, agent.environment.directory)
    fixture = hello_transcript()
    assert [m.info.role for m in real[:3]] == [m.info.role for m in fixture]
    assert [[p.type for p in m.parts] for m in real[:3]] == [[p.type for p in m.parts] for m in fixture]
    real_write, fixture_write = real[1].parts[1], fixture[1].parts[1]
    assert set(real_write.state or {}) == set(fixture_write.state or {})
    assert set(real_write.state["metadata"]) == set(fixture_write.state["metadata"])
