"""Budgets with a hard stop, in the real service with real OpenCode: the scripted model charges nominal prices
($3 per million input tokens; each step of the script reports 1,000), so the cost is OpenCode's own figure."""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path

from conftest import SCRIPTS, make_repo
from palot import api
from palot.client import PalotClient
from palot.errors import BudgetReached, InvalidInput
from service_support import running_service

SCRIPT = SCRIPTS / "budget.json"


@contextlib.asynccontextmanager
async def notifications(home: Path):
    """Every notification the service's stream carries while the block runs."""
    seen: list[api.Notification] = []
    client = PalotClient(home, autostart=False)
    ready = asyncio.Event()

    async def read() -> None:
        async for event in client.events(on_connect=ready.set):
            if event.type == api.NOTIFICATION and event.notification is not None:
                seen.append(event.notification)

    task = asyncio.create_task(read())
    await asyncio.wait_for(ready.wait(), 30)
    try:
        yield seen
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await client.close()


async def test_an_agent_is_stopped_at_its_budget_refuses_a_prompt_and_goes_on_once_it_is_raised(
        tmp_path: Path, opencode_bin: Path) -> None:
    home = tmp_path / "home"
    repo = make_repo(tmp_path / "project")
    home.mkdir()
    # Each notification on its own: the script's steps are 0.3 s apart, within the default merging window.
    (home / "settings.toml").write_text("[notifications]\ncoalesce_seconds = 0\n")
    async with running_service(home, SCRIPT) as palot, notifications(home) as seen:
        agent = await palot.spawn(repo, "long task: twelve steps", budget_usd=0.01)
        assert agent.budget_usd == 0.01
        agent = await palot.wait(agent.id, timeout=120)

        assert agent.status == api.AgentStatus.PAUSED, (agent.status, agent.error)
        assert agent.pause_reason is not None and agent.pause_reason.startswith("budget reached: $0.01"), agent
        assert agent.pause_reason.endswith("of $0.010")
        assert 0.01 <= agent.cost < 0.02
        steps = (Path(agent.environment.host_path or "") / "steps.txt").read_text().splitlines()
        assert 0 < len(steps) < 12, steps  # stopped mid-task, not at its end

        try:
            await palot.prompt(agent.id, "go on")
            raise AssertionError("a prompt over budget was sent")
        except BudgetReached as e:
            assert f"agent {agent.id} reached its budget" in e.message
            assert e.fix and f"palot agents budget {agent.id} " in e.fix
        assert [m.text for m in await palot.messages(agent.id) if m.role == "user"] == ["long task: twelve steps"]

        for _ in range(50):  # the notifications are merged for a moment before they are sent
            if any(n.reason == "budget_reached" for n in seen):
                break
            await asyncio.sleep(0.1)
        reasons = [n.reason for n in seen if agent.id in n.agent_ids]
        assert "budget_warning" in reasons and "budget_reached" in reasons, seen
        assert reasons.index("budget_warning") < reasons.index("budget_reached")
        assert all(n.kind == "needs_you" for n in seen if n.reason.startswith("budget"))

        raised = await palot.budget(agent.id, 1.00)
        assert raised.budget_usd == 1.0 and raised.status == api.AgentStatus.PAUSED
        await palot.prompt(agent.id, "go on")
        final = await palot.wait(agent.id, timeout=60)
        assert final.status == api.AgentStatus.COMPLETED, final.error
        assert final.pause_reason is None

        status = await palot.status()
        assert status.spend is not None and status.spend.usd >= final.cost > 0.01
        audit = [e.event for e in await palot.audit(agent.id)]
        assert "budget.stop" in audit and "budget" in audit


async def test_settings_give_new_agents_a_budget_and_a_bad_file_keeps_the_last_good_settings(
        tmp_path: Path, opencode_bin: Path) -> None:
    home = tmp_path / "home"
    repo = make_repo(tmp_path / "project")
    home.mkdir()
    settings = home / "settings.toml"
    settings.write_text(f'[budgets]\nagent_usd = 0.5\nday_usd = 20\n\n[projects."{repo}"]\nagent_tokens = 90000\n')
    async with running_service(home, SCRIPT) as palot:
        view = await palot.settings()
        assert view.error is None and view.settings["budgets"]["agent_usd"] == 0.5
        agent = await palot.spawn(repo, "go on")
        assert (agent.budget_usd, agent.budget_tokens) == (0.5, 90000)
        await palot.wait(agent.id, timeout=60)

        settings.write_text("[budgets]\nagent_usd = -1\n")
        view = await palot.settings()
        assert view.error is not None and "line 2" in view.error and "budgets.agent_usd" in view.error, view.error
        assert view.settings["budgets"]["agent_usd"] == 0.5  # the last good settings hold
        assert (await palot.status()).settings_error == view.error
        again = await palot.spawn(repo, "go on")
        assert again.budget_usd == 0.5
        assert (await palot.status()).spend.budget_usd == 20  # type: ignore[union-attr]

        try:
            await palot.budget(again.id, -2)
            raise AssertionError("a negative budget was accepted")
        except InvalidInput as e:
            assert "usd" in e.message
        assert (await palot.get(again.id)).budget_usd == 0.5
        await palot.wait(again.id, timeout=60)


async def test_todays_budget_for_the_fleet_pauses_every_agent_and_refuses_new_work(
        tmp_path: Path, opencode_bin: Path) -> None:
    home = tmp_path / "home"
    repo = make_repo(tmp_path / "project")
    home.mkdir()
    (home / "settings.toml").write_text("[budgets]\nday_usd = 0.005\n")
    async with running_service(home, SCRIPT) as palot:
        agent = await palot.spawn(repo, "long task: twelve steps")
        agent = await palot.wait(agent.id, timeout=120)
        assert agent.status == api.AgentStatus.PAUSED, (agent.status, agent.error)
        assert agent.pause_reason is not None and agent.pause_reason.startswith("today's budget reached: $0.00")
        spend = (await palot.status()).spend
        assert spend is not None and spend.usd >= 0.005 and spend.budget_usd == 0.005
        try:
            await palot.spawn(repo, "go on")
            raise AssertionError("a spawn over today's budget was accepted")
        except BudgetReached as e:
            assert "today's budget for all agents is spent" in e.message and "day_usd" in (e.fix or "")
        assert [a.id for a in await palot.list(include_external=False)] == [agent.id]  # nothing was created
