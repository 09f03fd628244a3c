"""Cloud running time counts toward budgets, in the real service connected to Palot's Worker under
``wrangler dev``: an idle cloud agent is paused when its running time alone takes it over its budget, and the
day's spend holds the running time's cost once, across a restart of the service too."""

from __future__ import annotations

import asyncio
from pathlib import Path

from cloud_support import cloud_worker  # noqa: F401  (fixture)
from conftest import CORE_SCRIPT, make_repo
from palot import api
from palot.client import PalotClient
from palot.cloud import config as cloud_config
from localdev import LocalWorker
from palot.errors import BudgetReached
from palot.paths import PalotPaths
from service_support import running_service
from test_budgets import notifications

EPSILON = 1e-9  # float sums in SQLite and in the view


async def _until_paused(palot: PalotClient, agent_id: str, timeout: float = 90) -> api.Agent:
    for _ in range(int(timeout * 4)):
        agent = await palot.get(agent_id)
        if agent.status != api.AgentStatus.COMPLETED:
            return agent
        await asyncio.sleep(0.25)
    raise AssertionError(f"{agent_id} was not paused in {timeout} s: {agent}")


async def _model_cost_settled(palot: PalotClient, agent_id: str) -> api.Agent:
    """The agent once its model cost has not changed for two seconds: a loaded machine may deliver the last
    cost of a turn (CI once saw it double) after the turn was reported completed."""
    agent = await palot.get(agent_id)
    steady_since = asyncio.get_running_loop().time()
    for _ in range(120):
        await asyncio.sleep(0.25)
        now = await palot.get(agent_id)
        if now.cost != agent.cost:
            agent, steady_since = now, asyncio.get_running_loop().time()
        elif asyncio.get_running_loop().time() - steady_since >= 2:
            return now
    return agent


async def _spend_between(palot: PalotClient, agent_id: str) -> tuple[float, float, float]:
    """What the agent cost in all, read before and after today's spend (the only agent of its Palot home)."""
    before = (await palot.get(agent_id)).total_cost
    spend = (await palot.status()).spend
    after = (await palot.get(agent_id)).total_cost
    assert spend is not None
    return before, spend.usd, after


async def test_an_idle_cloud_agent_is_paused_by_its_running_time_and_the_day_counts_it_once(
        cloud_worker: LocalWorker, tmp_path: Path, opencode_bin: Path) -> None:  # noqa: F811
    home = tmp_path / "home"
    repo = make_repo(tmp_path / "project")
    paths = PalotPaths(home)
    paths.ensure()
    cloud_config.save(paths, cloud_worker.url, cloud_worker.token)  # `palot cloud connect`, before the service
    (home / "settings.toml").write_text("[budgets]\ncloud_poll_seconds = 1\n\n[notifications]\ncoalesce_seconds = 0\n")

    async with running_service(home, CORE_SCRIPT) as palot, notifications(home) as seen:
        agent = await palot.spawn(repo, "write hello", environment="cloud", budget_usd=1.0)
        done = await palot.wait(agent.id, timeout=180)
        assert done.status == api.AgentStatus.COMPLETED and done.environment.type == "cloud", done.error
        done = await _model_cost_settled(palot, agent.id)
        # Its turn is over, so its model cost is final; about ten seconds more of running time is not.
        budget = round(done.total_cost + 0.0002, 6)
        assert done.cost < budget
        await palot.budget(agent.id, budget)

        paused = await _until_paused(palot, agent.id)
        assert paused.status == api.AgentStatus.PAUSED, (paused.status, paused.error)
        assert paused.cost == done.cost  # the model did nothing more: the running time took it over
        assert paused.environment_cost > 0 and paused.total_cost >= budget
        reason = paused.pause_reason or ""
        assert reason.startswith("budget reached: $") and " cloud running time)" in reason, reason
        assert "(incl. $" in reason

        try:
            await palot.prompt(agent.id, "write notes")
            raise AssertionError("a prompt over budget was sent")
        except BudgetReached as e:
            assert f"agent {agent.id} reached its budget" in e.message and "cloud running time" in e.message
            assert e.fix and f"palot agents budget {agent.id} " in e.fix and " 0.00 " not in f"{e.fix} "
        assert [m.text for m in await palot.messages(agent.id) if m.role == "user"] == ["write hello"]

        for _ in range(50):  # notifications are sent a moment after the stop
            if any(n.reason == "budget_reached" for n in seen):
                break
            await asyncio.sleep(0.1)
        [stopped] = [n for n in seen if n.reason == "budget_reached" and agent.id in n.agent_ids]
        assert stopped.kind == "needs_you" and "cloud running time" in stopped.title
        assert stopped.action and stopped.action.startswith(f"palot agents budget {agent.id} ")

        # Today's spend holds the model's cost and the running time's, counted as it grows.
        first, spent, last = await _spend_between(palot, agent.id)
        assert first - EPSILON <= spent <= last + EPSILON and spent > done.cost

    # A new service counts only the running time since the last count, never the whole of it again.
    async with running_service(home, CORE_SCRIPT) as palot:
        await asyncio.sleep(3)  # a few polls
        first, spent, last = await _spend_between(palot, agent.id)
        assert first - EPSILON <= spent <= last + EPSILON, (first, spent, last)
        assert last > paused.total_cost  # it still runs, and is still counted
        again = await palot.get(agent.id)
        assert again.status == api.AgentStatus.PAUSED and again.pause_reason == paused.pause_reason
        await palot.archive(agent.id)
