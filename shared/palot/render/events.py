"""``palot agents watch``: Palot events as lines. Text is built from what users and agents wrote, never markup
strings (see README.md)."""

from __future__ import annotations

from rich.console import Console
from rich.text import Text

from .. import api
from ..api import AgentStatus
from .agents import activity_line
from .basics import status_text


class EventPrinter:
    """Palot events as lines for ``palot agents watch``: status changes, finished steps, permissions, moves."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self.titles: dict[str, str] = {}
        self.statuses: dict[str, AgentStatus] = {}
        self.shown: set[str] = set()

    def _who(self, agent_id: str | None) -> Text:
        name = self.titles.get(agent_id or "", agent_id or "palot")
        return Text(f"{name[:24]:>24} ", "bold cyan")

    def line(self, event: api.Event) -> Text | None:
        """The line of ``event``, or None when it adds nothing (a repeated status, an unfinished step)."""
        if event.agent is not None:
            self.titles[event.agent.id] = event.agent.title
        kind = event.type
        if kind in (api.AGENT_CREATED, api.AGENT_UPDATED) and event.agent is not None:
            agent = event.agent
            if self.statuses.get(agent.id) == agent.status:
                return None
            self.statuses[agent.id] = agent.status
            line = Text.assemble(self._who(agent.id), status_text(agent.status))
            if agent.error and agent.status == AgentStatus.FAILED:
                line.append(f"  {agent.error}", style="red")
            return line
        if kind == api.AGENT_REMOVED:
            return Text.assemble(self._who(event.agent_id), ("removed", "bright_black"))
        if kind == api.ACTIVITY and event.item is not None:
            item = event.item
            if item.state not in ("completed", "error") or item.kind == "thinking" or item.id in self.shown:
                return None
            self.shown.add(item.id)
            return Text.assemble(self._who(event.agent_id), activity_line(item))
        if kind == api.FILE_CHANGED and event.path:
            return Text.assemble(self._who(event.agent_id), ("changed ", "bright_black"), event.path)
        if kind == api.PERMISSION_ASKED and event.permission is not None:
            p = event.permission
            return Text.assemble(self._who(event.agent_id), ("waiting for permission", "yellow"),
                                 f" {p.id}: {p.summary} — `palot agents reply {event.agent_id} once|always|reject`")
        if kind == api.PERMISSION_ANSWERED:
            return Text.assemble(self._who(event.agent_id), f"permission {event.permission_id}: {event.reply}")
        if kind == api.MOVE_PROGRESS:
            return Text.assemble(self._who(event.agent_id), (f"move {event.step or ''}: ", "magenta"),
                                 event.message or "")
        if kind == api.NOTIFICATION and event.notification is not None:
            n = event.notification
            return Text.assemble(self._who(event.agent_id), (n.title, "bold"), f"  {n.body}" if n.body else "",
                                 f"  → {n.action}" if n.action else "")
        if kind == api.RESYNC:
            return Text(event.message or "the Palot service restarted", "yellow")
        return None

    def show(self, event: api.Event) -> None:
        line = self.line(event)
        if line is not None:
            self.console.print(line, soft_wrap=True)
