"""The agent list and the sidebar's filters: each row's cells, the order, what the filters show and their counts
(pure)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from palot.api import Agent, AgentStatus

from .badges import ENVIRONMENT_BADGE, cost, elapsed, environment_badge, esc, note, status_badge, status_icon, tokens

#: Sort rank: what needs a person first (failed, waiting), then work in progress, then done.
_RANK = {
    AgentStatus.FAILED: 0, AgentStatus.WAITING: 0,
    AgentStatus.RUNNING: 1, AgentStatus.PROVISIONING: 1, AgentStatus.MIGRATING: 1,
    AgentStatus.PAUSED: 2, AgentStatus.COMPLETED: 3, AgentStatus.ARCHIVED: 4,
}

ROW_CELLS = ("status", "title", "environment", "project", "elapsed", "tokens", "cost")


def row_cells(agent: Agent, now: float | None = None) -> dict[str, str]:
    """The text of each cell of the agent's row (``title`` is plain text, the rest HTML)."""
    return {
        "status": status_badge(agent.status, note(agent)),
        "title": agent.title,
        "environment": environment_badge(agent.environment.type),
        "project": f'<span title="{esc(agent.project_path)}">{esc(agent.project_name)}</span>',
        "elapsed": elapsed(agent, now),
        "tokens": f'{tokens(agent.tokens)} <span class="palot-muted">tokens</span>',
        "cost": cost(agent.cost),
    }


def sort_key(agent: Agent) -> tuple[int, float, str]:
    """Failed and waiting first, then running, paused, completed, archived; newest first in each."""
    return _RANK.get(agent.status, 5), -agent.created_at, agent.id


@dataclass(frozen=True)
class Filters:
    """The sidebar's choices; ``None`` means any. Archived agents show only when asked for."""

    project: str | None = None  # a project id
    status: str | None = None
    environment: str | None = None

    def matches(self, agent: Agent) -> bool:
        if self.project is not None and agent.project_id != self.project:
            return False
        if self.environment is not None and agent.environment.type != self.environment:
            return False
        if self.status is None:
            return agent.status != AgentStatus.ARCHIVED
        return agent.status.value == self.status


def visible(agents: dict[str, Agent] | list[Agent], filters: Filters) -> list[str]:
    """Ids of the agents the list shows, in display order."""
    values = agents.values() if isinstance(agents, dict) else agents
    return [a.id for a in sorted((a for a in values if filters.matches(a)), key=sort_key)]


ALL = ""  # the value of each filter's "All …" option


@dataclass(frozen=True)
class Facets:
    """Options (label, value) of the sidebar's filters, with counts (of agents that are not archived)."""

    projects: tuple[tuple[str, str], ...]
    statuses: tuple[tuple[str, str], ...]
    environments: tuple[tuple[str, str], ...]


def facets(agents: list[Agent], filters: Filters = Filters()) -> Facets:
    current = [a for a in agents if a.status != AgentStatus.ARCHIVED]
    names = {a.project_id: a.project_name for a in agents}
    by_project = Counter(a.project_id for a in current)
    by_status = Counter(a.status for a in agents)
    by_env = Counter(a.environment.type for a in current)
    projects = [(f"All projects ({len(current)})", ALL)]
    for pid in sorted(names, key=lambda p: (names[p].lower(), p or "")):
        if pid and (by_project[pid] or pid == filters.project):
            projects.append((f"{names[pid]} ({by_project[pid]})", pid))
    statuses = [(f"All but archived ({len(current)})", ALL)]
    for st in AgentStatus:
        if by_status[st] or st.value == filters.status:
            statuses.append((f"{status_icon(st)} {st.value} ({by_status[st]})", st.value))
    environments = [(f"All environments ({len(current)})", ALL)]
    for env in sorted(set(by_env) | ({filters.environment} if filters.environment else set())):
        icon, word = ENVIRONMENT_BADGE.get(env, ("·", env))
        environments.append((f"{icon} {word} ({by_env[env]})", env))
    return Facets(tuple(projects), tuple(statuses), tuple(environments))
