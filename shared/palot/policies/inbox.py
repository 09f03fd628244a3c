"""The inbox: every pending permission request of every managed agent, answered by a person or by a rule.

Requests are remembered in the store from when they are first seen, so a restart keeps their age and any
deadline a rule set. A request is marked answered in the store *before* Palot answers it, and only when it
was still open there: a rule and a person (or two rules) never answer the same request twice.

When the agent's OpenCode server restarts while a request waits, OpenCode forgets the request and the turn
ends ("interrupted"). Palot keeps it in the inbox: allowing it resumes the agent with a prompt that says so,
and the agent's repeat of the same request is answered the same way at once — asked once, answered once.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .. import api
from ..agents.status import INTERRUPTED
from ..errors import AgentNotFound, InvalidInput, InvalidState, PalotError
from ..store import PermissionRecord
from .notify import Notifier
from .settings import Rule, SettingsFile

if TYPE_CHECKING:
    from ..core import Palot

log = logging.getLogger(__name__)

GONE_CHECK = 2.0  # seconds: a request missing from a view gets this long for its "answered" event first
INTERRUPTED_NOTE = "OpenCode restarted while this waited: allowing it resumes the agent"
RESUME = ("Your OpenCode server restarted while you waited for permission to use {tool} ({what}), and your turn "
          "ended there. The user {verdict}. Continue your task from where you stopped.")


@dataclass
class _Pending:
    """What the inbox keeps of an open request, so events and timers need no store read."""

    agent: api.Agent
    tool: str
    patterns: list[str]
    asked_at: float
    timer: asyncio.TimerHandle | None = None
    deadline: float | None = None
    rule: str | None = None  # "reject by rule 2: ask bash '*'" while a timer runs
    interrupted: bool = False  # OpenCode restarted and forgot it; the agent's turn ended (see the module doc)


@dataclass(frozen=True)
class _Resume:
    """An answer given to an interrupted request, waiting for the resumed agent to ask the same again."""

    tool: str
    patterns: tuple[str, ...]
    reply: str
    request: str  # the id of the request it answered
    by: str  # "person" or the rule that answered


_ASKING = (api.AgentStatus.RUNNING, api.AgentStatus.WAITING, api.AgentStatus.PROVISIONING)


def _interrupted(agent: api.Agent) -> bool:
    return agent.status == api.AgentStatus.FAILED and agent.error == INTERRUPTED


class Inbox:
    def __init__(self, palot: Palot, settings: SettingsFile, notifier: Notifier) -> None:
        self.palot = palot
        self.settings = settings
        self.notifier = notifier
        self._open: dict[str, _Pending] = {}
        self._seen: set[str] = set()  # ids already looked up, so agent updates rarely touch the store
        self._answering: set[str] = set()  # answers in flight (a rule's or a person's)
        self._tasks: set[asyncio.Task[Any]] = set()
        self._gone_checks: dict[str, asyncio.TimerHandle] = {}
        self._resumes: dict[str, _Resume] = {}  # agent id → the answer its repeated request gets
        # Set by the policies: raises when a prompt would be refused (a budget), before anything is answered.
        self.check_prompt: Callable[[str], None] = lambda agent_id: None

    # --- following the agents -----------------------------------------------------------------

    async def start(self, agents: list[api.Agent]) -> None:
        pending = {p.id: (a, p) for a in agents if not a.read_only for p in a.permissions}
        for rec in self.palot.store.open_permissions():
            if rec.id in pending:
                continue
            agent = self._agent(rec.agent_id)
            if agent is not None and _interrupted(agent):  # OpenCode restarted while the service was down
                self._seen.add(rec.id)
                self._open[rec.id] = _Pending(agent, rec.tool, list(rec.patterns), rec.asked_at, interrupted=True)
                self._apply(rec.id, announce=False)
            else:  # answered or dropped while the service was down
                self.palot.store.answer_permission(rec.id, "unknown", "gone")
        for agent, perm in pending.values():
            self._see(agent, perm, time.time())

    def on_event(self, event: api.Event) -> None:
        if event.type == api.PERMISSION_ASKED and event.permission is not None and event.agent_id:
            agent = self._agent(event.agent_id)
            if agent is not None:
                self._see(agent, event.permission, event.time)
        elif event.type == api.PERMISSION_ANSWERED and event.permission_id:
            self.palot.store.answer_permission(event.permission_id, event.reply or "unknown", "person")
            self._drop(event.permission_id)
        elif event.type in (api.AGENT_CREATED, api.AGENT_UPDATED) and event.agent is not None:
            self._agent_changed(event.agent)
        elif event.type == api.AGENT_REMOVED and event.agent_id:
            for rid in [r for r, p in self._open.items() if p.agent.id == event.agent_id]:
                self.palot.store.answer_permission(rid, "unknown", "gone")
                self._drop(rid)

    def _agent_changed(self, agent: api.Agent) -> None:
        if agent.read_only:
            return
        if agent.id in self._resumes and agent.status not in _ASKING and not _interrupted(agent):
            del self._resumes[agent.id]  # the resumed turn ended without asking again
        listed = {p.id for p in agent.permissions}
        for perm in agent.permissions:  # a request whose "asked" event this process missed
            if perm.id not in self._seen:
                self._see(agent, perm, time.time())
            elif perm.id in self._open:
                self._open[perm.id].agent = agent
        if _interrupted(agent):  # OpenCode restarted: the requests it forgot stay (see the module doc)
            self._check_gone(agent.id)
        elif any(p.agent.id == agent.id and rid not in listed for rid, p in self._open.items()) \
                and agent.id not in self._gone_checks:
            loop = asyncio.get_running_loop()
            self._gone_checks[agent.id] = loop.call_later(GONE_CHECK, self._check_gone, agent.id)

    def _check_gone(self, agent_id: str) -> None:
        """Requests an agent no longer lists, with no "answered" event by now: answered elsewhere, or dropped."""
        handle = self._gone_checks.pop(agent_id, None)
        if handle is not None:
            handle.cancel()
        agent = self._agent(agent_id)
        listed = {p.id for p in agent.permissions} if agent else set()
        for rid in [r for r, p in self._open.items() if p.agent.id == agent_id and r not in listed]:
            if rid in self._answering:
                continue
            p = self._open[rid]
            if agent is not None and _interrupted(agent):
                p.agent = agent
                if not p.interrupted:
                    p.interrupted = True
                    log.info("%s of %s outlived its OpenCode server: kept in the inbox", rid, agent_id)
                continue
            self.palot.store.answer_permission(rid, "unknown", "gone")
            self._drop(rid)

    def _see(self, agent: api.Agent, perm: api.PermissionView, now: float) -> None:
        """Remember a pending request (its first-seen time stands) and apply the rules to it."""
        self._seen.add(perm.id)
        if perm.id in self._open or perm.id in self._answering:
            return
        known = self.palot.store.get_permission(perm.id)
        rec = known or self.palot.store.record_permission(PermissionRecord(
            id=perm.id, agent_id=agent.id, tool=perm.permission, patterns=perm.patterns, asked_at=now))
        if rec.answered_at is not None:  # answered already (e.g. a rule's answer that failed: a person's now)
            return
        self._open[perm.id] = _Pending(agent, perm.permission, list(perm.patterns), rec.asked_at)
        self._apply(perm.id, announce=known is None)

    # --- rules --------------------------------------------------------------------------------

    def _rule_for(self, p: _Pending) -> tuple[int, Rule] | None:
        for number, rule in enumerate(self.settings.current.rules, start=1):
            if rule.matches(p.agent.project_path, p.agent.project_name, p.tool, p.patterns):
                return number, rule
        return None

    def _apply(self, rid: str, *, announce: bool) -> None:
        p = self._open[rid]
        resume = self._resumes.get(p.agent.id)
        if resume is not None and not p.interrupted and (resume.tool, resume.patterns) == (p.tool, tuple(p.patterns)):
            del self._resumes[p.agent.id]  # the resumed agent asks again what was answered before the restart
            self._spawn(self._auto(rid, resume.reply, f"the answer to {resume.request} before OpenCode restarted "
                                   f"({resume.by})", None))
            return
        number, rule = self._rule_for(p) or (0, None)
        if rule is not None and rule.action != "ask":
            reply = "once" if rule.action == "allow" else "reject"
            self._spawn(self._auto(rid, reply, rule.describe(number), rule.message))
            return
        if rule is not None and rule.timeout_minutes is not None:
            p.deadline = p.asked_at + rule.timeout_minutes * 60
            p.rule = f"{rule.on_timeout} by {rule.describe(number)}"
            delay = max(0.0, p.deadline - time.time())
            p.timer = asyncio.get_running_loop().call_later(delay, self._timed_out, rid, number, rule)
        if announce:
            a = p.agent
            self.notifier.notify("needs_you", "permission", f"{a.title} ({a.id}) asks: {p.tool} {' '.join(p.patterns)}",
                                 a.project_name, action="palot inbox", agent_ids=[a.id])

    def _timed_out(self, rid: str, number: int, rule: Rule) -> None:
        p = self._open.get(rid)
        if p is not None:
            p.timer = None
            self._spawn(self._time_up(rid, p, number, rule))

    async def _time_up(self, rid: str, p: _Pending, number: int, rule: Rule) -> None:
        reply = "reject" if rule.on_timeout == "reject" else "once"
        if await self._auto(rid, reply, rule.describe(number), rule.message):
            done = "rejected" if reply == "reject" else "allowed"
            self.notifier.notify(
                "needs_you", "rule_timeout", f"{p.agent.title} — {p.tool} {' '.join(p.patterns)}: {done} after "
                f"{rule.timeout_minutes:g} min by rule {number}", p.agent.project_name,
                action=f"palot agents show {p.agent.id}", agent_ids=[p.agent.id])

    async def _auto(self, rid: str, reply: str, described: str, message: str | None) -> bool:
        """A rule's answer (``described`` names it); True when it was given. The store is marked first, so
        nothing answers twice."""
        p = self._open.get(rid)
        if p is None or rid in self._answering:
            return False
        if p.interrupted:
            try:
                await self._answer_interrupted(rid, p, reply, described, message)
                return True
            except PalotError as e:
                log.warning("%s could not answer %s of %s: %s", described, rid, p.agent.id, e)
                return False
        agent = self._agent(p.agent.id)
        if agent is None or rid not in {x.id for x in agent.permissions}:
            return False  # answered elsewhere a moment ago; its "answered" event will say so
        if not self.palot.store.answer_permission(rid, reply, described):
            return False
        self._drop(rid)
        self._answering.add(rid)
        try:
            await self.palot.agents.reply_permission(agent.id, reply, permission_id=rid, message=message)
        except PalotError as e:
            log.warning("%s could not answer %s of %s: %s", described, rid, agent.id, e)
            return False
        finally:
            self._answering.discard(rid)
        self.palot.store.audit("permission.auto", agent_id=agent.id, project_id=agent.project_id, request=rid,
                               reply=reply, rule=described, tool=p.tool, patterns=p.patterns)
        return True

    async def _answer_interrupted(self, rid: str, p: _Pending, reply: str, by: str, message: str | None) -> None:
        """Answer a request OpenCode forgot when it restarted. Allowing it (or rejecting it with a message)
        resumes the agent; a bare rejection leaves it stopped, as a rejection would have."""
        resume = reply != "reject" or bool(message)
        if resume:
            self.check_prompt(p.agent.id)  # a prompt that would be refused (a budget) answers nothing
        if not self.palot.store.answer_permission(rid, reply, by):
            raise InvalidState(f"permission request {rid} was answered already",
                               "see what is pending with `palot inbox`")
        self._drop(rid)
        self.palot.store.audit("permission" if by == "person" else "permission.auto", agent_id=p.agent.id,
                               project_id=p.agent.project_id, request=rid, reply=reply, tool=p.tool,
                               patterns=p.patterns, interrupted=True, **({} if by == "person" else {"rule": by}))
        if not resume:
            return
        if reply != "reject":
            self._resumes[p.agent.id] = _Resume(p.tool, tuple(p.patterns), reply, rid, by)
        verdict = "allowed it" if reply != "reject" else f"rejected it and says: {message}"
        text = RESUME.format(tool=p.tool, what=", ".join(p.patterns) or "no details", verdict=verdict)
        try:
            await self.palot.agents.prompt(p.agent.id, text)
        except PalotError as e:
            raise InvalidState(
                f"request {rid} is answered ({reply}), but agent {p.agent.id} could not be resumed: {e.message}",
                f"resume it with `palot agents prompt {p.agent.id} 'continue'`") from None

    def settings_changed(self) -> None:
        for rid, p in list(self._open.items()):
            if p.timer is not None:
                p.timer.cancel()
            p.timer, p.deadline, p.rule = None, None, None
            self._apply(rid, announce=False)

    # --- what a person sees and does ----------------------------------------------------------

    def items(self, project: str | None = None) -> list[api.InboxItem]:
        found: list[api.InboxItem] = []
        agents = self.palot.agents.list(project=project, include_external=False)
        for agent in agents:
            for perm in agent.permissions:
                if perm.id in self._answering:
                    continue
                p = self._open.get(perm.id)
                if p is None:
                    rec = self.palot.store.get_permission(perm.id) or self.palot.store.record_permission(
                        PermissionRecord(id=perm.id, agent_id=agent.id, tool=perm.permission,
                                         patterns=perm.patterns, asked_at=time.time()))
                    asked_at, deadline, rule = rec.asked_at, None, None
                else:
                    asked_at, deadline, rule = p.asked_at, p.deadline, p.rule
                found.append(api.InboxItem(
                    permission_id=perm.id, agent_id=agent.id, agent_title=agent.title,
                    project_name=agent.project_name, project_path=agent.project_path, tool=perm.permission,
                    patterns=perm.patterns, summary=perm.summary, asked_at=asked_at, deadline=deadline, rule=rule))
        shown = {a.id: a for a in agents}
        for rid, p in self._open.items():
            agent = shown.get(p.agent.id)
            if p.interrupted and agent is not None and rid not in self._answering:
                found.append(api.InboxItem(
                    permission_id=rid, agent_id=agent.id, agent_title=agent.title, project_name=agent.project_name,
                    project_path=agent.project_path, tool=p.tool, patterns=p.patterns,
                    summary=api.permission_summary(p.tool, p.patterns), asked_at=p.asked_at, deadline=p.deadline,
                    rule=p.rule, note=INTERRUPTED_NOTE))
        found.sort(key=lambda i: (i.asked_at, i.permission_id))
        return found

    def count(self) -> int:
        return len(self.items())

    async def reply_many(self, req: api.InboxReplyRequest) -> list[api.InboxItem]:
        # Everything is checked before anything is answered: a typo answers nothing.
        chosen = self.items(project=req.project)
        what: list[str] = []
        if req.permission_ids:
            by_id = {i.permission_id: i for i in chosen}
            for rid in req.permission_ids:
                if rid not in by_id:
                    where = f" in project {req.project}" if req.project else ""
                    raise InvalidInput(f"no pending permission request '{rid}'{where}",
                                       "see the pending requests and their ids with `palot inbox`")
            chosen = [by_id[rid] for rid in dict.fromkeys(req.permission_ids)]
            what.append(f"ids {', '.join(req.permission_ids)}")
        if req.agent is not None:
            agent_id = self.palot.agents.resolve(req.agent)
            chosen = [i for i in chosen if i.agent_id == agent_id]
            what.append(f"agent {agent_id}")
        if req.tool is not None:
            if req.tool not in api.PERMISSION_TOOLS:
                raise InvalidInput(f"unknown tool '{req.tool}'", f"use one of: {', '.join(api.PERMISSION_TOOLS)}")
            chosen = [i for i in chosen if i.tool == req.tool]
            what.append(f"tool {req.tool}")
        if req.project:
            what.append(f"project {req.project}")
        if not chosen:
            raise InvalidState(f"no pending request matches {' and '.join(what)}", "see `palot inbox`")

        answered: list[api.InboxItem] = []
        failed: list[str] = []
        for item in chosen:
            rid = item.permission_id
            if rid in self._answering:  # a rule got to it during this batch
                continue
            interrupted = self._open.get(rid)
            if interrupted is not None and interrupted.interrupted:
                try:
                    await self._answer_interrupted(rid, interrupted, req.reply, "person", req.message)
                    answered.append(item)
                except PalotError as e:
                    failed.append(f"{rid}: {e.message}")
                continue
            self._answering.add(rid)
            self.palot.store.answer_permission(rid, req.reply, "person")  # OpenCode, which still lists it, decides
            self._drop(rid)
            try:
                await self.palot.agents.reply_permission(item.agent_id, req.reply, permission_id=rid,
                                                         message=req.message)
                answered.append(item)
            except PalotError as e:
                if any(a.agent_id == item.agent_id for a in answered) and not self._pending_on(item.agent_id, rid):
                    answered.append(item)  # a rejection of the agent's earlier request ended this one too
                else:
                    failed.append(f"{rid}: {e.message}")
            finally:
                self._answering.discard(rid)
        if failed:
            done = ", ".join(i.permission_id for i in answered) or "none"
            raise InvalidState(f"could not answer {len(failed)} request(s): {'; '.join(failed)} (answered: {done})",
                               "see what is still pending with `palot inbox`")
        return answered

    # --- housekeeping -------------------------------------------------------------------------

    def _agent(self, agent_id: str) -> api.Agent | None:
        try:
            agent = self.palot.agents.view(agent_id)
        except AgentNotFound:
            return None
        return None if agent.read_only else agent

    def _pending_on(self, agent_id: str, rid: str) -> bool:
        agent = self._agent(agent_id)
        return agent is not None and rid in {p.id for p in agent.permissions}

    def _drop(self, rid: str) -> None:
        p = self._open.pop(rid, None)
        if p is not None and p.timer is not None:
            p.timer.cancel()

    def _spawn(self, coro: Coroutine[Any, Any, Any]) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def close(self) -> None:
        for p in self._open.values():
            if p.timer is not None:
                p.timer.cancel()
        for handle in self._gone_checks.values():
            handle.cancel()
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
