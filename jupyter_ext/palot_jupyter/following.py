"""Following the service: the dashboard's event stream, its clock, and re-reading what the selected agent's
panel shows (activity, diff, the record tab on screen) when events say it changed.

``agent.created``/``agent.updated`` carry the full view and update one row's changed cells, the list order and
counts; ``agent.activity`` and ``agent.file`` refresh the selected agent's activity and diff; permission events
and notifications re-read the inbox and today's spend (notifications also show as the status line); ``resync``
re-reads the list.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import TYPE_CHECKING

import ipywidgets as w
from palot import api
from palot.api import Agent, Event, PalotError

from .agent_list import AgentList
from .controls import DashboardActions
from .detail import ACTIVITY_TAB, AUDIT_TAB, DIFF_TAB, ENVIRONMENT_TAB, MESSAGES_TAB, MOVES_TAB
from .format import LIVE, Overview, esc, notification_html
from .live import Refresher

log = logging.getLogger(__name__)

TICK_SECONDS = 1.0
#: How often the list is re-read as a whole: OpenCode sessions started elsewhere (the TUI) come with no event.
RELIST_SECONDS = 5.0


class DashboardFollowing(DashboardActions):
    """The event-following methods of :class:`~palot_jupyter.Dashboard` (a mixin: the widgets live there)."""

    banner: w.HTML
    agent_list: AgentList
    _events: asyncio.Queue[Event]
    _last_event: float
    _handling: bool
    _activity_refresh: Refresher
    _diff_refresh: Refresher
    _tab_refresh: Refresher
    _reload: Refresher
    _status_refresh: Refresher

    if TYPE_CHECKING:  # provided by the dashboard
        def _upsert(self, agent: Agent, now: float) -> None: ...
        def _overview(self, now: float) -> Overview: ...

    async def _read_events(self) -> None:
        """The service's Palot-level events, as they come (the client reconnects by itself)."""
        async for event in self.client.events(replay=True):
            self._last_event = asyncio.get_running_loop().time()
            self._events.put_nowait(event)

    async def _follow(self) -> None:
        while True:
            event = await self._events.get()
            self._handling = True
            try:
                batch = [event]
                while not self._events.empty():
                    batch.append(self._events.get_nowait())
                self._show_events(batch)
            except Exception:
                log.exception("palot dashboard: could not show events")
            finally:
                self._handling = False

    def _show_events(self, events: list[Event]) -> None:
        """Show a batch of events: changed rows first, then order, counts and overview once."""
        now = time.time()
        arrange = False
        for event in events:
            kind = event.type
            if kind in (api.AGENT_CREATED, api.AGENT_UPDATED) and event.agent is not None:
                before = self.agents.get(event.agent.id)
                self._upsert(event.agent, now)
                arrange = True
                if before is None or (before.cost, before.tokens) != (event.agent.cost, event.agent.tokens):
                    self._status_refresh.request()  # today's spend
            elif kind == api.AGENT_REMOVED and event.agent_id:
                self._forget(event.agent_id)
                arrange = True
            elif kind == api.ACTIVITY and event.agent_id == self.selected and self.selected is not None:
                self._activity_refresh.request()
                if self.detail.tabs.selected_index == MESSAGES_TAB:
                    self._tab_refresh.request()
            elif kind == api.FILE_CHANGED and event.agent_id == self.selected and self.selected is not None:
                self._diff_refresh.request()
            elif kind == api.MOVE_PROGRESS and event.agent_id and event.agent_id not in self.detail.moving:
                # A move started elsewhere (the CLI, an editor): its steps show here too.
                self.detail.move_progress(event.agent_id, "new environment", event.message or event.step or "")
            elif kind in (api.PERMISSION_ASKED, api.PERMISSION_ANSWERED):
                self._status_refresh.request()  # the inbox
            elif kind == api.NOTIFICATION and event.notification is not None:
                self.banner.value = notification_html(event.notification)
                self._status_refresh.request()
            elif kind == api.RESYNC:
                self._reload.request()
        if arrange:
            self._arrange(now)

    async def _reload_agents(self) -> None:
        await self.reload()

    async def _refresh_status(self) -> None:
        """Today's spend and the inbox, re-read after events that may change them."""
        try:
            await self.service_status()
            await self.load_inbox()
        except PalotError as e:
            log.info("palot dashboard: status: %s", e)

    async def _tick(self) -> None:
        """Advance elapsed times of live agents (and the overview's "ago"s) once a second; re-read the list
        now and then."""
        last_list = time.monotonic()
        while True:
            await asyncio.sleep(TICK_SECONDS)
            now = time.time()
            for agent in self.agents.values():
                if agent.status in LIVE and agent.id in self.agent_list.rows:
                    self.agent_list.rows[agent.id].tick(agent, now)
            if self.selected in self.agents and self.agents[self.selected].status in LIVE:
                self.detail.show_agent(self.agents[self.selected], now)
            if self.selected is None:
                self.overview.show(self._overview(now))
            if time.monotonic() - last_list >= RELIST_SECONDS:
                last_list = time.monotonic()
                self._reload.request(now=True)

    def _refresh_selected(self, *, now: bool = False) -> None:
        self._activity_refresh.request(now=now)
        self._diff_refresh.request(now=now)
        if self.detail.tabs.selected_index not in (ACTIVITY_TAB, DIFF_TAB):
            self._tab_refresh.request(now=now)

    async def _refresh_activity(self) -> None:
        if self.selected is not None:
            try:
                await self.load_activity()
            except PalotError as e:
                log.info("no activity for %s: %s", self.selected, e)

    async def _refresh_diff(self) -> None:
        if self.selected is not None:
            with contextlib.suppress(PalotError):  # load_diff shows the error in the Diff tab
                await self.load_diff(path=self.detail.diff_form.values().get("path"))

    async def _refresh_tab(self) -> None:
        """The record tab on screen (messages, environment, moves, audit), read when it is shown."""
        tab = self.detail.tabs.selected_index
        if self.selected is None:
            return
        try:
            if tab == MESSAGES_TAB:
                await self.load_messages()
            elif tab == ENVIRONMENT_TAB:
                await self.load_environment()
            elif tab == MOVES_TAB:
                await self.load_moves()
            elif tab == AUDIT_TAB:
                await self.load_audit(**self.detail.audit_form.values())
        except PalotError as e:
            views = {MESSAGES_TAB: self.detail.messages, ENVIRONMENT_TAB: self.detail.environment,
                     MOVES_TAB: self.detail.moves, AUDIT_TAB: self.detail.audit}
            if tab in views:
                views[tab].value = f'<div class="palot-error">{esc(e)}</div>'
