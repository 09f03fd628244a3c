"""What happened to agents, said as notifications: failed and lost environments need you; done, archived
(by a person or automatically, once, saying why) are done.

Permission requests are the inbox's to announce (a rule may answer them first) and budgets the budgets'.
"""

from __future__ import annotations

from .. import api
from .notify import Notifier

_ENVIRONMENT_WORDS = ("environment", "container", "out of memory", "engine")


class Outcomes:
    """Follows every agent's status on the service's stream and notifies on the changes a person cares about."""

    def __init__(self, notifier: Notifier) -> None:
        self.notifier = notifier
        self._status: dict[str, api.AgentStatus] = {}
        self._archive_reasons: dict[str, str] = {}  # agents Palot archives by itself, and why

    def archiving(self, agent_id: str, reason: str | None) -> None:
        """Palot is about to archive the agent by itself (``reason``), or (None) no longer is: the archive's
        one notification says why."""
        if reason is None:
            self._archive_reasons.pop(agent_id, None)
        else:
            self._archive_reasons[agent_id] = reason

    def seed(self, agents: list[api.Agent]) -> None:
        """The statuses as they are when the service starts: only later changes are news."""
        self._status = {a.id: a.status for a in agents}

    def on_event(self, event: api.Event) -> None:
        if event.type == api.AGENT_REMOVED and event.agent_id:
            self._status.pop(event.agent_id, None)
            return
        if event.type not in (api.AGENT_CREATED, api.AGENT_UPDATED) or event.agent is None:
            return
        agent = event.agent
        if agent.read_only:
            return
        before = self._status.get(agent.id)
        self._status[agent.id] = agent.status
        if before == agent.status or before is None and event.type == api.AGENT_UPDATED:
            return
        name = f"{agent.title} ({agent.id})"
        if agent.status == api.AgentStatus.FAILED:
            error = agent.error or "the agent's turn failed"
            lost = agent.environment.type != "worktree" and any(w in error.lower() for w in _ENVIRONMENT_WORDS)
            self.notifier.notify("needs_you", "environment_lost" if lost else "failed",
                                 f"{name} {'lost its environment' if lost else 'failed'}", error,
                                 action=f"palot agents show {agent.id}", agent_ids=[agent.id])
        elif agent.status == api.AgentStatus.COMPLETED and before in (
                api.AgentStatus.RUNNING, api.AgentStatus.PROVISIONING, api.AgentStatus.WAITING):
            self.notifier.notify("done", "completed", f"{name} is done", f"in {agent.project_name}",
                                 action=f"palot agents diff {agent.id}", agent_ids=[agent.id])
        elif agent.status == api.AgentStatus.ARCHIVED:
            kept = f"its work is on branch {agent.branch}" if agent.branch else ""
            reason = self._archive_reasons.pop(agent.id, None)
            if reason is not None:
                self.notifier.notify("done", "auto_archived", f"{name} was archived automatically",
                                     f"{reason}; {kept}" if kept else reason,
                                     action=f"palot agents show {agent.id}", agent_ids=[agent.id])
            else:
                self.notifier.notify("done", "archived", f"{name} was archived", kept,
                                     action=f"palot agents show {agent.id}", agent_ids=[agent.id])

    def moved(self, agent_id: str, title: str, result: api.MigrationResult) -> None:
        self.notifier.notify("done", "moved", f"{title} ({agent_id}) moved to {result.target}",
                             f"{result.messages} messages, {result.files_changed} files changed, "
                             f"{result.seconds:.0f} s", action=f"palot agents show {agent_id}", agent_ids=[agent_id])

    def move_failed(self, agent_id: str, title: str, target: str, error: str) -> None:
        self.notifier.notify("needs_you", "move_failed", f"{title} ({agent_id}) could not move to {target}", error,
                             action=f"palot agents moves {agent_id}", agent_ids=[agent_id])
