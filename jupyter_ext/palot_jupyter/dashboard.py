"""``Dashboard``: the three-column Palot dashboard (filters, agent list, detail panel), live.

The dashboard holds a :class:`palot.Palot` and follows its event hub from a
task on the kernel's event loop: Palot's ``palot.agent.updated`` events update
one row's changed cells, the list order and counts; OpenCode's events for the
selected agent refresh its activity and diff. Every action is one call of
``palot.agents``; errors are shown as the core words them (what failed, and the fix).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import ipywidgets as w

from palot import Palot, PalotError
from palot.agents import AGENT_REMOVED, AGENT_UPDATED, Agent
from palot.opencode import STREAM_CONNECTED, GlobalEvent

from .agent_list import AgentList
from .detail import ACTIVITY_TAB, DetailPanel
from .format import LIVE, Filters, activity_entry, esc, facets, move_result_text, overview
from .live import Refresher, background, cancel
from .overview import OverviewPanel
from .sidebar import Sidebar
from .spawn_form import SpawnForm
from .style import CSS

log = logging.getLogger(__name__)

#: The hub events the dashboard follows: Palot's agent changes, and what refreshes the selected agent.
WATCHED = (
    AGENT_UPDATED, AGENT_REMOVED, STREAM_CONNECTED,
    "session.created", "session.idle", "session.error", "message.updated", "message.part.updated",
)
TICK_SECONDS = 1.0


class Dashboard(w.VBox):
    """The Palot dashboard widget.

    ``Dashboard()`` attaches to the shared server of ``$PALOT_HOME`` (starting
    it if needed); ``Dashboard(palot)`` uses a Palot you made (started or not).
    In a notebook it starts itself on the kernel's event loop; elsewhere
    ``await dashboard.start()``.
    """

    def __init__(self, palot: Palot | None = None, *, project: str | Path | None = None, **kwargs: Any) -> None:
        self.palot = palot if palot is not None else Palot(attach_any=True)
        self._owns_palot = palot is None
        self.agents: dict[str, Agent] = {}
        self.filters = Filters()
        self.selected: str | None = None
        self._default_project = str(Path(project).expanduser().resolve()) if project else None

        self.banner = w.HTML('<div class="palot-muted">Connecting to Palot…</div>')
        self.banner.add_class("palot-banner")
        self.sidebar = Sidebar(self._set_filters, self.new_agent)
        self.agent_list = AgentList(self.select)
        self.overview = OverviewPanel(self.select)
        self.detail = DetailPanel(list(self.palot.backends))
        self.spawn_form = SpawnForm(list(self.palot.backends))
        self.right = w.VBox([self.overview.widget])
        self.right.add_class("palot-detail")
        columns = w.HBox([self.sidebar.widget, self.agent_list.widget, self.right])
        columns.add_class("palot-columns")
        super().__init__([w.HTML(f"<style>{CSS}</style>"), self.banner, columns], **kwargs)
        self.add_class("palot-dashboard")
        self._wire()

        self._sub: Any = None
        self._tasks: list[asyncio.Task[Any]] = []
        self._actions: set[asyncio.Task[Any]] = set()
        self._handling = False
        self._start_task: asyncio.Task[Any] | None = None
        self._detail_refresh = Refresher(self._refresh_detail, delay=0.15, name="palot-detail-refresh")
        self._reload = Refresher(self._reload_agents, delay=1.0, name="palot-reload")
        if not _loop_running():
            return  # not in a notebook: the caller awaits start()
        self._start_task = background(self._start_in_background(), name="palot-dashboard-start")

    # --- lifecycle ------------------------------------------------------------

    async def start(self) -> Dashboard:
        """Start (or attach) Palot, load the agents and follow the event stream. Idempotent.

        If starting failed (shown in the dashboard's banner), calling this again retries and raises the error.
        """
        if self._sub is not None:
            return self
        task = self._start_task
        if task is not None and task is not asyncio.current_task() and not task.done():
            await asyncio.wait({task})
            if self._sub is not None:
                return self
        try:
            if self.palot.server.client is None:
                await self.palot.start()
            # Subscribe before listing, so no change falls between the two.
            self._sub = self.palot.hub.subscribe(types=WATCHED, replay=False, maxsize=10_000)
            self._load(self.palot.agents.list(include_archived=True))
        except PalotError as e:
            self.banner.value = f'<div class="palot-error">Palot is not available: {esc(e)}</div>'
            raise
        self.banner.value = ""
        self._tasks = [background(self._follow(), name="palot-dashboard-events"),
                       background(self._tick(), name="palot-dashboard-clock")]
        return self

    async def _start_in_background(self) -> None:
        with contextlib.suppress(PalotError):  # the banner says what failed and the fix
            await self.start()

    async def sync(self) -> None:
        """Wait until the dashboard shows everything that has happened so far (for scripts and tests)."""
        await self.start()
        while True:
            while self._handling or (self._sub is not None and self._sub.pending()):
                await asyncio.sleep(0.005)
            if self._actions:
                await asyncio.wait(set(self._actions))
                continue
            await self._detail_refresh.wait()
            await self._reload.wait()
            if not self._actions and not self._sub.pending() and not self._handling:
                return

    async def show(self, agent: Agent | str) -> None:
        """Select an agent and wait until its activity and diff are on screen."""
        await self.sync()
        self.select(agent if isinstance(agent, str) else agent.id)
        await self.sync()

    def close(self) -> None:
        """Stop following Palot and close the widget (an owned Palot is closed too)."""
        for task in getattr(self, "_tasks", ()):
            task.cancel()
        if getattr(self, "_sub", None) is not None:
            self._sub.close()
        if getattr(self, "_owns_palot", False) and _loop_running():
            background(self.palot.close(), name="palot-close")
        super().close()

    async def aclose(self) -> None:
        """Like :meth:`close`, waiting until the dashboard's tasks (and an owned Palot) have stopped."""
        for task in self._tasks:
            await cancel(task)
        await self._detail_refresh.stop()
        await self._reload.stop()
        if self._sub is not None:
            self._sub.close()
        if self._owns_palot:
            await self.palot.close()
        super().close()

    # --- state ------------------------------------------------------------------

    def _load(self, agents: list[Agent]) -> None:
        now = time.time()
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
            if before is None or (before.status, before.permissions) != (agent.status, agent.permissions):
                self._detail_refresh.request()  # a turn ended or paused: the diff may have changed

    def _forget(self, agent_id: str) -> None:
        self.agents.pop(agent_id, None)
        self.agent_list.remove(agent_id)
        if agent_id == self.selected:
            self.select(None)

    def _arrange(self, now: float) -> None:
        self.agent_list.arrange(self.agents, self.filters)
        agents = list(self.agents.values())
        summary = overview(agents, now)
        self.sidebar.show(facets(agents, self.filters), summary)
        if self.selected is None:
            self.overview.show(summary)
        projects = sorted({a.project_path for a in agents if not a.read_only})
        newest = max((a for a in agents if not a.read_only), key=lambda a: a.created_at, default=None)
        self.spawn_form.offer_projects(projects, self._default_project or (newest.project_path if newest else None))

    def _set_filters(self, filters: Filters) -> None:
        self.filters = filters
        self._arrange(time.time())

    # --- following the event stream ----------------------------------------------

    async def _follow(self) -> None:
        sub = self._sub
        while True:
            try:
                event = await sub.get()
            except StopAsyncIteration:
                return
            self._handling = True
            try:
                batch = [event]
                while sub.pending():
                    batch.append(await sub.get())
                self._show_events(batch)
            except Exception:
                log.exception("palot dashboard: could not show events")
            finally:
                self._handling = False

    def _show_events(self, events: list[GlobalEvent]) -> None:
        """Show a batch of hub events: changed rows first, then order, counts and overview once."""
        now = time.time()
        arrange = False
        selected = self.agents.get(self.selected) if self.selected else None
        for event in events:
            kind = event.type
            props = event.payload.properties
            if kind == AGENT_UPDATED:
                self._upsert(Agent.model_validate(props["agent"]), now)
                arrange = True
            elif kind == AGENT_REMOVED:
                self._forget(str(props.get("agentID")))
                arrange = True
            elif kind == STREAM_CONNECTED:
                if props.get("reconnects"):
                    self._reload.request()
            elif kind == "session.created" and not self._knows_session(event.session_id):
                self._reload.request()  # perhaps an OpenCode session Palot did not start
            elif selected is not None and event.session_id == selected.session_id:
                self._detail_refresh.request()
        if arrange:
            self._arrange(now)

    def _knows_session(self, session_id: str | None) -> bool:
        return any(a.session_id == session_id for a in self.agents.values())

    async def _reload_agents(self) -> None:
        self._load(self.palot.agents.list(include_archived=True))

    async def _tick(self) -> None:
        """Advance elapsed times of live agents (and the overview's "ago"s) once a second."""
        while True:
            await asyncio.sleep(TICK_SECONDS)
            now = time.time()
            for agent in self.agents.values():
                if agent.status in LIVE and agent.id in self.agent_list.rows:
                    self.agent_list.rows[agent.id].tick(agent, now)
            if self.selected in self.agents and self.agents[self.selected].status in LIVE:
                self.detail.show_agent(self.agents[self.selected], now)
            if self.selected is None:
                self.overview.show(overview(list(self.agents.values()), now))

    # --- selection and the detail panel ---------------------------------------------

    def select(self, agent_id: str | None) -> None:
        """Open an agent in the detail panel; ``None`` shows the overview."""
        if agent_id is not None and agent_id not in self.agents:
            raise KeyError(f"no agent {agent_id} on the dashboard")
        self.selected = agent_id
        self.agent_list.select(agent_id)
        if agent_id is None:
            self.overview.show(overview(list(self.agents.values()), time.time()))
            self.right.children = (self.overview.widget,)
            return
        self.detail.show_agent(self.agents[agent_id], time.time(), fresh=True)
        self.right.children = (self.detail.widget,)
        self._detail_refresh.request(now=True)

    def new_agent(self) -> None:
        """Show the spawn form in the right column."""
        self.selected = None
        self.agent_list.select(None)
        self.right.children = (self.spawn_form.widget,)

    async def _refresh_detail(self) -> None:
        agent_id = self.selected
        if agent_id is None:
            return
        try:
            items = await self.palot.agents.activity(agent_id)
        except PalotError as e:
            items = None
            log.info("no activity for %s: %s", agent_id, e)
        try:
            diff = await self.palot.agents.diff(agent_id)
            diff_error = None
        except PalotError as e:
            diff, diff_error = None, str(e)
        if self.selected != agent_id:
            return
        if items is not None:
            self.detail.activity.show([activity_entry(i) for i in items])
        if diff is not None:
            self.detail.show_diff(diff)
        else:
            self.detail.show_diff_error(f"No diff: {diff_error}")

    # --- actions --------------------------------------------------------------------

    def _wire(self) -> None:
        d, f = self.detail, self.spawn_form
        d.abort_button.on_click(lambda _b: self._act(self._abort))
        d.apply_button.on_click(lambda _b: self._act(self._apply))
        d.archive_button.on_click(lambda _b: self._act(self._archive))
        d.send_button.on_click(lambda _b: self._act(self._send_message))
        d.approve_button.on_click(lambda _b: self._act(lambda: self._reply("once")))
        d.always_button.on_click(lambda _b: self._act(lambda: self._reply("always")))
        d.reject_button.on_click(lambda _b: self._act(lambda: self._reply("reject")))
        d.close_button.on_click(lambda _b: self.select(None))
        d.move_button.on_click(lambda _b: self._move_clicked())
        f.launch_button.on_click(lambda _b: self._launch())
        f.cancel_button.on_click(lambda _b: self.select(None))

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

    def _shown(self, agent: Agent) -> None:
        self._upsert(agent, time.time())
        self._arrange(time.time())

    async def _abort(self) -> str:
        agent = await self.palot.agents.abort(self._current())
        self._shown(agent)
        return "Aborted: the agent is paused until you send it a message."

    async def _apply(self) -> str:
        agent = self.agents[self._current()]
        changed = await self.palot.agents.apply(agent.id)
        return f"Applied {len(changed)} file(s) to {agent.project_path} (uncommitted): {', '.join(changed)}"

    async def _archive(self) -> str:
        agent = await self.palot.agents.archive(self._current())
        self._shown(agent)
        return f"Archived: the environment is removed, the work stays on branch {agent.environment.branch}."

    async def _send_message(self) -> str:
        text = self.detail.prompt.value
        agent = await self.palot.agents.prompt(self._current(), text)
        self.detail.prompt.value = ""
        self._shown(agent)
        self.detail.tabs.selected_index = ACTIVITY_TAB
        return "Sent."

    async def _reply(self, reply: str) -> str:
        agent = self.agents[self._current()]
        pending = agent.permissions[0].id if agent.permissions else None
        agent = await self.palot.agents.reply_permission(agent.id, reply, permission_id=pending)
        self._shown(agent)
        return {"once": "Approved once.", "always": "Approved, also for later requests like it.",
                "reject": "Rejected: the agent is paused until you send it a message."}[reply]

    def _move_clicked(self) -> None:
        """The first click on Move… shows what will happen; the second (Confirm move) starts the move."""
        agent_id, target = self.selected, self.detail.confirm_move()
        if agent_id is None or target is None:
            return
        self.detail.move_started(agent_id, target)  # disabled at once: a third click must not start another
        self._track(self._move(agent_id, target))

    async def _move(self, agent_id: str, target: str) -> None:
        """Move the agent; each step, then the outcome or the core's error, shows under the environment."""
        detail = self.detail
        text, error = "The move was interrupted.", True
        try:
            result = await self.palot.agents.move(
                agent_id, target, progress=lambda message: detail.move_progress(agent_id, target, message))
            text, error = move_result_text(result), False
        except PalotError as e:
            text = str(e)
        except Exception as e:  # shown, never lost in the kernel log
            log.exception("palot dashboard: move failed")
            text = f"unexpected error: {e!r}"
        finally:
            detail.move_finished(agent_id, text, error=error)
        with contextlib.suppress(PalotError):  # the hub's update shows the new environment anyway
            self._shown(await self.palot.agents.get(agent_id))

    def _current(self) -> str:
        assert self.selected is not None
        return self.selected

    def _launch(self) -> None:
        self._track(self._spawn())

    async def _spawn(self) -> None:
        form = self.spawn_form
        req = form.request()
        if not req.project:
            form.say("Choose a project: the path of a git repository.", error=True)
            return
        form.busy(True)
        form.say("")
        try:
            agent = await self.palot.agents.spawn(
                req.project, req.prompt, title=req.title, model=req.model, environment=req.environment,
                permission_mode=req.permission_mode,
            )
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
        self._shown(agent)
        if self.right.children == (form.widget,):
            self.select(agent.id)


def _loop_running() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True
