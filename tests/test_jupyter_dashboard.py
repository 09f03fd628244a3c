"""The dashboard's widget models, driven by a real Palot service: a real OpenCode server and the scripted model.

No kernel and no browser: the widgets' traits are what a front end would
render. One service is shared by the tests of this module (its agents
accumulate; each test looks at its own agents, in its own repositories).
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from conftest import git, make_repo
from jupyter_support import dash, press, shared_service
from palot import api
from palot.api import AgentStatus, PalotError
from palot.client import PalotClient
from palot_jupyter import Dashboard
from palot_jupyter.detail import AUDIT_TAB, ENVIRONMENT_TAB, MESSAGES_TAB, MOVES_TAB
from palot_jupyter.format import LIVE
from service_support import running_service, stop_service

pytestmark = pytest.mark.asyncio(loop_scope="module")
__all__ = ["dash", "shared_service"]  # fixtures, one service per module


async def settled(dash: Dashboard, agent_id: str, *until: AgentStatus) -> None:
    await dash.client.wait(agent_id, timeout=60, until=list(until) or None)
    await dash.sync()


def cells(dash: Dashboard, agent_id: str) -> dict[str, str]:
    return dict(dash.agent_list.rows[agent_id].values)


def shown(dash: Dashboard) -> list[str]:
    """Agent ids in the order the list shows them."""
    return list(dash.agent_list.order)


async def spawn_from_form(dash: Dashboard, project: Path, prompt: str, **fields: Any) -> str:
    dash.new_agent()
    form = dash.spawn_form
    form.project.value = str(project)
    form.prompt.value = prompt
    for name, value in fields.items():
        getattr(form, name).value = value
    press(form.launch_button)
    await dash.sync()
    assert dash.selected is not None, form.message.value
    return dash.selected


async def test_spawn_form_launches_an_agent_that_goes_live_to_completed_with_its_diff(
    dash: Dashboard, tmp_path: Path
) -> None:
    repo = make_repo(tmp_path / "greetings")
    statuses: list[str] = []
    agent_id = await spawn_from_form(dash, repo, "write hello")
    status_cell = dash.agent_list.rows[agent_id].cells["status"]
    status_cell.observe(lambda change: statuses.append(change["new"]), names="value")
    assert dash.right.children == (dash.detail.widget,)  # the new agent opens in the detail panel
    assert agent_id in shown(dash)

    await settled(dash, agent_id)
    row = cells(dash, agent_id)
    assert "✓ completed" in row["status"] and "palot-st-completed" in row["status"]
    assert row["title"] == "write hello"
    assert "⌂ local" in row["environment"] and "greetings" in row["project"]
    assert not row["tokens"].startswith("0 ") and row["cost"].startswith("$") and row["cost"] != "$0.00"
    assert any("completed" in s for s in statuses)  # the row changed live, from the event stream
    assert "palot-st-completed" in dash.agent_list.rows[agent_id].box._dom_classes

    detail = dash.detail
    assert "write hello" in detail.header.value and "palot/write-hello" in detail.header.value
    assert ("Writing", "hello.txt") in [(i["verb"], i["target"]) for i in detail.activity.items]
    assert "hello.txt" in detail.diff.value and "+hello from the agent" in detail.diff.value
    assert 'class="palot-line-add"' in detail.diff.value
    assert detail.abort_button.disabled and not detail.apply_button.disabled

    press(detail.close_button)
    assert dash.right.children == (dash.overview.widget,)
    assert "completed: <b>" in dash.overview.summary.value


async def test_failed_and_waiting_agents_come_first_and_the_sidebar_filters_the_list(
    dash: Dashboard, tmp_path: Path
) -> None:
    alpha = make_repo(tmp_path / "alpha")
    beta = make_repo(tmp_path / "beta")
    agents = dash.client
    done = await agents.spawn(alpha, "write notes")
    failed = await agents.spawn(alpha, "provoke an error")
    waiting = await agents.spawn(beta, "edit readme", permission_mode="ask")
    await asyncio.gather(*(agents.wait(a.id, timeout=60) for a in (done, failed, waiting)))
    await dash.sync()

    mine = [i for i in shown(dash) if i in {done.id, failed.id, waiting.id}]
    assert mine == [waiting.id, failed.id, done.id]  # attention first (newest first), then the rest
    assert "scripted failure" in cells(dash, failed.id)["status"]  # the reason, as the badge's tooltip

    sidebar = dash.sidebar
    assert any(label.startswith("alpha (2)") for label, _ in sidebar.project.options)
    assert any("waiting (" in label for label, _ in sidebar.status.options)
    sidebar.project.value = done.project_id
    assert set(shown(dash)) == {done.id, failed.id} and "2 of" in dash.agent_list.heading.value
    sidebar.status.value = "failed"
    assert shown(dash) == [failed.id]
    sidebar.project.value = ""
    sidebar.status.value = "waiting"
    assert waiting.id in shown(dash) and failed.id not in shown(dash)
    sidebar.status.value = ""
    sidebar.environment.value = "worktree"
    assert {done.id, failed.id, waiting.id} <= set(shown(dash))
    sidebar.environment.value = ""

    # The overview says what needs attention, and why.
    attention = {item.agent_id: item.line for item in dash.overview.current.attention}
    assert "scripted failure" in attention[failed.id]
    assert "needs approval: edit" in attention[waiting.id]


async def test_a_waiting_agent_is_approved_from_the_detail_panel(dash: Dashboard, tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "docs")
    agent_id = await spawn_from_form(dash, repo, "edit readme", permission_mode="ask")
    await settled(dash, agent_id, AgentStatus.WAITING)
    detail = dash.detail
    assert detail.permission_box.layout.display is None  # shown
    assert "edit" in detail.permission_text.value and not detail.approve_button.disabled

    press(detail.approve_button)
    await settled(dash, agent_id, AgentStatus.COMPLETED)
    assert detail.permission_box.layout.display == "none"
    assert "Approved once." in detail.message.value
    assert "edited by an agent" in detail.diff.value and "README.md" in detail.diff.value


async def test_abort_pauses_a_running_agent_and_the_prompt_box_resumes_it(dash: Dashboard, tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "slow")
    events = dash.client.events()
    agent_id = await spawn_from_form(dash, repo, "slow task")

    async def streaming() -> None:
        async for event in events:
            if event.type == api.ACTIVITY and event.agent_id == agent_id:
                return

    await asyncio.wait_for(streaming(), 30)  # the slow answer is streaming
    await events.aclose()
    await dash.sync()
    assert "● running" in cells(dash, agent_id)["status"]
    assert not dash.detail.abort_button.disabled

    press(dash.detail.abort_button)
    await settled(dash, agent_id, AgentStatus.PAUSED)
    assert "⏸ paused" in cells(dash, agent_id)["status"]
    assert "paused until you send it a message" in dash.detail.message.value

    dash.detail.prompt.value = "write notes"
    press(dash.detail.send_button)
    await dash.sync()
    await settled(dash, agent_id, AgentStatus.COMPLETED)
    assert dash.detail.prompt.value == ""
    assert "NOTES.md" in dash.detail.diff.value
    assert ("Writing", "NOTES.md") in [(i["verb"], i["target"]) for i in dash.detail.activity.items]


async def test_apply_then_archive_from_the_detail_panel(dash: Dashboard, tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "apply-me")
    agent_id = await spawn_from_form(dash, repo, "write hello")
    await settled(dash, agent_id)

    press(dash.detail.apply_button)
    await dash.sync()
    assert "Applied 1 file(s)" in dash.detail.message.value
    assert (repo / "hello.txt").read_text() == "hello from the agent\n"

    press(dash.detail.archive_button)
    await dash.sync()
    assert "▣ archived" in cells(dash, agent_id)["status"]
    assert agent_id not in shown(dash)  # archived agents show only when asked for
    dash.sidebar.status.value = "archived"
    assert agent_id in shown(dash)
    dash.sidebar.status.value = ""
    assert dash.detail.archive_button.disabled and dash.detail.send_button.disabled


async def test_an_agent_update_sends_only_the_cells_that_changed(dash: Dashboard, tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "quiet")
    client = dash.client
    first = await client.spawn(repo, "write notes")
    await settled(dash, first.id)
    others = [i for i in dash.agent_list.rows if i != first.id]
    assert len(others) >= 2  # earlier tests' agents are listed too
    row_boxes = {i: r.box for i, r in dash.agent_list.rows.items()}
    changes: list[tuple[str, str, str]] = []
    for agent_id, row in dash.agent_list.rows.items():
        for name, cell in row.cells.items():
            cell.observe(lambda c, a=agent_id, n=name: changes.append((a, n, c["name"])),
                         names=["value", "description", "tooltip"])
        row.box.observe(lambda c, a=agent_id: changes.append((a, "row", c["name"])), names=["_dom_classes"])

    await client.prompt(first.id, "write hello")
    await settled(dash, first.id, AgentStatus.RUNNING)
    await settled(dash, first.id, AgentStatus.COMPLETED)

    mine = {n for a, n, _ in changes if a == first.id}
    assert {"status", "row"} <= mine <= {"status", "elapsed", "tokens", "cost", "row"}
    # Other rows: only the clock, advancing the elapsed time of agents still live (the waiting one).
    clock = {(a, n) for a, n, _ in changes if a != first.id}
    assert all(n == "elapsed" and dash.agents[a].status in LIVE for a, n in clock), clock
    assert all(dash.agent_list.rows[i].box is box for i, box in row_boxes.items())  # no row was rebuilt


async def test_spawn_errors_show_in_the_form_and_change_nothing(dash: Dashboard, tmp_path: Path) -> None:
    plain = tmp_path / "not-a-repo"
    plain.mkdir()
    before = set(dash.agents)
    dash.new_agent()
    form = dash.spawn_form
    form.project.value = str(plain)
    form.prompt.value = "write hello"
    press(form.launch_button)
    await dash.sync()
    assert "not a git repository" in form.message.value.lower() or "git" in form.message.value
    assert "palot-error" in form.message.value
    assert set(dash.agents) == before and dash.right.children == (form.widget,)

    form.project.value = str(make_repo(tmp_path / "repo"))
    form.prompt.value = "  "
    press(form.launch_button)
    await dash.sync()
    assert "the prompt is empty" in form.message.value and set(dash.agents) == before


async def test_dashboard_without_arguments_connects_to_the_service_of_palot_home(
    shared_service: PalotClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PALOT_HOME", str(shared_service.paths.home))
    dash = Dashboard()
    await dash.start()
    try:
        assert dash.client is not shared_service and dash.client.paths.home == shared_service.paths.home
        assert (await dash.client.status()).pid == (await shared_service.status()).pid  # the same service
        assert set(dash.agents) == {a.id for a in await shared_service.list(include_archived=True)}
        assert dash.service is not None and f"pid {dash.service.pid}" in dash.overview.service.value
    finally:
        await dash.aclose()
    assert (await shared_service.status()).agents >= 0  # the service keeps running for everyone else


async def test_dashboard_starts_the_service_when_none_runs_with_its_progress_in_the_status_line(
    tmp_path: Path,
) -> None:
    home = tmp_path / "home"
    async with running_service(home):  # once, so the home remembers its options (the scripted model)
        pass
    dash = Dashboard(home=home)
    lines: list[str] = []
    dash.banner.observe(lambda change: lines.append(change["new"]), names="value")
    try:
        await dash.start()
        assert any("starting the Palot service" in line for line in lines), lines
        assert dash.banner.value == "" and dash.service is not None and dash.service.home == str(home.resolve())
    finally:
        await dash.aclose()
        await stop_service(home)


async def test_a_service_that_is_not_running_is_reported_in_the_dashboard_with_the_fix(tmp_path: Path) -> None:
    client = PalotClient(tmp_path / "home", autostart=False)
    dash = Dashboard(client)  # starts in the background, as in a notebook
    with pytest.raises(PalotError, match="not running"):
        await dash.start()
    assert "Palot is not available" in dash.banner.value and "palot serve" in dash.banner.value
    dash.close()
    await client.close()


async def test_every_spawn_option_the_record_tabs_and_the_folded_actions_from_the_detail_panel(
    dash: Dashboard, tmp_path: Path
) -> None:
    repo = make_repo(tmp_path / "full")
    origin = tmp_path / "origin.git"
    git(tmp_path, "init", "-q", "--bare", str(origin))
    git(repo, "remote", "add", "origin", str(origin))
    agent_id = await spawn_from_form(dash, repo, "write hello", title="Full options", base_branch="main",
                                     branch="palot/full-options", setup_script="touch .setup-ran")
    await settled(dash, agent_id)
    d = dash.detail
    assert "Full options" in d.header.value and "palot/full-options" in d.header.value

    env = await dash.load_environment()
    assert env.host_path and (Path(env.host_path) / ".setup-ran").exists()  # the setup script ran there
    for tab, view, text in ((MESSAGES_TAB, d.messages, "write hello"), (ENVIRONMENT_TAB, d.environment, "local"),
                            (MOVES_TAB, d.moves, "has not moved"), (AUDIT_TAB, d.audit, "<table")):
        d.tabs.selected_index = tab
        await dash.sync()
        assert text in view.value, (tab, view.value)

    d.wait_form.timeout.value = "5"
    press(d.wait_button)
    await dash.sync()
    assert "Full options: completed." in d.message.value

    d.pr_form.title.value = "Say hello"
    press(d.pr_button)
    await dash.sync()
    assert 'class="palot-ok"' in d.message.value, d.message.value
    assert "palot/full-options" in git(origin, "branch", "--list")  # pushed

    d.destroy_force.value = True
    press(d.destroy_button)
    await dash.sync()
    assert agent_id not in dash.agents and dash.selected is None
    assert not git(repo, "branch", "--list", "palot/full-options").strip()


async def test_a_rejection_with_a_note_pauses_the_agent(dash: Dashboard, tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "reject")
    agent_id = await spawn_from_form(dash, repo, "edit readme", permission_mode="ask")
    await settled(dash, agent_id, AgentStatus.WAITING)
    dash.detail.reply_form.message.value = "not this file, please"
    press(dash.detail.reject_button)
    await settled(dash, agent_id, AgentStatus.PAUSED, AgentStatus.COMPLETED, AgentStatus.FAILED)
    assert "Rejected" in dash.detail.message.value and dash.detail.reply_form.message.value == ""
    assert dash.agents[agent_id].status != AgentStatus.WAITING and not dash.agents[agent_id].permissions


async def test_a_request_is_answered_in_the_overviews_inbox_which_shows_todays_spend(
    dash: Dashboard, tmp_path: Path
) -> None:
    repo = make_repo(tmp_path / "inbox")
    dash.select(None)
    agent = await dash.client.spawn(repo, "edit readme", permission_mode="ask")
    await settled(dash, agent.id, AgentStatus.WAITING)
    [mine] = [i for i in dash.overview.inbox if i.agent_id == agent.id]
    assert dash.service is not None and dash.service.inbox >= 1 and dash.service.spend is not None
    assert "for you</div>" in dash.overview.summary.value and "Today: <b>$" in dash.overview.summary.value
    assert "README.md" in dash.overview._inbox_items[mine.permission_id].html.value

    press(dash.overview._inbox_items[mine.permission_id].buttons[0])  # Allow once
    await settled(dash, agent.id, AgentStatus.COMPLETED)
    assert "Approved once." in dash.overview.inbox_message.value
    assert mine.permission_id not in {i.permission_id for i in dash.overview.inbox}

    budgeted = await dash.set_budget(agent=agent.id, usd=2.5)
    assert budgeted.budget_usd == 2.5 and dash.agents[agent.id].budget_usd == 2.5
    settings = await dash.load_settings()
    assert settings.path in dash.overview.settings.value


async def test_the_spawn_form_offers_templates_with_a_box_per_variable_and_spawns_from_one(
    dash: Dashboard, tmp_path: Path
) -> None:
    repo = make_repo(tmp_path / "templated")
    saved = await dash.save_template(name="greet", project=str(repo), prompt="Write a templated greeting for {name}.",
                                     title="Greeting", permission_mode="auto")
    assert saved.template.variables == ["name"]
    await dash.save_template(name="notes-anywhere", prompt="write notes <b>as text</b>")
    dash.new_agent()
    form = dash.spawn_form
    form.project.value = str(repo)
    await dash.sync()
    assert [value for _label, value in form.template.options] == ["", "greet", "notes-anywhere"]
    assert ("greet (templated)", "greet") in form.template.options

    form.template.value = "greet"
    assert list(form.vars.boxes) == ["name"] and form.prompt.layout.display == "none"
    assert (form.title.value, form.permission_mode.value) == ("Greeting", "auto")  # the template's defaults
    assert "Write a templated greeting for {name}." in form.template_prompt.value
    form.template.value = "notes-anywhere"
    assert "&lt;b&gt;as text&lt;/b&gt;" in form.template_prompt.value and list(form.vars.boxes) == []
    form.template.value = "greet"

    # A variable left empty: the service names it, and nothing is spawned.
    before = set(dash.agents)
    press(form.launch_button)
    await dash.sync()
    assert "needs a value for name" in form.message.value and set(dash.agents) == before
    untouched = git(repo, "branch", "--format=%(refname:short)").split()
    assert untouched == ["main"]

    form.vars.boxes["name"].value = "Ada"
    press(form.launch_button)
    await dash.sync()
    agent_id = dash.selected
    assert agent_id is not None, form.message.value
    await settled(dash, agent_id)
    agent = dash.agents[agent_id]
    assert (agent.prompt, agent.title, agent.status) == ("Write a templated greeting for Ada.", "Greeting",
                                                         AgentStatus.COMPLETED)
    assert (Path(agent.environment.host_path or "") / "GREETING.md").read_text() == "Hello, Ada!\n"
    removed = await dash.remove_template(name="notes-anywhere")
    assert removed.message == "removed template 'notes-anywhere' for every project"
    assert [value for _label, value in form.template.options] == ["", "greet"]
