"""What every group of the dashboard's action methods shares: the state they read, one request to the service, the
agent an action is about (the selected one by default), and putting an answer on screen."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from palot.api import Agent, InboxItem, Project, ServiceStatus, SettingsView
from palot.client import PalotClient
from palot.errors import InvalidInput

if TYPE_CHECKING:
    from .detail import DetailPanel
    from .overview import OverviewPanel
    from .spawn_form import SpawnForm


class ControlsBase:
    """The state and helpers the action mixins share (a mixin: the widgets live in the dashboard)."""

    client: PalotClient
    agents: dict[str, Agent]
    selected: str | None
    detail: DetailPanel
    overview: OverviewPanel
    spawn_form: SpawnForm
    service: ServiceStatus | None
    inbox: list[InboxItem]
    settings: SettingsView | None
    projects: list[Project]
    models: list[str]

    if TYPE_CHECKING:  # provided by the dashboard
        def _shown(self, agent: Agent) -> None: ...
        def _forget(self, agent_id: str) -> None: ...
        def _arrange(self, now: float) -> None: ...
        def _load(self, agents: list[Agent], *, complete: bool = True) -> None: ...
        def _show_service(self) -> None: ...

    async def _call(self, action: str, progress: Callable[[str], None] | None = None, **fields: Any) -> Any:
        """Validate ``fields`` as ``action``'s request (a clear error names the field) and send it."""
        return await self.client.call(action, {k: v for k, v in fields.items() if v is not None}, progress=progress)

    def _agent(self, agent: str | None) -> str:
        ref = agent or self.selected
        if ref is None:
            raise InvalidInput("no agent is selected", "click an agent's title in the list, or pass agent=")
        return ref

    def _say_for(self, agent_id: str, line: str) -> None:
        if self.selected == agent_id:
            self.detail.say(line)


def show_html(widget: Any, value: str) -> None:
    """Set a widget's value only when it changed (the front end redraws on every set)."""
    if widget.value != value:
        widget.value = value
