"""Moving an agent to another environment from the dashboard's detail panel.

Real widgets driven against a real Palot service: a real OpenCode server with
the scripted model, real git and, for the move itself, the tests' private Docker
engine. Each test runs its own service, started with the Docker engine it means
to have (none, or the tests' private one).
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest
from conftest import Engine, make_repo
from jupyter_support import dashboard_of_new_service, press
from palot.api import AgentStatus
from palot.opencode import OpenCodeClient
from palot.paths import PalotPaths
from palot.servers import ServerManager
from palot_jupyter import Dashboard
from traitlets import TraitError

pytestmark = pytest.mark.asyncio(loop_scope="module")


async def completed_agent(dash: Dashboard, repo: Path) -> str:
    """A worktree agent that finished "write hello", open in the detail panel."""
    agent = await dash.client.spawn(repo, "write hello")
    assert (await dash.client.wait(agent.id, timeout=60)).status == AgentStatus.COMPLETED
    await dash.show(agent.id)
    return agent.id


async def listed(dash: Dashboard, agent_id: str, timeout: float = 30) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while agent_id not in dash.agents:
        assert asyncio.get_running_loop().time() < deadline, f"{agent_id} never showed in the dashboard"
        await asyncio.sleep(0.1)
        await dash.sync()


async def audit_events(dash: Dashboard, agent_id: str) -> list[str]:
    return [e.event for e in await dash.client.audit(agent_id)]


async def start_opencode_session(dash: Dashboard, directory: Path, title: str) -> str:
    """A session started straight on the service's OpenCode server, as the OpenCode TUI would."""
    state = ServerManager.read_running(PalotPaths(dash.client.paths.home))
    assert state is not None, "the service's OpenCode server is not running"
    async with OpenCodeClient(state.url, state.password) as opencode:
        return (await opencode.create_session(str(directory), title=title)).id


async def test_the_move_control_offers_only_the_other_environments_and_shows_the_services_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, opencode_bin: Path
) -> None:
    # No container engine for this service: its error, with its fix, shows and the agent stays where it was.
    monkeypatch.setenv("DOCKER_HOST", f"unix:///tmp/palot-no-engine-{os.getpid()}.sock")
    async with dashboard_of_new_service(tmp_path / "home") as dash:
        await _move_control_and_errors(dash, tmp_path)


async def _move_control_and_errors(dash: Dashboard, tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "stay")
    agent_id = await completed_agent(dash, repo)
    d = dash.detail
    assert "⌂ local" in d.environment_badge.value
    assert d.move_target.options == (("Move to Local Container", "container"), ("Move to Cloud Environment", "cloud"))
    assert d.move_target.value == "container" and not d.move_button.disabled
    with pytest.raises(TraitError):  # the environment it is in cannot even be chosen
        d.move_target.value = "worktree"

    # The first click says what will happen; Cancel goes back and nothing moved.
    press(d.move_button)
    assert "Move to a local container?" in d.move_status.value and "palot/write-hello" in d.move_status.value
    assert d.move_button.description == "Confirm move" and d.move_cancel_button.layout.display is None
    press(d.move_cancel_button)
    assert d.move_status.value == "" and d.move_button.description == "Move…"
    assert d.move_cancel_button.layout.display == "none"

    # No container engine: the service's error, with its fix, and the agent stays where it was.
    press(d.move_button)
    press(d.move_button)
    assert d.move_button.disabled and d.move_target.disabled and d.archive_button.disabled  # at once
    await dash.sync()
    assert 'class="palot-error"' in d.move_status.value
    assert "DOCKER_HOST" in d.move_status.value and "start Docker" in d.move_status.value
    agent = await dash.client.get(agent_id)
    assert agent.environment.type == "worktree" and agent.status == AgentStatus.COMPLETED
    assert "migration_started" not in await audit_events(dash, agent_id)  # refused before anything changed
    assert not d.move_button.disabled and not d.archive_button.disabled  # free to try again

    # Another agent's panel does not show this agent's error; coming back shows it again.
    other = await completed_agent(dash, make_repo(tmp_path / "other"))
    assert d.move_status.value == "" and not d.move_button.disabled
    await dash.show(agent_id)
    assert "DOCKER_HOST" in d.move_status.value

    # An archived agent cannot move.
    press(d.archive_button)
    await dash.sync()
    assert dash.agents[agent_id].status == AgentStatus.ARCHIVED
    assert d.move_target.disabled and d.move_button.disabled

    # Nor can a session Palot did not start (read only).
    session_id = await start_opencode_session(dash, repo, "started in the OpenCode TUI")
    await listed(dash, session_id)  # the dashboard re-reads its list now and then: such sessions come with no event
    await dash.show(session_id)
    assert dash.agents[session_id].read_only and "↪ external" in d.environment_badge.value
    assert d.move_target.disabled and d.move_button.disabled
    await dash.show(other)
    assert not d.move_button.disabled


async def test_a_worktree_agent_moves_to_a_container_from_the_detail_panel(
    tmp_path: Path, container_engine: Engine
) -> None:
    async with dashboard_of_new_service(tmp_path / "home") as dash:  # the service sees the private engine
        await _move_to_a_container(dash, tmp_path)


async def _move_to_a_container(dash: Dashboard, tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "mover")
    agent_id = await completed_agent(dash, repo)
    d = dash.detail
    shown_lines: list[str] = []
    d.move_status.observe(lambda change: shown_lines.append(change["new"]), names="value")
    statuses: list[str] = []
    dash.agent_list.rows[agent_id].cells["status"].observe(lambda change: statuses.append(change["new"]),
                                                           names="value")
    headers: list[str] = []
    d.header.observe(lambda change: headers.append(change["new"]), names="value")

    d.move_target.value = "container"
    press(d.move_button)
    press(d.move_button)
    assert d.move_button.disabled and d.send_button.disabled
    await dash.sync()  # waits for the move

    steps = [line for line in shown_lines if "/9]" in line]
    assert [f"[{n}/9]" in line for n, line in enumerate(steps, 1)] == [True] * 9, steps
    assert all('class="palot-moving"' in line and "Moving to a local container" in line for line in steps)
    assert any("↗ migrating" in s for s in statuses)  # the row, live from the service's event stream
    assert any("↗ migrating" in h for h in headers)  # and the detail panel's header
    assert 'class="palot-ok"' in d.move_status.value and "Moved to a local container" in d.move_status.value
    assert "palot/write-hello" in d.move_status.value

    agent = dash.agents[agent_id]
    assert agent.environment.type == "container" and agent.status == AgentStatus.COMPLETED
    assert "⬢ container" in d.environment_badge.value and "⬢ container" in d.header.value
    assert d.move_target.options == (("Move to Local Worktree", "worktree"), ("Move to Cloud Environment", "cloud"))
    assert not d.move_button.disabled and not d.send_button.disabled
    row = dash.agent_list.rows[agent_id]
    assert "⬢ container" in row.values["environment"] and "palot-env-container" in row.box._dom_classes
    assert "palot-env-worktree" not in row.box._dom_classes
    assert "hello.txt" in d.diff.value  # the diff, read from the container's workspace
    events = await audit_events(dash, agent_id)
    assert "migration_started" in events and "migration_completed" in events
    assert [m.target_type for m in await dash.load_moves()] == ["container"]  # the Moves tab, too
    assert "container" in d.moves.value

    await dash.client.archive(agent_id)  # removes the container
