"""The dashboard's action methods about one agent (the selected one by default): read it, spawn and steer it,
read what it did, finish with it, move it; each answer shows in the detail panel."""

from __future__ import annotations

import time
from typing import Any

from palot import api
from palot.api import (
    ActivityItem,
    Agent,
    AgentDiff,
    AgentMessage,
    AgentStatus,
    AuditEntry,
    ContainerOptions,
    Done,
    EnvironmentStatus,
    MigrationResult,
    MoveRecord,
    PullRequest,
    ReviewComment,
)
from palot.errors import PalotError

from .control_base import ControlsBase, show_html
from .format import activity_entry, move_result_text
from .records import audit_html, environment_html, messages_html, moves_html


def _options(options: dict[str, Any] | ContainerOptions | None) -> dict[str, Any] | None:
    if isinstance(options, ContainerOptions):
        return options.as_dict()
    return options or None


class AgentControls(ControlsBase):
    """Actions about one agent (see :data:`palot_jupyter.controls.ACTION_CONTROLS`)."""

    # --- reading and budgets ---------------------------------------------------------------

    async def refresh(self, *, agent: str | None = None) -> Agent:
        """Re-read one agent, with fresh tokens and cost."""
        view: Agent = await self._call("get", agent=self._agent(agent))
        self._shown(view)
        return view

    async def set_budget(self, *, agent: str | None = None, usd: float | None = None,
                         tokens: int | None = None) -> Agent:
        """Set the agent's budget (USD and/or tokens); an agent Palot paused for its budget may then go on."""
        view: Agent = await self._call("budget", agent=self._agent(agent), usd=usd, tokens=tokens)
        self._shown(view)
        return view

    # --- spawning and steering -------------------------------------------------------------

    async def spawn(self, *, project: str, prompt: str | None = None, environment: str | None = None,
                    title: str | None = None, model: str | None = None, base_branch: str | None = None,
                    branch: str | None = None, setup_script: str | None = None, permission_mode: str | None = None,
                    options: dict[str, Any] | ContainerOptions | None = None, budget_usd: float | None = None,
                    budget_tokens: int | None = None, template: str | None = None,
                    vars: dict[str, str] | None = None) -> Agent:
        """Start an agent from a prompt, or from a template with its variables; its provisioning steps show under
        the spawn form."""
        form = self.spawn_form
        agent: Agent = await self._call(
            "spawn", progress=lambda line: form.say(line), project=project, prompt=prompt, environment=environment,
            title=title, model=model, base_branch=base_branch, branch=branch, setup_script=setup_script,
            permission_mode=permission_mode, options=_options(options), budget_usd=budget_usd,
            budget_tokens=budget_tokens, template=template, vars=vars)
        self._shown(agent)
        return agent

    async def prompt(self, *, agent: str | None = None, text: str, model: str | None = None) -> Agent:
        view: Agent = await self._call("prompt", agent=self._agent(agent), text=text, model=model)
        self._shown(view)
        return view

    async def abort(self, *, agent: str | None = None) -> Agent:
        view: Agent = await self._call("abort", agent=self._agent(agent))
        self._shown(view)
        return view

    async def reply(self, *, agent: str | None = None, reply: str, permission_id: str | None = None,
                    message: str | None = None) -> Agent:
        """Answer a pending permission request (the first one, unless ``permission_id`` says which)."""
        ref = self._agent(agent)
        if permission_id is None and ref in self.agents and self.agents[ref].permissions:
            permission_id = self.agents[ref].permissions[0].id
        view: Agent = await self._call("reply", agent=ref, reply=reply, permission_id=permission_id,
                                       message=message)
        self._shown(view)
        return view

    async def wait(self, *, agent: str | None = None, timeout: float = 300.0,
                   until: list[AgentStatus] | list[str] | None = None) -> Agent:
        view: Agent = await self._call("wait", agent=self._agent(agent), timeout=timeout, until=until)
        self._shown(view)
        return view

    # --- what an agent did ----------------------------------------------------------------

    async def load_activity(self, *, agent: str | None = None, since: int = 0) -> list[ActivityItem]:
        ref = self._agent(agent)
        items: list[ActivityItem] = await self._call("activity", agent=ref, since=since)
        if ref == self.selected:
            shown = [activity_entry(i) for i in items]
            self.detail.activity.show(shown if since == 0 else [*self.detail.activity.items, *shown])
        return items

    async def load_messages(self, *, agent: str | None = None) -> list[AgentMessage]:
        ref = self._agent(agent)
        messages: list[AgentMessage] = await self._call("messages", agent=ref)
        if ref == self.selected:
            show_html(self.detail.messages, messages_html(messages))
        return messages

    async def load_diff(self, *, agent: str | None = None, path: str | None = None) -> AgentDiff:
        ref = self._agent(agent)
        try:
            diff: AgentDiff = await self._call("diff", agent=ref, path=path)
        except PalotError as e:
            if ref == self.selected:
                self.detail.show_diff_error(f"No diff: {e}")
            raise
        if ref == self.selected:
            self.detail.show_diff(diff)
        return diff

    async def load_environment(self, *, agent: str | None = None) -> EnvironmentStatus:
        ref = self._agent(agent)
        env: EnvironmentStatus = await self._call("environment", agent=ref)
        if ref == self.selected:
            show_html(self.detail.environment, environment_html(env))
        return env

    async def load_moves(self, *, agent: str | None = None) -> list[MoveRecord]:
        ref = self._agent(agent)
        moves: list[MoveRecord] = await self._call("moves", agent=ref)
        if ref == self.selected:
            show_html(self.detail.moves, moves_html(moves))
        return moves

    async def load_audit(self, *, agent: str | None = None, limit: int = 200) -> list[AuditEntry]:
        """The audit log of ``agent`` (the selected one by default; with none selected, the whole log)."""
        ref = agent or self.selected
        entries: list[AuditEntry] = await self._call("audit", agent=ref, limit=limit)
        if ref == self.selected:
            show_html(self.detail.audit, audit_html(entries))
        return entries

    # --- finishing -------------------------------------------------------------------------

    async def apply(self, *, agent: str | None = None, path: str | None = None) -> list[str]:
        """Apply the agent's changes (or only ``path``'s) to the project's checkout (uncommitted); the changed
        files."""
        return await self._call("apply", agent=self._agent(agent), path=path)

    async def create_pr(self, *, agent: str | None = None, title: str | None = None, body: str | None = None,
                        remote: str = "origin", base: str | None = None) -> PullRequest:
        ref = self._agent(agent)
        return await self._call("create_pr", progress=lambda line: self._say_for(ref, line), agent=ref,
                                title=title, body=body, remote=remote, base=base)

    async def archive(self, *, agent: str | None = None) -> Agent:
        ref = self._agent(agent)
        view: Agent = await self._call("archive", progress=lambda line: self._say_for(ref, line), agent=ref)
        self._shown(view)
        return view

    async def pause(self, *, agent: str | None = None) -> Agent:
        """Save a cloud agent's code and conversation and stop its environment (no running costs)."""
        ref = self._agent(agent)
        view: Agent = await self._call("pause", progress=lambda line: self._say_for(ref, line), agent=ref)
        self._shown(view)
        return view

    async def resume(self, *, agent: str | None = None) -> Agent:
        """Start a paused cloud agent again, its code and conversation put back."""
        ref = self._agent(agent)
        view: Agent = await self._call("resume", progress=lambda line: self._say_for(ref, line), agent=ref)
        self._shown(view)
        return view

    async def destroy(self, *, agent: str | None = None, force: bool = False) -> Done:
        ref = self._agent(agent)
        done: Done = await self._call("destroy", agent=ref, force=force)
        self._forget(ref)
        self._arrange(time.time())
        return done

    async def retry(self, *, agent: str | None = None) -> Agent:
        """A new agent from the agent's prompt, base commit and options (the old one is left as it is); the new
        agent is selected."""
        ref = self._agent(agent)
        view: Agent = await self._call("retry", progress=lambda line: self._say_for(ref, line), agent=ref)
        self._shown(view)
        return view

    async def request_changes(self, *, agent: str | None = None,
                              comments: list[dict[str, Any]] | list[ReviewComment] | list[str],
                              note: str | None = None) -> Agent:
        """Send the agent review comments on its diff as one prompt: each a {path, line, end_line?, comment}, or
        a line ``PATH:LINE:COMMENT`` (``PATH:FIRST-LAST:COMMENT``)."""
        ref = self._agent(agent)
        given = [api.review_comment(c) if isinstance(c, str) else c for c in comments]
        view: Agent = await self._call("request_changes", agent=ref, note=note, comments=[
            c.model_dump() if isinstance(c, ReviewComment) else c for c in given])
        self._shown(view)
        return view

    async def move(self, *, agent: str | None = None, target: str,
                   options: dict[str, Any] | ContainerOptions | None = None,
                   resume: bool | None = None) -> MigrationResult:
        """Move the agent; each step, then the outcome (or the service's error), shows under its environment."""
        ref = self._agent(agent)
        detail = self.detail
        if ref not in detail.moving:
            detail.move_started(ref, target)
        text, error = "The move was interrupted.", True
        try:
            result: MigrationResult = await self._call(
                "move", progress=lambda message: detail.move_progress(ref, target, message), agent=ref,
                target=target, options=_options(options), resume=resume)
            text, error = move_result_text(result), False
            return result
        except PalotError as e:
            text = str(e)
            raise
        finally:
            detail.move_finished(ref, text, error=error)
