"""Budgets with a hard stop: per agent (spawn option, or the project's or fleet's default from settings.toml)
and per day across the fleet.

The service follows cost and tokens as the agents' views change. At ``warn_at`` (80 %) of a budget a person
gets a "needs you" notification; at 100 % the agent's turn is aborted and it is paused with the reason
(``budget reached: $0.52 of $0.50``). A prompt over budget is refused with the command that raises it.
A turn is stopped when a step's cost arrives, so an agent may end slightly over its budget (by one step).

Cloud running time counts too: every ``cloud_poll_seconds`` the service asks the Worker how long each active
cloud environment has run and counts the increase of its estimated cost (:mod:`palot.cloud.costs`) toward
the agent's USD budget and the day's spend. What was counted is kept per environment in the store, so a
restart never counts it twice. A cloud agent costs while idle, so an idle one over budget is paused too.
"""

from __future__ import annotations

import asyncio
import logging
import time
from pathlib import Path
from typing import TYPE_CHECKING

from .. import api
from ..errors import BudgetReached, PalotError
from ..store import EnvironmentRecord
from .notify import Notifier
from .settings import SettingsFile

if TYPE_CHECKING:
    from ..core import Palot

log = logging.getLogger(__name__)

_STOPPABLE = (api.AgentStatus.RUNNING, api.AgentStatus.WAITING, api.AgentStatus.PROVISIONING)


def today() -> str:
    return time.strftime("%Y-%m-%d")


def _usd(value: float) -> str:
    # Small budgets need the third decimal: "$0.012 of $0.010", not "$0.01 of $0.01".
    return f"${value:.2f}" if value >= 0.1 or value == 0 else f"${value:.3f}" if value >= 0.001 else f"${value:.5f}"


def _of(spent: float, budget: float) -> str:
    """``$0.0102 of $0.0100``: as many decimals as it takes to tell the two apart (running time adds little)."""
    said, limit = _usd(spent), _usd(budget)
    decimals = len(limit.partition(".")[2])
    while said == limit and spent != budget and decimals < 6:
        decimals += 1
        said, limit = f"${spent:.{decimals}f}", f"${budget:.{decimals}f}"
    return f"{said} of {limit}"


def over(agent: api.Agent) -> str | None:
    """How the agent is over its own budget (``$0.52 of $0.50``), or None."""
    if agent.budget_usd is not None and agent.total_cost >= agent.budget_usd:
        cloud = f" (incl. {_usd(agent.environment_cost)} cloud running time)" if agent.environment_cost else ""
        return f"{_of(agent.total_cost, agent.budget_usd)}{cloud}"
    if agent.budget_tokens is not None and agent.tokens >= agent.budget_tokens:
        return f"{agent.tokens:,} of {agent.budget_tokens:,} tokens"
    return None


def share(agent: api.Agent) -> float:
    """The largest share of the agent's budgets it has used (0 without a budget)."""
    used = 0.0
    if agent.budget_usd:
        used = max(used, agent.total_cost / agent.budget_usd)
    if agent.budget_tokens:
        used = max(used, agent.tokens / agent.budget_tokens)
    return used


class Budgets:
    def __init__(self, palot: "Palot", settings: SettingsFile, notifier: Notifier) -> None:
        self.palot = palot
        self.settings = settings
        self.notifier = notifier
        self._seen: dict[str, tuple[float, int]] = {}  # cost and tokens last counted, per agent
        self._warned: dict[str, tuple[float | None, int | None]] = {}  # the budget an agent was warned at
        self._stopping: set[str] = set()
        self._day_said: set[tuple[str, str]] = set()  # (day, "warn"|"stop") already said
        self._tasks: set[asyncio.Task[None]] = set()
        # Today's totals as last written: the service is the store's only writer of spend, so the day's
        # limit is judged on every agent event without a read of the store.
        self._today: tuple[str, float, int] | None = None
        self._cloud_poll: asyncio.Task[None] | None = None

    async def start(self, agents: list[api.Agent]) -> None:
        # What agents cost before this start was counted by the service that saw it.
        self._seen = {a.id: (a.cost, a.tokens) for a in agents}
        for agent in agents:
            self._check(agent)
        self._cloud_poll = asyncio.get_running_loop().create_task(self._follow_cloud())

    async def close(self) -> None:
        for task in (*self._tasks, *([self._cloud_poll] if self._cloud_poll else [])):
            task.cancel()

    def settings_changed(self) -> None:
        self._day_said.clear()  # a new daily limit is judged afresh

    # --- following the fleet ---------------------------------------------------------------

    def on_event(self, event: api.Event) -> None:
        if event.type not in (api.AGENT_CREATED, api.AGENT_UPDATED) or event.agent is None or event.agent.read_only:
            return
        agent = event.agent
        cost, tokens = self._seen.get(agent.id, (0.0, 0))
        if agent.cost > cost or agent.tokens > tokens:
            day = today()
            usd, spent_tokens = self.palot.store.add_spend(day, max(0.0, agent.cost - cost),
                                                           max(0, agent.tokens - tokens))
            self._today = (day, usd, spent_tokens)
        self._seen[agent.id] = (max(cost, agent.cost), max(tokens, agent.tokens))
        self._check(agent)
        self._check_day()

    # --- cloud running time ----------------------------------------------------------------

    async def _follow_cloud(self) -> None:
        while True:
            await asyncio.sleep(self.settings.current.budgets.cloud_poll_seconds)
            try:
                await self.count_cloud()
            except Exception:  # one bad poll must not end the following
                log.exception("could not count the cloud running time")

    async def count_cloud(self) -> None:
        """Count what each active cloud environment's running time cost since it was last counted."""
        active = [(rec.id, env) for rec, env, _ in self.palot.store.list_agents_with_environments(include_archived=False)
                  if env is not None and env.type == "cloud" and env.state == "active"]
        estimates = await asyncio.gather(*(self._running_cost(env) for _, env in active))
        for (agent_id, env), usd in zip(active, estimates):
            if usd is None:
                continue
            day = today()
            counted = self.palot.store.count_environment_cost(agent_id, env.id, usd, day)
            if counted is not None:
                self._today = (day, counted[1], counted[2])
                self.palot.agents.announce(agent_id)  # its new view comes back through on_event and is judged

    async def _running_cost(self, env: EnvironmentRecord) -> float | None:
        """The estimated cost of the environment's running time so far, as ``palot agents env`` shows it."""
        resources = await self.palot.backends["cloud"].resources(env)  # None while the Worker cannot say
        estimate = resources.get("cost_usd_estimate") if resources else None
        return float(estimate) if estimate is not None else None

    # --- judging -----------------------------------------------------------------------------

    def _check(self, agent: api.Agent) -> None:
        # An idle cloud agent still costs (its environment runs), so it is paused too; a worktree one is not.
        stoppable = agent.status in _STOPPABLE or (agent.status == api.AgentStatus.COMPLETED
                                                    and agent.environment_cost > 0)
        if not stoppable:
            self._stopping.discard(agent.id)
        reached = over(agent)
        if reached is not None:
            if stoppable and agent.id not in self._stopping:
                self._stop(agent, f"budget reached: {reached}", f"palot agents budget {agent.id} "
                           f"{self._suggest(agent)}")
            return
        limits = (agent.budget_usd, agent.budget_tokens)
        if share(agent) >= self.settings.current.budgets.warn_at and self._warned.get(agent.id) != limits:
            self._warned[agent.id] = limits
            used = f"{_usd(agent.total_cost)} of {_usd(agent.budget_usd)}" if agent.budget_usd else \
                f"{agent.tokens:,} of {agent.budget_tokens:,} tokens"
            self.notifier.notify("needs_you", "budget_warning", f"{agent.title} ({agent.id}) used {share(agent):.0%} "
                                 "of its budget", f"{used}; it stops at 100 %",
                                 action=f"palot agents budget {agent.id} {self._suggest(agent)}", agent_ids=[agent.id])

    def _check_day(self) -> None:
        limits = self.settings.current.budgets
        if limits.day_usd is None and limits.day_tokens is None:
            return
        day = today()
        usd, tokens = self._spent()
        used = max(usd / limits.day_usd if limits.day_usd else 0.0, tokens / limits.day_tokens if limits.day_tokens else 0.0)
        said = f"{_usd(usd)} of {_usd(limits.day_usd)}" if limits.day_usd else f"{tokens:,} of {limits.day_tokens:,} tokens"
        if used >= 1:
            if (day, "stop") not in self._day_said:
                self._day_said.add((day, "stop"))
                self.notifier.notify("needs_you", "budget_reached", "Today's budget is spent: every agent stops",
                                     said, action="raise budgets.day_usd in settings.toml")
            for agent in self.palot.agents.list(include_external=False):
                if agent.status in _STOPPABLE and agent.id not in self._stopping:
                    self._stop(agent, f"today's budget reached: {said}", None)
        elif used >= limits.warn_at and (day, "warn") not in self._day_said:
            self._day_said.add((day, "warn"))
            self.notifier.notify("needs_you", "budget_warning", f"The fleet used {used:.0%} of today's budget", said,
                                 action="palot agents list")

    def _stop(self, agent: api.Agent, reason: str, fix: str | None) -> None:
        self._stopping.add(agent.id)
        if fix is not None:
            self.notifier.notify("needs_you", "budget_reached", f"{agent.title} ({agent.id}) stopped: {reason}",
                                 "raise its budget to let it go on", action=fix, agent_ids=[agent.id])

        async def abort() -> None:
            try:
                await self.palot.agents.abort(agent.id, reason=reason)
                self.palot.store.audit("budget.stop", agent_id=agent.id, project_id=agent.project_id, reason=reason)
            except PalotError as e:
                self._stopping.discard(agent.id)
                log.warning("could not stop %s at its budget: %s", agent.id, e)

        task = asyncio.get_running_loop().create_task(abort())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    @staticmethod
    def _suggest(agent: api.Agent) -> str:
        """A budget to propose: double the current one (in the unit it has)."""
        if agent.budget_usd is not None:
            usd = max(agent.budget_usd * 2, agent.total_cost * 1.5)
            return f"{usd:.2f}" if usd >= 0.01 else f"{usd:.6f}".rstrip("0")  # never "0.00" for a tiny budget
        return f"--tokens {max((agent.budget_tokens or 0) * 2, int(agent.tokens * 1.5))}"

    # --- what actions ask -----------------------------------------------------------------

    def defaults_for(self, project: str) -> tuple[float | None, int | None]:
        """The budget a new agent of ``project`` gets when its spawn names none."""
        current = self.settings.current
        path = Path(project).expanduser().resolve(strict=False)
        own = current.project(str(path), path.name)
        usd = own.agent_usd if own and own.agent_usd is not None else current.budgets.agent_usd
        tokens = own.agent_tokens if own and own.agent_tokens is not None else current.budgets.agent_tokens
        return usd, tokens

    def _day_over(self) -> str | None:
        limits = self.settings.current.budgets
        usd, tokens = self._spent()
        if limits.day_usd is not None and usd >= limits.day_usd:
            return f"{_usd(usd)} of {_usd(limits.day_usd)}"
        if limits.day_tokens is not None and tokens >= limits.day_tokens:
            return f"{tokens:,} of {limits.day_tokens:,} tokens"
        return None

    def check_spawn(self) -> None:
        day = self._day_over()
        if day is not None:
            raise BudgetReached(f"today's budget for all agents is spent ({day})",
                                "raise budgets.day_usd in settings.toml, or wait until tomorrow")

    def check_prompt(self, agent_id: str) -> None:
        agent = self.palot.agents.view(agent_id)
        reached = over(agent)
        if reached is not None:
            raise BudgetReached(f"agent {agent.id} reached its budget ({reached})",
                                f"raise it first: `palot agents budget {agent.id} {self._suggest(agent)}`")
        self.check_spawn()

    def budget_changed(self, agent: api.Agent) -> None:
        """A person set a new budget: warnings are re-armed, and the new limit holds at once."""
        self._warned.pop(agent.id, None)
        self._stopping.discard(agent.id)
        self._check(agent)

    def _spent(self) -> tuple[float, int]:
        """What the fleet spent today (USD, tokens); read from the store once a day."""
        day = today()
        if self._today is None or self._today[0] != day:
            self._today = (day, *self.palot.store.spend(day))
        return self._today[1], self._today[2]

    def spend(self) -> api.Spend:
        usd, tokens = self._spent()
        limits = self.settings.current.budgets
        return api.Spend(day=today(), usd=round(usd, 6), tokens=tokens, budget_usd=limits.day_usd,
                         budget_tokens=limits.day_tokens)
