"""The language server's pure parts: code actions, diagnostics, hovers, prompts and command arguments."""

from __future__ import annotations

import time

import pytest
from lsprotocol import types as lsp

from palot import api
from palot.api import Agent, AgentStatus, EnvironmentView, PermissionView, parse_hunks
from palot_lsp.actions import (
    APPLY,
    ASK_TITLE,
    FIX_TITLE,
    INBOX_CHOICES,
    REPLY_CHOICES,
    REPLY_PERMISSION,
    REQUEST_CHANGES,
    SHOW_DIFF,
    SPAWN,
    bulk_question,
    code_actions,
    code_lenses,
    inbox_choices,
    inbox_question,
    notification_button,
    request_lines,
)
from palot_lsp.changes import AgentChange, find_overlaps, permission_for_file, relative_path
from palot_lsp.commands import ACTION_COMMANDS, COMMAND_FIELDS, COMMANDS, InvalidArguments, parse_arguments
from palot_lsp.diagnostics import CHANGE, OVERLAP, PERMISSION, file_diagnostics, hover_markdown, line_range
from palot_lsp.edits import HunkConflict, base_text, hunk_edits
from palot_lsp.prompts import with_context
from palot_lsp.server import to_code_action, to_code_lens

URI = "file:///src/app/notes.md"
LINES = [f"line {i}\n" for i in range(1, 21)]


def agent(agent_id: str, title: str, status: AgentStatus = AgentStatus.RUNNING, **extra: object) -> Agent:
    return Agent(
        id=agent_id, title=title, status=status, project_id="prj_1", project_path="/src/app", project_name="app",
        environment=EnvironmentView(id="env_" + agent_id, type="worktree", directory=f"/wt/{agent_id}",
                                    branch=f"palot/{agent_id}", base_commit="0" * 40),
        session_id="ses_" + agent_id, created_at=time.time(), updated_at=time.time(), **extra,  # type: ignore[arg-type]
    )


def change(a: Agent, patch_body: str, path: str = "notes.md") -> AgentChange:
    patch = f"diff --git a/{path} b/{path}\n--- a/{path}\n+++ b/{path}\n{patch_body}"
    return AgentChange(a, path, tuple(parse_hunks(patch)[path].hunks))


def rng(start: int, end: int, end_char: int = 0) -> lsp.Range:
    return lsp.Range(lsp.Position(start, 0), lsp.Position(end, end_char))


ONE = agent("ag_one", "Tidy the notes")
TWO = agent("ag_two", "Reword the notes", AgentStatus.COMPLETED)
# ag_one replaced line 3; ag_two replaced line 4 (hunks overlap through their context lines).
ONE_CHANGE = change(ONE, "@@ -2,3 +2,3 @@\n line 2\n-line 3\n+line three\n line 4\n")
TWO_CHANGE = change(TWO, "@@ -3,3 +3,3 @@\n line 3\n-line 4\n+line four\n line 5\n")
FAR_CHANGE = change(TWO, "@@ -17,2 +17,3 @@\n line 17\n+new 18\n line 18\n")


# --- code actions ------------------------------------------------------------------


def test_a_selection_offers_to_ask_or_fix_with_an_agent_carrying_the_file_and_range():
    actions = code_actions(URI, rng(0, 2, 4), [], [], [])
    assert [(a.title, a.command, a.kind) for a in actions] == [
        (ASK_TITLE, SPAWN, lsp.CodeActionKind.Empty), (FIX_TITLE, SPAWN, lsp.CodeActionKind.QuickFix)]
    for action in actions:
        assert action.arguments["uri"] == URI
        assert action.arguments["range"] == {"start": {"line": 0, "character": 0}, "end": {"line": 2, "character": 4}}
    assert code_actions(URI, rng(1, 1), [], [], []) == []  # a bare cursor is no selection


def test_another_servers_diagnostic_can_be_fixed_by_an_agent_but_palots_own_cannot():
    foreign = lsp.Diagnostic(range=rng(4, 4, 9), message="unused variable 'x'", source="pyright")
    own = lsp.Diagnostic(range=rng(4, 4, 9), message="Agent … changed line 5", source="palot", code=CHANGE)
    [action] = code_actions(URI, rng(4, 4), [foreign, own], [], [])
    assert action.title == "Fix this diagnostic with an agent: unused variable 'x'"
    assert action.kind == lsp.CodeActionKind.QuickFix and action.diagnostics == (foreign,)
    assert action.command == SPAWN
    assert action.arguments["prompt"] == "Fix this problem reported by pyright: unused variable 'x'"
    assert action.arguments["range"]["start"]["line"] == 4


def test_lines_an_agent_changed_offer_to_show_or_apply_that_agents_change_or_request_a_change_there():
    actions = code_actions(URI, rng(2, 2), [], [ONE_CHANGE, FAR_CHANGE], [])
    assert [(a.title, a.command, a.arguments) for a in actions] == [
        ("Show the agent's change: ag_one “Tidy the notes”", SHOW_DIFF, {"agent": "ag_one", "path": "notes.md"}),
        ("Apply the agent's change to this file: ag_one “Tidy the notes”", APPLY,
         {"agent": "ag_one", "path": "notes.md"}),
        ("Request a change from ag_one “Tidy the notes” here", REQUEST_CHANGES,
         {"agent": "ag_one", "path": "notes.md", "line": 3, "end_line": 3}),
    ]
    assert code_actions(URI, rng(9, 9), [], [ONE_CHANGE, FAR_CHANGE], []) == []


def test_a_pending_permission_offers_once_always_and_reject_and_only_filters_by_kind():
    waiting = agent("ag_ask", "Ask first", AgentStatus.WAITING)
    perm = PermissionView(id="per_1", permission="edit", patterns=["notes.md"], summary="edit: notes.md")
    pending = permission_for_file(waiting, perm, "notes.md", None)
    assert pending is not None
    actions = code_actions(URI, rng(0, 0), [], [], [pending])
    assert [(a.command, a.arguments["reply"]) for a in actions] == [
        (REPLY_PERMISSION, "once"), (REPLY_PERMISSION, "always"), (REPLY_PERMISSION, "reject")]
    assert actions[0].title == "Allow ag_ask “Ask first” to edit notes.md (once)" and actions[0].preferred
    assert all(a.arguments["permission_id"] == "per_1" for a in actions)  # the api's name
    only_fixes = code_actions(URI, rng(0, 0, 3), [], [ONE_CHANGE], [pending], only=[lsp.CodeActionKind.QuickFix])
    assert {a.command for a in only_fixes} == {REPLY_PERMISSION, SPAWN}


def test_a_selection_ending_at_column_zero_stops_on_the_line_before():
    assert request_lines(rng(0, 3)) == (1, 3)
    assert request_lines(rng(0, 3, 2)) == (1, 4)
    assert request_lines(rng(5, 5)) == (6, 6)


def test_code_actions_carry_their_command_unless_the_client_resolves_it():
    [_, fix] = code_actions(URI, rng(0, 1), [], [], [])
    eager, lazy = to_code_action(fix, lazy=False), to_code_action(fix, lazy=True)
    assert eager.command == lsp.Command(title=FIX_TITLE, command=SPAWN, arguments=[fix.arguments])
    assert lazy.command is None
    assert lazy.data == eager.data == {"command": SPAWN, "arguments": [fix.arguments]}


# --- diagnostics and hover -----------------------------------------------------------------


def test_changed_lines_are_information_and_overlapping_hunks_a_warning_naming_both_agents():
    overlaps = find_overlaps([ONE_CHANGE, TWO_CHANGE, FAR_CHANGE])
    assert [(o.first.agent.id, o.second.agent.id, o.start, o.end) for o in overlaps] == [("ag_one", "ag_two", 3, 4)]
    diags = file_diagnostics([ONE_CHANGE, TWO_CHANGE, FAR_CHANGE], overlaps, [], LINES)
    assert [(d.code, d.severity, d.range.start.line, d.range.end.line) for d in diags] == [
        (CHANGE, lsp.DiagnosticSeverity.Information, 2, 2),
        (CHANGE, lsp.DiagnosticSeverity.Information, 3, 3),
        (CHANGE, lsp.DiagnosticSeverity.Information, 17, 17),
        (OVERLAP, lsp.DiagnosticSeverity.Warning, 2, 3),
    ]
    assert diags[0].message == "Agent ag_one “Tidy the notes” (running) changed line 3 on palot/ag_one"
    assert diags[0].range.end.character == len("line 3")
    assert "ag_one “Tidy the notes” (running) and ag_two “Reword the notes” (completed)" in diags[3].message
    assert all(d.source == "palot" for d in diags)


def test_a_pending_permission_marks_the_lines_its_proposed_edit_would_change():
    waiting = agent("ag_ask", "Ask first", AgentStatus.WAITING)
    perm = PermissionView(id="per_1", permission="edit", patterns=["notes.md"], summary="edit: notes.md")
    proposal = ("Index: /wt/ag_ask/notes.md\n===\n--- /wt/ag_ask/notes.md\n+++ /wt/ag_ask/notes.md\n"
                "@@ -6,3 +6,3 @@\n line 6\n-line 7\n+line seven\n line 8\n")
    pending = permission_for_file(waiting, perm, "notes.md", {"filepath": "/wt/ag_ask/notes.md", "diff": proposal})
    assert pending is not None and (pending.start, pending.end) == (7, 7)
    assert permission_for_file(waiting, perm, "other.md", None) is None
    [diag] = file_diagnostics([], [], [pending], LINES)
    assert (diag.code, diag.severity, diag.range.start.line) == (PERMISSION, lsp.DiagnosticSeverity.Warning, 6)
    assert diag.data == {"kind": PERMISSION, "agent": "ag_ask", "permission": "per_1", "path": "notes.md",
                         "lines": [7, 7]}
    assert "waiting for permission to edit notes.md" in diag.message


def test_ranges_stay_inside_the_document_and_count_the_clients_units():
    assert line_range(40, 45, LINES) == rng(19, 19, len("line 20"))
    emoji = ["a😀b\n"]
    assert line_range(1, 1, emoji, units=lambda s: len(s.encode("utf-16-le")) // 2).end.character == 4
    assert line_range(3, 4, []) == rng(2, 4)


def test_hover_names_the_agent_its_status_and_shows_the_hunk():
    markdown, span = hover_markdown([ONE_CHANGE, FAR_CHANGE], [], 3)  # type: ignore[misc]
    assert span == (3, 3)
    assert "`ag_one` “Tidy the notes” — **running**" in markdown and "branch `palot/ag_one`" in markdown
    assert "```diff\n@@ -2,3 +2,3 @@\n line 2\n-line 3\n+line three\n line 4\n```" in markdown
    assert hover_markdown([ONE_CHANGE], [], 10) is None


def test_hover_shows_titles_branches_summaries_and_hunks_as_written_not_as_markdown():
    tricky = agent("ag_md", "Fix *all* <b>x</b> & [a](b) `c`", AgentStatus.WAITING)
    tricky = tricky.model_copy(update={"environment": tricky.environment.model_copy(update={"branch": "palot/`odd`"})})
    fenced = change(tricky, "@@ -2,3 +2,3 @@\n ```\n-line 3\n+line ````three\n line 4\n")
    perm = PermissionView(id="per_1", permission="edit", patterns=["notes.md"], summary="edit: *notes*.md")
    pending = permission_for_file(tricky, perm, "notes.md", None)
    assert pending is not None
    asking, _ = hover_markdown([fenced], [pending], 1)  # type: ignore[misc]
    assert r"waiting for permission: edit: \*notes\*.md" in asking
    markdown, _ = hover_markdown([fenced], [pending], 3)  # type: ignore[misc]
    assert r"“Fix \*all\* \<b\>x\</b\> \& \[a\](b) \`c\`”" in markdown
    assert "branch `` palot/`odd` ``" in markdown
    assert "`````diff\n@@ -2,3 +2,3 @@\n ```\n-line 3\n+line ````three\n line 4\n`````" in markdown


def test_a_file_is_the_same_relative_path_in_the_checkout_and_in_a_worktree():
    roots = ("/wt/ag_one", "/src/app")
    assert relative_path("/src/app/docs/a.md", roots) == "docs/a.md"
    assert relative_path("/wt/ag_one/docs/a.md", roots) == "docs/a.md"
    assert relative_path("/elsewhere/a.md", roots) is None


# --- prompts and command arguments -------------------------------------------------------------


def test_the_prompt_carries_the_selected_lines_fenced():
    prompt = with_context("Fix the problems in this code.", "src/app.py", 3, 4, "x = 1\ny = 2\n", "python")
    assert prompt == "Fix the problems in this code.\n\nsrc/app.py, lines 3–4:\n```python\nx = 1\ny = 2\n```\n"
    assert "````\n" in with_context("Explain", "a.md", 1, 1, "```\ncode\n```")


def test_command_arguments_are_named_or_positional_and_checked():
    prompt = COMMANDS["palot.prompt"]
    assert parse_arguments(prompt, [{"agent": "ag_1", "text": "again"}]) == {"agent": "ag_1", "text": "again"}
    # Unknown names are refused (as the api refuses them), saying what the command takes.
    with pytest.raises(InvalidArguments) as unknown:
        parse_arguments(prompt, [{"agent": "ag_1", "text": "again", "extra": 1}])
    assert str(unknown.value) == "palot.prompt: unknown argument 'extra'; it takes: agent, text, model"
    assert parse_arguments(prompt, ["ag_1", "again"]) == {"agent": "ag_1", "text": "again"}
    spawn = COMMANDS["palot.spawn"]
    parsed = parse_arguments(spawn, [{"prompt": "fix", "range": {"start": {"line": 1, "character": 0},
                                                                  "end": {"line": 2, "character": 0}}}])
    assert parsed["range"] == rng(1, 2)
    for bad, expected in [
        ([], "palot.prompt needs 'agent'; pass one object: {\"agent\": string, \"text\": string, \"model?\": string}"),
        ([{"agent": "ag_1", "text": 3}], "palot.prompt: 'text' must be a non-empty string, got 3"),
        (["a", "b", "c", "d"], "palot.prompt takes at most 3 arguments, got 4"),
    ]:
        with pytest.raises(InvalidArguments) as e:
            parse_arguments(prompt, bad)
        assert str(e.value).startswith(expected)
    with pytest.raises(InvalidArguments, match="'reply' must be one of once, always, reject"):
        parse_arguments(COMMANDS["palot.replyPermission"], [{"agent": "ag_1", "reply": "yes"}])
    with pytest.raises(InvalidArguments, match="'range' must be an LSP range"):
        parse_arguments(spawn, [{"prompt": "fix", "range": [1, 2]}])
    with pytest.raises(InvalidArguments, match="non-negative integer"):
        parse_arguments(spawn, [{"prompt": "fix", "range": {"start": {"line": -1, "character": 0},
                                                            "end": {"line": True, "character": 0}}}])


def test_older_argument_names_still_mean_the_api_names():
    spawn = COMMANDS["palot.spawn"]
    parsed = parse_arguments(spawn, [{"prompt": "fix", "permissionMode": "ask", "baseBranch": "main",
                                      "setupScript": "true"}])
    assert parsed == {"prompt": "fix", "permission_mode": "ask", "base_branch": "main", "setup_script": "true"}
    reply = parse_arguments(COMMANDS["palot.replyPermission"], [{"agent": "a", "reply": "once", "permission": "p"}])
    assert reply["permission_id"] == "p"
    assert parse_arguments(COMMANDS["palot.list"], [{"includeArchived": True, "status": "running"}]) == {
        "include_archived": True, "status": ["running"]}


def test_every_api_action_is_a_command_taking_every_field_of_its_request():
    assert set(ACTION_COMMANDS) == set(api.ACTIONS)
    for action, spec in api.ACTIONS.items():
        command = COMMANDS[ACTION_COMMANDS[action]]
        assert command.action == action
        assert set(spec.request.model_fields) <= set(COMMAND_FIELDS[command.name]), action
        required = {n for n, f in spec.request.model_fields.items() if f.is_required()}
        # The editor may leave out a spawn's project (the workspace's) and request_changes' comments (a code
        # action gives one comment's path, lines and text).
        optional = {"spawn": {"project"}, "request_changes": {"comments"}}.get(action, set())
        assert {a.name for a in command.args if a.required} == required - optional


# --- one file's change as the editor's edit ------------------------------------------------------


def test_a_files_hunks_become_text_edits_on_the_document_and_a_changed_document_conflicts():
    patch = ("diff --git a/notes.md b/notes.md\n--- a/notes.md\n+++ b/notes.md\n"
             "@@ -2,3 +2,3 @@\n line 2\n-line 3\n+line three\n line 4\n"
             "@@ -19,2 +19,3 @@\n line 19\n line 20\n+line 21\n")
    hunks = parse_hunks(patch)["notes.md"].hunks
    edits = hunk_edits(LINES, hunks, "notes.md")
    assert [(e.range.start.line, e.range.end.line, e.new_text) for e in edits] == [
        (1, 4, "line 2\nline three\nline 4\n"), (18, 20, "line 19\nline 20\nline 21\n")]
    edited = [*LINES]
    edited[2] = "line 3, changed by you\n"
    with pytest.raises(HunkConflict, match="notes.md no longer has the lines 2–4 the agent changed"):
        hunk_edits(edited, hunks, "notes.md")


def test_the_base_of_a_file_is_the_agents_version_with_its_hunks_undone():
    patch = ("diff --git a/notes.md b/notes.md\n--- a/notes.md\n+++ b/notes.md\n"
             "@@ -1,3 +1,3 @@\n line 1\n-line 2\n+line two\n line 3\n"
             "@@ -19,2 +19,3 @@\n line 19\n-line 20\n\\ No newline at end of file\n+line 20\n+line 21\n")
    hunks = parse_hunks(patch)["notes.md"].hunks
    base = "".join(LINES)[:-1]  # the base ended without a newline
    agent = base.replace("line 2\n", "line two\n") + "\nline 21\n"
    assert base_text(agent, hunks, "notes.md") == base
    added = parse_hunks("diff --git a/new.md b/new.md\nnew file mode 100644\n--- /dev/null\n+++ b/new.md\n"
                        "@@ -0,0 +1,2 @@\n+one\n+two\n")["new.md"].hunks
    assert base_text("one\ntwo\n", added, "new.md") == ""
    with pytest.raises(HunkConflict, match="notes.md no longer has the lines 1–3 the agent wrote"):
        base_text(agent.replace("line two", "line 2 again"), hunks, "notes.md")


def test_a_code_lens_above_each_agents_first_change_names_it_and_offers_show_and_apply():
    lenses = code_lenses([ONE_CHANGE, TWO_CHANGE])
    assert [(x.line, x.title, x.command) for x in lenses] == [
        (3, "Palot: ag_one “Tidy the notes” (running), 1 change", SHOW_DIFF),
        (3, "Apply to this file", APPLY),
        (4, "Palot: ag_two “Reword the notes” (completed), 1 change", SHOW_DIFF),
        (4, "Apply to this file", APPLY),
    ]
    assert lenses[0].arguments == {"agent": "ag_one", "path": "notes.md"}
    both = change(ONE, "@@ -2,3 +2,3 @@\n line 2\n-line 3\n+line three\n line 4\n@@ -17,2 +17,3 @@\n line 17\n+new 18\n"
                       " line 18\n")
    assert code_lenses([both])[0].title.endswith("(running), 2 changes")
    lens = to_code_lens(lenses[0], LINES)
    assert lens.range == rng(2, 2, len("line 3")) and lens.command is not None
    assert lens.command.arguments == [{"agent": "ag_one", "path": "notes.md"}]


@pytest.mark.parametrize(("action", "button"), [
    ("palot inbox", ("Open inbox", "palot.inbox", {})),
    ("palot agents diff ag_1", ("Show the change", "palot.showDiff", {"agent": "ag_1"})),
    ("palot agents show ag_1", ("Show the agent", "palot.get", {"agent": "ag_1"})),
    ("palot agents budget ag_1 1.00", ("Raise the budget to $1.00", "palot.setBudget", {"agent": "ag_1", "usd": 1.0})),
    ("palot agents budget ag_1 --tokens 90000",
     ("Raise the budget to 90,000 tokens", "palot.setBudget", {"agent": "ag_1", "tokens": 90000})),
    ("edit /home/me/.palot/settings.toml", ("Open settings", "palot.settings", {"open": True})),
    ("raise budgets.day_usd in settings.toml", ("Open settings", "palot.settings", {"open": True})),
    ("palot agents budget ag_1 lots", None),
    (None, None),
])
def test_a_notifications_next_step_is_a_button_running_a_command_it_can_parse(action, button):
    spec = notification_button(api.Notification(kind="needs_you", title="t", action=action))
    assert (spec and (spec.title, spec.command, spec.arguments)) == button
    if spec is not None:  # the command takes those arguments
        parse_arguments(COMMANDS[spec.command], [spec.arguments])


def test_the_inbox_offers_the_oldest_requests_as_unique_buttons_then_the_three_answers():
    now = time.time()
    items = [api.InboxItem(permission_id=f"per_{n}", agent_id="ag_1", agent_title="Fix", project_name="app",
                           project_path="/src/app", tool="bash", patterns=["npm test"], summary="run",
                           asked_at=now - n) for n in range(INBOX_CHOICES + 3)]
    choices = inbox_choices(items)
    assert len(choices) == INBOX_CHOICES and list(choices)[0] == "1. ag_1 bash: npm test"
    assert [i.permission_id for i in choices.values()][0] == f"per_{INBOX_CHOICES + 2}"  # the oldest first
    assert inbox_question(items[0], now + 65).startswith("Agent ag_1 “Fix” in app asks to bash: npm test (waiting 1m05s)")
    assert REPLY_CHOICES == {"Allow once": "once", "Allow always": "always", "Reject": "reject"}


def test_a_bulk_plan_is_asked_as_one_question_naming_the_agents_and_nothing_to_do_asks_nothing():
    def item(n: int, outcome: str) -> api.BulkItem:
        return api.BulkItem(agent_id=f"ag_{n}", title=f"job {n}", status=AgentStatus.COMPLETED, project_name="web",
                            environment="worktree", updated_at=0, outcome=outcome, message="")

    plan = api.BulkResult(operation="archive", dry_run=True, items=[item(1, "would"), item(2, "skipped"),
                                                                    *(item(n, "would") for n in range(3, 12))])
    question, button = bulk_question(plan)
    assert button == "Archive 10 agents"
    assert question.startswith("Archive 10 agents (1 skipped): ag_1 “job 1”; ag_3 “job 3”")
    assert question.endswith("and 2 more?") and "ag_2" not in question
    assert bulk_question(api.BulkResult(operation="destroy", dry_run=True, items=[item(1, "skipped")])) is None


def test_a_failed_auto_archive_offers_to_archive_the_agent_now():
    note = api.Notification(kind="needs_you", reason="auto_archive_failed", title="t (ag_1) could not be archived",
                            action="palot agents archive ag_1", agent_ids=["ag_1"])
    button = notification_button(note)
    assert button is not None and (button.title, button.command, button.arguments) == (
        "Archive it", "palot.archive", {"agent": "ag_1"})
