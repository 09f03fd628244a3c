"""The dashboard's controls: what each button and form does, and how a click's outcome (or error) is shown.

Each click runs one of the action methods (:mod:`palot_jupyter.controls`) in the background, so what a click
does and what code does are one path.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import ipywidgets as w
from palot import api
from palot.api import PalotError

from .controls import DashboardActions
from .detail import ACTIVITY_TAB
from .format import esc
from .live import Refresher, background
from .records import pull_request_text

log = logging.getLogger(__name__)

REPLIES_SAID = {"once": "Approved once.", "always": "Approved, also for later requests like it.",
                "reject": "Rejected: the agent is paused until you send it a message."}


class DashboardWiring(DashboardActions):
    """The click handlers of :class:`~palot_jupyter.Dashboard` (a mixin: the widgets live there)."""

    banner: w.HTML
    right: w.VBox
    _actions: set[asyncio.Task[Any]]
    _diff_refresh: Refresher
    _tab_refresh: Refresher
    _templates_refresh: Refresher

    if TYPE_CHECKING:  # provided by the dashboard
        def select(self, agent_id: str | None) -> None: ...

    def _wire(self) -> None:
        d, f = self.detail, self.spawn_form
        d.abort_button.on_click(lambda _b: self._act(self._abort_clicked))
        d.apply_button.on_click(lambda _b: self._act(self._apply_clicked))
        d.archive_button.on_click(lambda _b: self._act(self._archive_clicked))
        d.pause_button.on_click(lambda _b: self._act(self._pause_clicked))
        d.resume_button.on_click(lambda _b: self._act(self._resume_clicked))
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

    async def _pause_clicked(self) -> str:
        await self.pause()
        return "Paused: the work is saved and the cloud container stopped; Resume starts it again."

    async def _resume_clicked(self) -> str:
        await self.resume()
        return "Resumed: the cloud container runs again with the agent's code and conversation."

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
