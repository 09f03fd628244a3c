"""Budgets with a hard stop: per agent (spawn option, or the project's or fleet's default from settings.toml)
and per day across the fleet.

The service follows cost and tokens as the agents' views change. At ``warn_at`` (80 %) of a budget a person
gets a "needs you" notification; at 100 % the agent's turn is aborted and it is paused with the reason
(``budget reached: $0.52 of $0.50``). A prompt over budget is refused with the command that raises it.
A turn is stopped when a step's cost arrives, so an agent may end slightly over its budget (by one step).
"""

from __future__ import annotations

import asyncio
import logging
import time
from pathlib import Path
from typing import TYPE_CHECKING

from .. import api
from ..errors import BudgetReached, PalotError
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


def over(agent: api.Agent) -> str | None:
    """How the agent is over its own budget (``$0.52 of $0.50``), or None."""
    if agent.budget_usd is not None and agent.cost >= agent.budget_usd:
        return f"{_usd(agent.cost)} of {_usd(agent.budget_usd)}"
    if agent.budget_tokens is not None and agent.tokens >= agent.budget_tokens:
        return f"{agent.tokens:,} of {agent.budget_tokens:,} tokens"
    return None


def share(agent: api.Agent) -> float:
    """The largest share of the agent's budgets it has used (0 without a budget)."""
    used = 0.0
    if agent.budget_usd:
        used = max(used, agent.cost / agent.budget_usd)
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

    async def start(self, agents: list[api.Agent]) -> None:
        # What agents cost before this start was counted by the service that saw it.
        self._seen = {a.id: (a.cost, a.tokens) for a in agents}
        for agent in agents:
            self._check(agent)

    async def close(self) -> None:
        for task in self._tasks:
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

    def _check(self, agent: api.Agent) -> None:
        if agent.status not in _STOPPABLE:
            self._stopping.discard(agent.id)
        reached = over(agent)
        if reached is not None:
            if agent.status in _STOPPABLE and agent.id not in self._stopping:
                self._stop(agent, f"budget reached: {reached}", f"palot agents budget {agent.id} "
                           f"{self._suggest(agent)}")
            return
        limits = (agent.budget_usd, agent.budget_tokens)
        if share(agent) >= self.settings.current.budgets.warn_at and self._warned.get(agent.id) != limits:
            self._warned[agent.id] = limits
            used = f"{_usd(agent.cost)} of {_usd(agent.budget_usd)}" if agent.budget_usd else \
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
            return f"{max(agent.budget_usd * 2, agent.cost * 1.5):.2f}"
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
