"""``Dashboard``: the three-column Palot dashboard (filters, agent list, detail panel), live — a thin client.

The dashboard holds a :class:`palot.client.PalotClient` and follows the service's Palot-level event stream
(``client.events()``) from tasks on the kernel's event loop (see :mod:`palot_jupyter.following`). This module
owns the widget itself: its columns, starting and stopping, the agents it shows, and selection. Every action
is one request to the service (see :mod:`palot_jupyter.controls`; the buttons are wired in
:mod:`palot_jupyter.wiring`); errors are shown as the service words them (what failed, and the fix).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import time
from pathlib import Path
from typing import Any

import ipywidgets as w
from palot import api
from palot.api import Agent, Event, InboxItem, PalotError, Project, ServiceStatus, SettingsView
from palot.client import PalotClient

from .agent_list import AgentList
from .controls import ACTION_CONTROLS
from .detail import DetailPanel
from .following import RELIST_SECONDS, TICK_SECONDS, DashboardFollowing
from .format import Filters, Overview, esc, facets, overview
from .live import Refresher, background, cancel
from .overview import OverviewPanel
from .records import service_html
from .sidebar import Sidebar
from .spawn_form import SpawnForm
from .style import CSS
from .wiring import REPLIES_SAID, DashboardWiring

log = logging.getLogger(__name__)

#: Today's spend and the inbox are re-read at most this often while events say they may have changed.
STATUS_SECONDS = 1.0

__all__ = ["ACTION_CONTROLS", "RELIST_SECONDS", "REPLIES_SAID", "STATUS_SECONDS", "TICK_SECONDS", "Dashboard"]


class Dashboard(DashboardWiring, DashboardFollowing, w.VBox):
    """The Palot dashboard widget.

    ``Dashboard()`` connects to the Palot service of ``$PALOT_HOME`` (or ``home``), starting it when none
    runs, with its progress in the status line; ``Dashboard(client)`` uses a :class:`PalotClient` you made.
    ``project`` is the spawn form's default project. In a notebook it starts itself on the kernel's event
    loop; elsewhere ``await dashboard.start()``.
    """

    def __init__(self, client: PalotClient | None = None, *, home: str | Path | None = None,
                 project: str | Path | None = None, **kwargs: Any) -> None:
        self.banner = w.HTML('<div class="palot-muted">Connecting to Palot…</div>')
        self.banner.add_class("palot-banner")
        self.client = client if client is not None else PalotClient(home, progress=self._starting)
        self._owns_client = client is None
        self.agents: dict[str, Agent] = {}
        self.filters = Filters()
        self.selected: str | None = None
        self.service: ServiceStatus | None = None
        self.inbox: list[InboxItem] = []
        self.settings: SettingsView | None = None
        self.projects: list[Project] = []
        self.models: list[str] = []
        self._default_project = str(Path(project).expanduser().resolve()) if project else None

        self.sidebar = Sidebar(self._set_filters, self.new_agent)
        self.agent_list = AgentList(self.select)
        self.overview = OverviewPanel(self.select, self._inbox_reply_clicked, self._housekeeping_clicked)
        self.detail = DetailPanel(api.TARGET_TYPES)
        self.spawn_form = SpawnForm(api.TARGET_TYPES)
        self.right = w.VBox([self.overview.widget])
        self.right.add_class("palot-detail")
        columns = w.HBox([self.sidebar.widget, self.agent_list.widget, self.right])
        columns.add_class("palot-columns")
        super().__init__([w.HTML(f"<style>{CSS}</style>"), self.banner, columns], **kwargs)
        self.add_class("palot-dashboard")
        self._wire()

        self._started = False
        self._events: asyncio.Queue[Event] = asyncio.Queue()
        self._last_event = 0.0
        self._tasks: list[asyncio.Task[Any]] = []
        self._actions: set[asyncio.Task[Any]] = set()
        self._handling = False
        self._start_task: asyncio.Task[Any] | None = None
        self._activity_refresh = Refresher(self._refresh_activity, delay=0.15, name="palot-activity-refresh")
        self._diff_refresh = Refresher(self._refresh_diff, delay=0.15, name="palot-diff-refresh")
        self._tab_refresh = Refresher(self._refresh_tab, delay=0.3, name="palot-tab-refresh")
        self._reload = Refresher(self._reload_agents, delay=0.5, name="palot-reload")
        self._status_refresh = Refresher(self._refresh_status, delay=STATUS_SECONDS, name="palot-status-refresh")
        self._templates_refresh = Refresher(self._offer_templates, delay=0.3, name="palot-templates-refresh")
        self._refreshers = (self._activity_refresh, self._diff_refresh, self._tab_refresh, self._reload,
                            self._status_refresh, self._templates_refresh)
        if not _loop_running():
            return  # not in a notebook: the caller awaits start()
        self._start_task = background(self._start_in_background(), name="palot-dashboard-start")

    # --- lifecycle ------------------------------------------------------------

    def _starting(self, line: str) -> None:
        """The client's progress while it starts the service (e.g. installing OpenCode)."""
        self.banner.value = f'<div class="palot-muted">{esc(line)}</div>'

    async def start(self) -> Dashboard:
        """Connect to the service (starting it if needed), load the agents and follow the event stream.

        Idempotent. If connecting failed (shown in the dashboard's status line), calling this again retries
        and raises the error.
        """
        if self._started:
            return self
        task = self._start_task
        if task is not None and task is not asyncio.current_task() and not task.done():
            await asyncio.wait({task})
            if self._started:
                return self
        try:
            self.service = await self.client.connect()
            # Follow the stream before listing; its replay repeats the current views, so nothing falls between.
            self._tasks = [background(self._read_events(), name="palot-dashboard-stream"),
                           background(self._follow(), name="palot-dashboard-events"),
                           background(self._tick(), name="palot-dashboard-clock")]
            await self.reload()
        except PalotError as e:
            for t in self._tasks:
                await cancel(t)
            self._tasks = []
            self.banner.value = f'<div class="palot-error">Palot is not available: {esc(e)}</div>'
            raise
        self._started = True
        self.banner.value = ""
        await self._load_service_facts()
        return self

    async def _load_service_facts(self) -> None:
        """Projects and models for the forms, and the service's status for the overview; none is essential."""
        for load in (self.load_projects, self.load_models, self.service_status, self.load_inbox, self.load_settings,
                     self._offer_templates):
            try:
                await load()
            except PalotError as e:
                log.info("palot dashboard: %s: %s", load.__name__, e)

    async def _offer_templates(self) -> None:
        """The templates usable in the spawn form's project (all of them while it names none, or no repository)."""
        project = self.spawn_form.project.value.strip() or None
        try:
            await self.load_templates(project=project)
        except PalotError:
            if project is not None:
                await self.load_templates()

    async def _start_in_background(self) -> None:
        with contextlib.suppress(PalotError):  # the status line says what failed and the fix
            await self.start()

    async def sync(self) -> None:
        """Wait until the dashboard shows everything that has happened so far (for scripts and tests)."""
        await self.start()
        await self._quiet()
        await self.reload()  # the service's state now: events still on their way cannot be older than this
        while True:
            if self._actions:
                await asyncio.wait(set(self._actions))
                continue
            await self._quiet()
            for refresher in self._refreshers:
                await refresher.wait()
            if not self._actions and self._events.empty() and not self._handling:
                return

    async def _quiet(self, *, gap: float = 0.1, limit: float = 3.0) -> None:
        """Until the event stream has been quiet for ``gap`` seconds and every event is shown (at most ``limit``)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + limit
        while loop.time() < deadline and (self._handling or not self._events.empty()
                                          or loop.time() - self._last_event < gap):
            await asyncio.sleep(0.02)

    async def show(self, agent: Agent | str) -> None:
        """Select an agent and wait until its activity and diff are on screen."""
        await self.sync()
        self.select(agent if isinstance(agent, str) else agent.id)
        await self.sync()

    def close(self) -> None:
        """Stop following the service and close the widget (the service keeps running for everyone else)."""
        for task in getattr(self, "_tasks", ()):
            task.cancel()
        if getattr(self, "_owns_client", False) and _loop_running():
            background(self.client.close(), name="palot-close")
        super().close()

    async def aclose(self) -> None:
        """Like :meth:`close`, waiting until the dashboard's tasks (and a client it made) have stopped."""
        for task in self._tasks:
            await cancel(task)
        for refresher in self._refreshers:
            await refresher.stop()
        for task in tuple(self._actions):
            await cancel(task)
        if self._owns_client:
            await self.client.close()
        super().close()

    # --- state ------------------------------------------------------------------

    def _load(self, agents: list[Agent], *, complete: bool = True) -> None:
        """Show ``agents``; ``complete`` when they are all there are (the others are gone)."""
        now = time.time()
        if complete:
            for gone in set(self.agents) - {a.id for a in agents}:
                self._forget(gone)
        for agent in agents:
            self._upsert(agent, now)
        self._arrange(now)

    def _upsert(self, agent: Agent, now: float) -> None:
        before = self.agents.get(agent.id)
        self.agents[agent.id] = agent
        self.agent_list.upsert(agent, now)
        if agent.id == self.selected:
            self.detail.show_agent(agent, now)
            if before is None or (before.status, before.permissions, before.environment) != (
                    agent.status, agent.permissions, agent.environment):
                self._refresh_selected()  # a turn ended or paused, or it moved: activity and diff may differ

    def _forget(self, agent_id: str) -> None:
        self.agents.pop(agent_id, None)
        self.agent_list.remove(agent_id)
        if agent_id == self.selected:
            self.select(None)

    def _overview(self, now: float) -> Overview:
        """The overview of the agents, with today's spend and the inbox count as the service counts them."""
        summary = overview(list(self.agents.values()), now)
        if self.service is None:
            return summary
        return dataclasses.replace(summary, spend=self.service.spend, inbox=self.service.inbox)

    def _arrange(self, now: float) -> None:
        self.agent_list.arrange(self.agents, self.filters)
        agents = list(self.agents.values())
        summary = self._overview(now)
        self.sidebar.show(facets(agents, self.filters), summary)
        if self.selected is None:
            self.overview.show(summary)
        projects = sorted({a.project_path for a in agents if not a.read_only} | {p.path for p in self.projects})
        newest = max((a for a in agents if not a.read_only), key=lambda a: a.created_at, default=None)
        self.spawn_form.offer_projects(projects, self._default_project or (newest.project_path if newest else None))

    def _show_service(self) -> None:
        html = service_html(self.service, self.projects, self.models)
        if self.overview.service.value != html:
            self.overview.service.value = html

    def _set_filters(self, filters: Filters) -> None:
        self.filters = filters
        self._arrange(time.time())

    def _shown(self, agent: Agent) -> None:
        self._upsert(agent, time.time())
        self._arrange(time.time())

    # --- selection and the detail panel ---------------------------------------------

    def select(self, agent_id: str | None) -> None:
        """Open an agent in the detail panel; ``None`` shows the overview."""
        if agent_id is not None and agent_id not in self.agents:
            raise KeyError(f"no agent {agent_id} on the dashboard")
        self.selected = agent_id
        self.agent_list.select(agent_id)
        if agent_id is None:
            self.overview.show(self._overview(time.time()))
            self.right.children = (self.overview.widget,)
            return
        self.detail.show_agent(self.agents[agent_id], time.time(), fresh=True)
        self.right.children = (self.detail.widget,)
        self._refresh_selected(now=True)

    def new_agent(self) -> None:
        """Show the spawn form in the right column."""
        self.selected = None
        self.agent_list.select(None)
        self.right.children = (self.spawn_form.widget,)


def _loop_running() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True
