"""Steering agents that exist: prompt, abort, budgets, permission replies, review, waiting.

Owns :class:`Commands`: the checks a command on a working agent makes (not read-only, not archived, not
moving), each command's change to the agent's live state made before OpenCode is called (so the events the
call causes settle the agent right) and undone when the call fails, its audit entry, and waiting for an
agent to settle. Retiring agents (archive, destroy) is :mod:`.retiring`.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable
from typing import Any

from ..backends import RuntimeBackend
from ..errors import InvalidInput, InvalidState, PalotError
from ..events import EventHub
from ..store import AgentRecord, EnvironmentRecord, Store
from . import review
from .conversation import Conversation
from .live import AGENT_UPDATED, LiveAgents
from .models import Agent, AgentStatus, ReviewComment
from .spawning import check_model
from .tracker import Tracker
from .views import AgentViews

_REPLIES = ("once", "always", "reject")
_SETTLED = {AgentStatus.COMPLETED, AgentStatus.FAILED, AgentStatus.PAUSED, AgentStatus.WAITING,
            AgentStatus.ARCHIVED}


class Commands:
    """What a user (or a policy) tells a working agent to do."""

    def __init__(self, store: Store, hub: EventHub, backends: dict[str, RuntimeBackend], live: LiveAgents,
                 views: AgentViews, tracker: Tracker, conversation: Conversation) -> None:
        self.store = store
        self.hub = hub
        self.backends = backends
        self.live = live
        self.views = views
        self.tracker = tracker
        self.conversation = conversation

    def active(self, agent_ref: str, action: str) -> tuple[AgentRecord, EnvironmentRecord]:
        """The agent's record and environment, for ``action`` on a working agent (not archived, not moving)."""
        rec, env = self.views.managed(agent_ref, action)
        if rec.archived_at is not None or env.state != "active":
            raise InvalidState(
                f"agent {rec.id} is archived, so Palot cannot {action} it",
                f"its work is kept on branch {env.branch}; spawn a new agent with --base-branch {env.branch}",
            )
        if not rec.session_id:
            raise InvalidState(f"agent {rec.id} has no OpenCode session", "destroy it and spawn a new one")
        self.not_moving(rec, action)
        if env.data.get("paused"):
            raise InvalidState(f"agent {rec.id} is paused (its cloud environment is stopped), so Palot cannot "
                               f"{action} it", f"resume it first: `palot agents resume {rec.id}`")
        return rec, env

    def not_moving(self, rec: AgentRecord, action: str) -> None:
        """Refuse ``action`` while the agent moves to another environment."""
        live = self.live.states.get(rec.id)
        if (live is not None and live.migrating) or rec.status == AgentStatus.MIGRATING.value:
            raise InvalidState(f"agent {rec.id} is moving to another environment, so Palot cannot {action} it now",
                               f"wait for the move to finish (`palot agents wait {rec.id}`)")

    async def prompt(self, agent_ref: str, text: str, *, model: str | None = None) -> Agent:
        """Send the agent another prompt (request changes, answer a question, resume after abort)."""
        if not isinstance(text, str) or not text.strip():
            raise InvalidInput("the prompt is empty", "say what the agent should do next")
        rec, env = self.active(agent_ref, "prompt")
        client = self.backends[env.type].client_for(env)
        if model is not None:
            await check_model(model, client, env.directory)
        live = self.live.live_of(rec.id)
        live.aborted, live.error, live.env_error, live.prompt_pending = False, None, None, True
        live.prompted_at, live.prompted_wall, live.prompt_sending = time.monotonic(), time.time(), True
        assert rec.session_id
        try:
            await client.prompt_async(rec.session_id, env.directory, text, model=model or rec.model)
        except PalotError:
            live.prompt_pending = False
            raise
        finally:
            live.prompt_sending = False
        self.tracker.watch_environment(rec.id, env)
        if rec.pause_reason is not None:
            self.store.update_agent(rec.id, pause_reason=None)
        self.store.audit("prompted", agent_id=rec.id, project_id=rec.project_id, chars=len(text))
        self.tracker.settle(rec.id)
        return self.views.by_id(rec.id)

    async def abort(self, agent_ref: str, *, reason: str | None = None) -> Agent:
        """Stop the agent's current turn; it is paused until prompted again. ``reason``: why Palot paused it
        (a policy, e.g. its budget), shown with the paused status until the next prompt."""
        rec, env = self.active(agent_ref, "abort")
        assert rec.session_id
        live = self.live.live_of(rec.id)
        # Marked before the call: OpenCode's idle event for the abort can be handled while it is awaited,
        # and must settle the agent as paused, not completed.
        # The reason too: whoever sees it paused sees why.
        was_aborted, was_reason = live.aborted, rec.pause_reason
        if live.busy or live.prompt_pending or live.permissions or reason:
            live.aborted = True
        if reason is not None:
            self.store.update_agent(rec.id, pause_reason=reason)
        try:
            await self.backends[env.type].client_for(env).abort(rec.session_id, env.directory)
        except BaseException:
            live.aborted = was_aborted
            if reason is not None:
                self.store.update_agent(rec.id, pause_reason=was_reason)
            raise
        live.busy = live.prompt_pending = False
        live.permissions.clear()
        self.store.audit("aborted", agent_id=rec.id, project_id=rec.project_id, **({"reason": reason} if reason else {}))
        self.tracker.settle(rec.id)
        self.tracker.announce(rec.id)
        return self.views.by_id(rec.id)

    def set_budget(self, agent_ref: str, *, usd: float | None = None, tokens: int | None = None) -> Agent:
        """Set the agent's own budget (either limit left out stays as it was)."""
        agent_id = self.views.resolve(agent_ref)
        rec = self.store.get_agent(agent_id)
        if rec.archived_at is not None:
            raise InvalidState(f"agent {agent_id} is archived", "a budget applies to agents that can still work")
        fields: dict[str, Any] = {}
        if usd is not None:
            fields["budget_usd"] = usd
        if tokens is not None:
            fields["budget_tokens"] = tokens
        if not fields:
            raise InvalidInput("no budget given", "give usd (e.g. 1.00) and/or tokens (e.g. 500000)")
        self.store.update_agent(agent_id, **fields)
        self.store.audit("budget", agent_id=agent_id, project_id=rec.project_id, **fields)
        self.tracker.announce(agent_id)
        return self.views.by_id(agent_id)

    async def reply_permission(
        self, agent_ref: str, reply: str, *, permission_id: str | None = None, message: str | None = None
    ) -> Agent:
        """Answer a pending permission request: ``once``, ``always`` or ``reject``.

        Rejecting ends the agent's turn, so the agent is then paused until prompted again.
        """
        if reply not in _REPLIES:
            raise InvalidInput(f"unknown reply '{reply}'", f"use one of: {', '.join(_REPLIES)}")
        rec, env = self.active(agent_ref, "answer permissions for")
        client = self.backends[env.type].client_for(env)
        pending = [p for p in await client.permissions(env.directory) if p.sessionID == rec.session_id]
        if permission_id is None:
            if not pending:
                raise InvalidState(f"agent {rec.id} has no pending permission request", "nothing to answer")
            if len(pending) > 1:
                raise InvalidInput(
                    f"agent {rec.id} has {len(pending)} pending requests: {', '.join(p.id for p in pending)}",
                    "pass the permission id to answer")
            permission_id = pending[0].id
        elif permission_id not in {p.id for p in pending}:
            raise InvalidInput(f"agent {rec.id} has no pending permission '{permission_id}'",
                               "see the agent's pending permissions with `palot agents show`")
        live = self.live.live_of(rec.id)
        was_aborted = live.aborted
        if reply == "reject":
            # OpenCode ends the turn on a rejection: the agent is paused until prompted. Marked before the
            # call, so the idle event it causes (handled while the call is awaited) settles it as paused.
            live.aborted = True
        try:
            await client.reply_permission(permission_id, env.directory, reply, message=message)
        except BaseException:
            live.aborted = was_aborted
            raise
        live.permissions.pop(permission_id, None)
        self.store.audit("permission", agent_id=rec.id, project_id=rec.project_id, request=permission_id, reply=reply)
        self.tracker.settle(rec.id)
        return self.views.by_id(rec.id)

    async def wait(
        self, agent_ref: str, *, timeout: float = 300.0, until: Iterable[AgentStatus] | None = None
    ) -> Agent:
        """Block until the agent settles (completed, failed, paused, waiting, archived) or ``timeout``."""
        agent_id = self.views.resolve(agent_ref)
        targets = set(until) if until is not None else _SETTLED
        with self.hub.subscribe(types=[AGENT_UPDATED], replay=False) as sub:
            agent = self.views.by_id(agent_id)
            deadline = time.monotonic() + timeout
            while agent.status not in targets:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                try:
                    event = await sub.get(timeout=min(remaining, 5.0))
                    if event.payload.properties.get("agentID") != agent_id:
                        continue  # another agent changed
                except asyncio.TimeoutError:
                    pass
                agent = self.views.by_id(agent_id)
        return agent

    async def request_changes(self, agent_ref: str, comments: list[ReviewComment], *,
                              note: str | None = None) -> Agent:
        """Send the agent one prompt built from review comments on its diff (file, lines, quoted diff lines,
        comment); a comment on a file or lines outside its diff is refused and nothing is sent."""
        rec, _ = self.active(agent_ref, "request changes of")
        comments = [c.model_copy(update={"path": c.path.strip().removeprefix("./")}) for c in comments]
        d = await self.conversation.diff(rec.id)
        hunks = review.check_comments(comments, d)
        agent = await self.prompt(rec.id, review.changes_prompt(comments, hunks, note))
        self.store.audit("changes_requested", agent_id=rec.id, project_id=rec.project_id,
                         comments=[{"path": c.path, "line": c.line, "end_line": c.end_line or c.line}
                                   for c in comments], note=bool(note))
        return agent
