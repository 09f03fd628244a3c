"""What the dashboard shows, as pure functions: numbers, badges, order, filters, overview, diff and activity."""

from __future__ import annotations

import time

import pytest
from palot.api import (
    STATUS_STYLE,
    ActivityItem,
    Agent,
    AgentDiff,
    AgentStatus,
    EnvironmentView,
    FileChange,
    Notification,
    PermissionView,
)
from palot_jupyter.format import (
    Filters,
    actions,
    activity_entry,
    cost,
    diff_html,
    elapsed,
    facets,
    notification_html,
    overview,
    row_cells,
    start_of_day,
    status_badge,
    tokens,
    visible,
)

NOW = start_of_day(time.time()) + 12 * 3600  # noon today: "today" is unambiguous


def agent(agent_id: str, status: AgentStatus = AgentStatus.COMPLETED, *, created: float = NOW - 600,
          updated: float = NOW - 60, project: str = "prj_app", name: str = "app", env: str = "worktree",
          **fields: object) -> Agent:
    return Agent(
        id=agent_id, title=fields.pop("title", f"task {agent_id}"), status=status, project_id=project,
        project_path=f"/src/{name}", project_name=name,
        environment=EnvironmentView(id=f"env_{agent_id}", type=env, directory=f"/wt/{agent_id}",
                                    branch=f"palot/{agent_id}", base_commit="0123456789abcdef"),
        session_id=fields.pop("session_id", f"ses_{agent_id}"), created_at=created, updated_at=updated, **fields,
    )


def test_numbers_read_like_the_seed() -> None:
    assert [tokens(n) for n in (0, 980, 45_000, 45_210, 1_200_000)] == ["0", "980", "45k", "45.2k", "1.2M"]
    assert [cost(c) for c in (0, 0.0042, 0.18, 2.344)] == ["$0.00", "$0.0042", "$0.18", "$2.34"]


def test_elapsed_grows_while_an_agent_is_live_and_stops_when_it_settles() -> None:
    running = agent("a", AgentStatus.RUNNING, created=NOW - 754)
    assert elapsed(running, NOW) == "12m34s"
    assert elapsed(running, NOW + 60) == "13m34s"
    done = agent("b", AgentStatus.COMPLETED, created=NOW - 754, updated=NOW - 700)
    assert elapsed(done, NOW) == elapsed(done, NOW + 3600) == "54s"


@pytest.mark.parametrize("status", list(AgentStatus))
def test_status_badges_mirror_the_terminal_icons_in_the_seed_colours(status: AgentStatus) -> None:
    badge = status_badge(status, 'Error: "bad" <input>')
    assert f"{STATUS_STYLE[status][0]} {status.value}" in badge
    assert f"palot-st-{status.value}" in badge and "color:#" in badge
    assert 'title="Error: &quot;bad&quot; &lt;input&gt;"' in badge  # the reason, escaped, as the tooltip


def test_a_row_shows_status_title_environment_project_elapsed_tokens_and_cost() -> None:
    row = row_cells(agent("a", AgentStatus.FAILED, tokens=45_210, cost=0.18, error="APIError: overloaded",
                          title="Add <auth>"), NOW)
    assert "✕ failed" in row["status"] and 'title="APIError: overloaded"' in row["status"]
    assert row["title"] == "Add <auth>"  # a button's text: plain, not HTML
    assert "⌂ local" in row["environment"] and ">app<" in row["project"]
    assert (row["elapsed"], row["cost"]) == ("9m00s", "$0.18") and row["tokens"].startswith("45.2k ")


def test_failed_and_waiting_agents_sort_first_then_running_paused_completed_archived() -> None:
    agents = [
        agent("done-old", AgentStatus.COMPLETED, created=NOW - 900),
        agent("done-new", AgentStatus.COMPLETED, created=NOW - 100),
        agent("running", AgentStatus.RUNNING, created=NOW - 50),
        agent("failed", AgentStatus.FAILED, created=NOW - 800),
        agent("waiting", AgentStatus.WAITING, created=NOW - 300),
        agent("paused", AgentStatus.PAUSED, created=NOW - 10),
        agent("archived", AgentStatus.ARCHIVED, created=NOW - 5),
    ]
    assert visible(agents, Filters()) == ["waiting", "failed", "running", "paused", "done-new", "done-old"]
    assert visible(agents, Filters(status="archived")) == ["archived"]


def test_filters_combine_project_status_and_environment() -> None:
    agents = {a.id: a for a in [
        agent("a1", project="prj_a", name="a"), agent("a2", AgentStatus.FAILED, project="prj_a", name="a"),
        agent("b1", project="prj_b", name="b", env="container"), agent("x", env="external", read_only=True),
    ]}
    assert set(visible(agents, Filters(project="prj_a"))) == {"a1", "a2"}
    assert visible(agents, Filters(project="prj_a", status="failed")) == ["a2"]
    assert visible(agents, Filters(environment="container")) == ["b1"]
    assert visible(agents, Filters(environment="cloud")) == []


def test_facets_count_agents_by_project_status_and_environment() -> None:
    agents = [agent("a1", project="prj_a", name="alpha"),
              agent("a2", AgentStatus.FAILED, project="prj_a", name="alpha"),
              agent("b1", AgentStatus.ARCHIVED, project="prj_b", name="beta")]
    f = facets(agents)
    assert f.projects == (("All projects (2)", ""), ("alpha (2)", "prj_a"))  # beta has only an archived agent
    assert ("✕ failed (1)", "failed") in f.statuses and ("▣ archived (1)", "archived") in f.statuses
    assert f.statuses[0] == ("All but archived (2)", "")
    assert f.environments == (("All environments (2)", ""), ("⌂ local (2)", "worktree"))
    # A chosen filter stays an option even when nothing matches it any more.
    assert ("beta (0)", "prj_b") in facets(agents, Filters(project="prj_b")).projects


def test_overview_counts_statuses_usage_today_and_what_needs_attention() -> None:
    perm = PermissionView(id="per_1", permission="edit", patterns=["README.md"], summary="edit: README.md")
    agents = [
        agent("f", AgentStatus.FAILED, error="APIError: OOM", tokens=1000, cost=0.5, updated=NOW - 120),
        agent("w", AgentStatus.WAITING, permissions=[perm], tokens=2000, cost=0.25, created=NOW - 300),
        agent("r", AgentStatus.RUNNING, tokens=500, cost=0.1),
        agent("c1", AgentStatus.COMPLETED, updated=NOW - 600, tokens=100, cost=0.01),
        agent("c2", AgentStatus.COMPLETED, updated=NOW - 30, tokens=100, cost=0.01),
        agent("old", AgentStatus.COMPLETED, created=NOW - 2 * 86400, updated=NOW - 86400, tokens=10**6, cost=9.0),
    ]
    ov = overview(agents, NOW)
    assert ov.total == 6
    assert dict(ov.counts) == {AgentStatus.RUNNING: 1, AgentStatus.WAITING: 1, AgentStatus.COMPLETED: 3,
                               AgentStatus.FAILED: 1}
    assert (ov.tokens_today, round(ov.cost_today, 2)) == (3700, 0.87)  # yesterday's agent is not today's
    assert [(i.agent_id, i.line) for i in ov.attention] == [
        ("w", "waiting 1m ago: needs approval: edit: README.md"), ("f", "failed 2m ago: APIError: OOM")]
    assert [i.agent_id for i in ov.recent] == ["c2", "c1", "old"]
    assert ov.recent[0].line.startswith("completed just now")
    assert [i.agent_id for i in ov.running] == ["r"]


PATCH = """diff --git a/src/app.py b/src/app.py
index 1111111..2222222 100644
--- a/src/app.py
+++ b/src/app.py
@@ -1,3 +1,4 @@
 import os
-print("<old>")
+print("<script>new</script>")
+print("more")
 x = 1
diff --git a/NOTES.md b/NOTES.md
new file mode 100644
--- /dev/null
+++ b/NOTES.md
@@ -0,0 +1,2 @@
+# Notes
+hi
diff --git a/gone.txt b/gone.txt
deleted file mode 100644
--- a/gone.txt
+++ /dev/null
@@ -1 +0,0 @@
-bye
diff --git a/logo.png b/logo.png
new file mode 100644
Binary files /dev/null and b/logo.png differ
"""


def _diff() -> AgentDiff:
    return AgentDiff(agent_id="a", base_commit="0123", additions=4, deletions=2, patch=PATCH, files=[
        FileChange(path="src/app.py", status="modified", additions=2, deletions=1),
        FileChange(path="NOTES.md", status="added", additions=2, deletions=0),
        FileChange(path="gone.txt", status="deleted", additions=0, deletions=1),
        FileChange(path="logo.png", status="added", additions=0, deletions=0, binary=True),
    ])


def test_the_diff_lists_files_with_their_counts_and_colours_each_hunk_line() -> None:
    html = diff_html(_diff())
    assert "FILES CHANGED (4)" in html and "+4" in html and "−2" in html
    assert '<td class="palot-mark">~</td><td class="palot-path">src/app.py</td>' in html
    assert '<td class="palot-mark">−</td><td class="palot-path">gone.txt</td>' in html
    assert '<span class="palot-hunk">@@ -1,3 +1,4 @@</span>' in html
    assert '<span class="palot-line-del">-print(&quot;&lt;old&gt;&quot;)</span>' in html
    assert '<span class="palot-line-add">+print(&quot;&lt;script&gt;new&lt;/script&gt;&quot;)</span>' in html
    assert '<span class="palot-line-ctx"> import os</span>' in html
    assert "<script>" not in html  # file contents are text, never markup
    assert "file deleted" in html and "binary file" in html
    assert diff_html(AgentDiff(agent_id="a", base_commit=None, files=[], additions=0, deletions=0, patch="")) \
        .count("No changes yet") == 1


def test_a_long_file_diff_is_cut_with_a_count_of_what_is_left() -> None:
    body = "".join(f"+line {i}\n" for i in range(1000))
    patch = f"diff --git a/big.txt b/big.txt\n--- /dev/null\n+++ b/big.txt\n@@ -0,0 +1,1000 @@\n{body}"
    diff = AgentDiff(agent_id="a", base_commit=None, additions=1000, deletions=0, patch=patch,
                     files=[FileChange(path="big.txt", status="added", additions=1000, deletions=0)])
    html = diff_html(diff, max_lines=50)
    assert html.count("palot-line-add") == 50 and "… 950 more lines" in html


def test_an_activity_line_has_time_icon_verb_target_and_summary() -> None:
    t = NOW + 2
    item = ActivityItem(index=0, id="prt_1", time=t, kind="edit", verb="Editing", target="src/a.py",
                        summary="+24 -3", state="running")
    entry = activity_entry(item)
    assert entry == {"id": "prt_1", "time": time.strftime("%H:%M:%S", time.localtime(t)), "icon": "✏️",
                     "kind": "edit", "verb": "Editing", "target": "src/a.py", "summary": "+24 -3",
                     "state": "running"}


def test_actions_follow_the_agent_status() -> None:
    assert actions(agent("r", AgentStatus.RUNNING)) == {
        "abort": True, "apply": True, "archive": True, "send": True, "permission": False, "retry": False,
        "request_changes": True, "create_pr": True, "destroy": True, "pause": False, "resume": False}
    perm = PermissionView(id="per_1", permission="bash", patterns=["ls"], summary="bash: ls")
    waiting = actions(agent("w", AgentStatus.WAITING, permissions=[perm]))
    assert waiting["permission"] and not waiting["retry"]
    assert actions(agent("c", AgentStatus.COMPLETED)) == {
        "abort": False, "apply": True, "archive": True, "send": True, "permission": False, "retry": True,
        "request_changes": True, "create_pr": True, "destroy": True, "pause": False, "resume": False}
    assert actions(agent("f", AgentStatus.FAILED))["retry"]
    assert actions(agent("a", AgentStatus.ARCHIVED)) == {
        "abort": False, "apply": True, "archive": False, "send": False, "permission": False, "retry": True,
        "request_changes": False, "create_pr": True, "destroy": True, "pause": False, "resume": False}
    moving = actions(agent("m", AgentStatus.MIGRATING))
    assert not moving["create_pr"] and not moving["destroy"] and not moving["apply"]
    assert not any(actions(agent("x", env="external", read_only=True)).values())
    # Only a cloud agent can be paused, and only a paused one resumed.
    cloud = actions(agent("k", AgentStatus.COMPLETED, env="cloud"))
    assert cloud["pause"] and not cloud["resume"]
    paused = actions(agent("p", AgentStatus.PAUSED, env="cloud"))
    assert paused["resume"] and not paused["pause"]


def test_every_button_of_the_detail_panel_is_enabled_for_some_agent() -> None:
    from palot_jupyter.detail import DetailPanel

    # A button whose action has no entry in actions() is disabled forever (the PR and destroy buttons were).
    enabled = set()
    for status in AgentStatus:
        for env in ("worktree", "cloud"):
            enabled |= {name for name, on in actions(agent("a", status, env=env, permissions=[PermissionView(
                id="per_1", permission="bash", patterns=["ls"], summary="bash: ls")])).items() if on}
    assert set(DetailPanel().action_buttons) <= enabled


def test_record_tabs_show_user_and_model_text_as_text() -> None:
    from palot.api import AgentMessage, AuditEntry, EnvironmentStatus, MoveRecord
    from palot_jupyter.records import (
        audit_html,
        environment_html,
        messages_html,
        moves_html,
    )

    markup = "<script>alert(1)</script>"
    msg = messages_html([AgentMessage(id="m1", role="user", time=0.0, text=markup, error=markup, tools=[markup])])
    assert "<script>" not in msg and "&lt;script&gt;alert(1)&lt;/script&gt;" in msg
    env = environment_html(EnvironmentStatus(agent_id="a", type="container", state="running", directory="/workspace",
                                             host_path=f"/tmp/{markup}", branch=markup, base_commit="0123456789abcdef",
                                             resources={"memory": "2g", "ports": [3000]}, unavailable=markup))
    assert "<script>" not in env and "⬢ container" in env and "0123456789ab" in env and "[3000]" in env
    moves = moves_html([MoveRecord(id="mv", agent_id="a", target_type="container", state="rolled_back",
                                   step="import_code", error=markup, created_at=0.0, updated_at=0.0)])
    assert "<script>" not in moves and "rolled_back" in moves and "import_code" in moves
    audit = audit_html([AuditEntry(id=1, ts=0.0, event="agent_spawned", detail={"prompt": markup})])
    assert "<script>" not in audit and "agent_spawned" in audit
    assert "has not moved" in moves_html([]) and "Nothing" in audit_html([]) and "No messages" in messages_html([])


def test_a_notification_that_needs_you_looks_unlike_one_that_says_something_is_done() -> None:
    needs = notification_html(Notification(kind="needs_you", title="Fix <it> asks: bash", body="a\nb",
                                                action="palot inbox", reason="permission"))
    done = notification_html(Notification(kind="done", title="Fix is done", reason="completed"))
    assert "palot-note-needs-you" in needs and "⚠" in needs and "Fix &lt;it&gt;" in needs and "palot inbox" in needs
    assert "palot-note-done" in done and "✓" in done and "palot-note-needs-you" not in done
