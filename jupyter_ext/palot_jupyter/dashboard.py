"""``Dashboard``: the three-column Palot dashboard (filters, agent list, detail panel), live — a thin client.

The dashboard holds a :class:`palot.client.PalotClient` and follows the service's Palot-level event stream
(``client.events()``) from tasks on the kernel's event loop: ``agent.created``/``agent.updated`` carry the
full view and update one row's changed cells, the list order and counts; ``agent.activity`` and
``agent.file`` refresh the selected agent's activity and diff; permission events and notifications re-read
the inbox and today's spend (notifications also show as the status line: "needs you" and "done" look
different); ``resync`` re-reads the list. Every action
is one request to the service (see :mod:`palot_jupyter.controls`); errors are shown as the service words
them (what failed, and the fix).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import ipywidgets as w
from palot import api
from palot.api import Agent, Event, InboxItem, PalotError, Project, ServiceStatus, SettingsView
from palot.client import PalotClient

from .agent_list import AgentList
from .controls import ACTION_CONTROLS, DashboardActions
from .detail import (
    ACTIVITY_TAB,
    AUDIT_TAB,
    DIFF_TAB,
    ENVIRONMENT_TAB,
    MESSAGES_TAB,
    MOVES_TAB,
    DetailPanel,
)
from .format import LIVE, Filters, Overview, esc, facets, notification_html, overview
from .live import Refresher, background, cancel
from .overview import OverviewPanel
from .records import pull_request_text, service_html
from .sidebar import Sidebar
from .spawn_form import SpawnForm
from .style import CSS

log = logging.getLogger(__name__)

TICK_SECONDS = 1.0
#: How often the list is re-read as a whole: OpenCode sessions started elsewhere (the TUI) come with no event.
RELIST_SECONDS = 5.0
#: Today's spend and the inbox are re-read at most this often while events say they may have changed.
STATUS_SECONDS = 1.0
REPLIES_SAID = {"once": "Approved once.", "always": "Approved, also for later requests like it.",
                "reject": "Rejected: the agent is paused until you send it a message."}

__all__ = ["ACTION_CONTROLS", "Dashboard"]


class Dashboard(DashboardActions, w.VBox):
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

    # --- following the event stream ----------------------------------------------

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

    # --- the controls ---------------------------------------------------------------

    def _wire(self) -> None:
        d, f = self.detail, self.spawn_form
        d.abort_button.on_click(lambda _b: self._act(self._abort_clicked))
        d.apply_button.on_click(lambda _b: self._act(self._apply_clicked))
        d.archive_button.on_click(lambda _b: self._act(self._archive_clicked))
        d.send_button.on_click(lambda _b: self._act(self._send_clicked))
        d.approve_button.on_click(lambda _b: self._act(lambda: self._reply_clicked("once")))
        d.always_button.on_click(lambda _b: self._act(lambda: self._reply_clicked("always")))
        d.reject_button.on_click(lambda _b: self._act(lambda: self._reply_clicked("reject")))
        d.pr_button.on_click(lambda _b: self._act(self._pr_clicked))
        d.wait_button.on_click(lambda _b: self._act(self._wait_clicked))
        d.destroy_button.on_click(lambda _b: self._act(self._destroy_clicked))
        d.budget_button.on_click(lambda _b: self._act(self._budget_clicked))
        d.retry_button.on_click(lambda _b: self._act(self._retry_clicked))
        d.review_button.on_click(lambda _b: self._act(self._review_clicked))
        bulk = self.overview.bulk
        bulk.preview_button.on_click(lambda _b: self._track(self._bulk_clicked(dry_run=True)))
        bulk.confirm_button.on_click(lambda _b: self._track(self._bulk_clicked(dry_run=False)))
        d.close_button.on_click(lambda _b: self.select(None))
        d.move_button.on_click(lambda _b: self._move_clicked())
        d.tabs.observe(lambda _c: self._tab_refresh.request(now=True), names="selected_index")
        d.diff_form.path.observe(lambda _c: self._diff_refresh.request(), names="value")
        d.audit_form.limit.observe(lambda _c: self._tab_refresh.request(), names="value")
        f.launch_button.on_click(lambda _b: self._track(self._launch()))
        f.cancel_button.on_click(lambda _b: self.select(None))
        f.project.observe(lambda _c: self._templates_refresh.request(), names="value")

    def _act(self, action: Callable[[], Awaitable[str]]) -> None:
        """Run a detail-panel action in the background; its outcome (or error) shows under the buttons."""
        agent_id = self.selected
        if agent_id is None:
            return
        self._track(self._run_action(agent_id, action))

    def _track(self, coro: Any) -> None:
        task = background(coro, name="palot-dashboard-action")
        self._actions.add(task)
        task.add_done_callback(self._actions.discard)

    async def _run_action(self, agent_id: str, action: Callable[[], Awaitable[str]]) -> None:
        self.detail.busy(True)
        self.detail.say("")
        try:
            outcome = await action()
        except PalotError as e:
            if self.selected == agent_id:
                self.detail.say(str(e), error=True)
            return
        except Exception as e:  # shown, never lost in the kernel log
            log.exception("palot dashboard action failed")
            if self.selected == agent_id:
                self.detail.say(f"unexpected error: {e!r}", error=True)
            return
        finally:
            self.detail.busy(False)
        if self.selected == agent_id:
            self.detail.say(outcome)
        elif self.selected is None and outcome:
            self.banner.value = f'<div class="palot-ok">{esc(outcome)}</div>'

    async def _abort_clicked(self) -> str:
        await self.abort()
        return "Aborted: the agent is paused until you send it a message."

    async def _apply_clicked(self) -> str:
        agent = self.agents[self._agent(None)]
        changed = await self.apply(agent=agent.id)
        return f"Applied {len(changed)} file(s) to {agent.project_path} (uncommitted): {', '.join(changed)}"

    async def _archive_clicked(self) -> str:
        agent = await self.archive()
        return f"Archived: the environment is removed, the work stays on branch {agent.environment.branch}."

    async def _retry_clicked(self) -> str:
        old = self._agent(None)
        agent = await self.retry(agent=old)
        self.select(agent.id)
        return f"Retrying {old} as {agent.id} on branch {agent.branch}; {old} is left as it was."

    async def _review_clicked(self) -> str:
        d = self.detail
        lines = [line for line in d.review_comments.value.splitlines() if line.strip()]
        await self.request_changes(comments=lines, note=d.review_note.value.strip() or None)
        d.review_comments.value, d.review_note.value = "", ""
        d.tabs.selected_index = ACTIVITY_TAB
        return f"Sent {len(lines)} review comment(s)."

    async def _bulk_clicked(self, *, dry_run: bool) -> None:
        """Preview lists what the filters select and would happen; confirm carries out that list."""
        bulk = self.overview.bulk
        try:
            values = bulk.form.values()
            if dry_run:
                await self.bulk_agents(**values)
            elif bulk.planned():
                await self.bulk_agents(**values, agents=bulk.planned(), dry_run=False)
        except PalotError as e:
            bulk.say(str(e))
        except Exception as e:  # shown, never lost in the kernel log
            log.exception("palot dashboard: bulk action failed")
            bulk.say(f"unexpected error: {e!r}")

    async def _send_clicked(self) -> str:
        d = self.detail
        await self.prompt(text=d.prompt.value, model=d.prompt_model.value.strip() or None)
        d.prompt.value = ""
        d.tabs.selected_index = ACTIVITY_TAB
        return "Sent."

    async def _reply_clicked(self, reply: str) -> str:
        await self.reply(reply=reply, **self.detail.reply_form.values())
        self.detail.reply_form.message.value = ""
        return REPLIES_SAID[reply]

    async def _pr_clicked(self) -> str:
        return pull_request_text(await self.create_pr(**self.detail.pr_form.values()))

    async def _wait_clicked(self) -> str:
        agent = await self.wait(**self.detail.wait_form.values())
        return f"{agent.title}: {agent.status.value}."

    async def _budget_clicked(self) -> str:
        agent = await self.set_budget(**self.detail.budget_form.values())
        limits = [f"${agent.budget_usd:.2f}" if agent.budget_usd is not None else "",
                  f"{agent.budget_tokens:,} tokens" if agent.budget_tokens is not None else ""]
        paused = " It is paused: send it a message to go on." if agent.status == api.AgentStatus.PAUSED else ""
        return f"Budget set: {' and '.join(x for x in limits if x)}.{paused}"

    def _housekeeping_clicked(self, what: str) -> None:
        """Disk use, or orphans looked for (``gc``) or removed (``gc_yes``), from the overview's buttons."""
        self._track(self._housekeeping(what))

    async def _housekeeping(self, what: str) -> None:
        try:
            if what == "du":
                await self.load_disk_use()
            else:
                await self.collect_garbage(yes=what == "gc_yes")
        except PalotError as e:
            self.overview.housekeeping.value = f'<div class="palot-error">{esc(str(e))}</div>'

    def _inbox_reply_clicked(self, permission_id: str, reply: str) -> None:
        """An answer given in the overview's inbox; its outcome shows under the inbox."""
        self._track(self._answer_in_inbox(permission_id, reply))

    async def _answer_in_inbox(self, permission_id: str, reply: str) -> None:
        self.overview.say("")
        try:
            answered = await self.reply_inbox(reply=reply, permission_ids=[permission_id])
        except PalotError as e:
            self.overview.say(str(e), error=True)
            return
        except Exception as e:  # shown, never lost in the kernel log
            log.exception("palot dashboard: inbox reply failed")
            self.overview.say(f"unexpected error: {e!r}", error=True)
            return
        self.overview.say(f"{REPLIES_SAID[reply]} ({', '.join(i.agent_title for i in answered)})" if answered
                          else "That request was already answered.")

    async def _destroy_clicked(self) -> str:
        title = self.agents[self._agent(None)].title
        done = await self.destroy(force=self.detail.destroy_force.value)
        return done.message or f"Destroyed {title}: its environment and branch are gone."

    def _move_clicked(self) -> None:
        """The first click on Move… shows what will happen; the second (Confirm move) starts the move."""
        agent_id, target = self.selected, self.detail.confirm_move()
        if agent_id is None or target is None:
            return
        self.detail.move_started(agent_id, target)  # disabled at once: a third click must not start another
        self._track(self._move_from_panel(agent_id, target, self.detail.move_values()))

    async def _move_from_panel(self, agent_id: str, target: str, values: dict[str, Any]) -> None:
        try:
            await self.move(agent=agent_id, target=target, **values)
        except PalotError:
            pass  # move() showed it under the environment
        except Exception as e:  # shown, never lost in the kernel log
            log.exception("palot dashboard: move failed")
            self.detail.move_finished(agent_id, f"unexpected error: {e!r}", error=True)
        with contextlib.suppress(PalotError):  # the event stream shows the new environment anyway
            await self.refresh(agent=agent_id)

    async def _launch(self) -> None:
        form = self.spawn_form
        values = form.values()
        if not values.get("project"):
            form.say("Choose a project: the path of a git repository.", error=True)
            return
        form.busy(True)
        form.say("")
        try:
            agent = await self.spawn(**values)
        except PalotError as e:
            form.say(str(e), error=True)
            return
        except Exception as e:
            log.exception("palot dashboard: spawn failed")
            form.say(f"unexpected error: {e!r}", error=True)
            return
        finally:
            form.busy(False)
        form.clear()
        if self.right.children == (form.widget,):
            self.select(agent.id)


def _loop_running() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True

