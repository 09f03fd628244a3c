"""Live tracking: the hub's events turned into each agent's status, persisted and announced.

Owns :class:`Tracker`, the one place every OpenCode event is routed (to an agent, an external session, or
the file-edit router), and what follows from it: settling a status change into the store with an audit
entry, announcing the agent's view on the hub, discovering external sessions, resyncing from OpenCode
after a reconnect or a restart, and watching container and cloud environments that can fail their agent.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Iterable

from ..backends import RuntimeBackend
from ..errors import AgentNotFound, PalotError
from ..events import EventHub, make_event
from ..opencode import STREAM_CONNECTED, STREAM_DISCONNECTED, GlobalEvent, OpenCodeClient, Session
from ..opencode.models import Message
from ..store import AgentRecord, EnvironmentRecord, ProjectRecord, Store
from .activity import last_outcome
from .files import FileEdits
from .live import AGENT_REMOVED, LiveAgents, agent_event
from .models import AgentStatus
from .notices import current_notice, refresh_notice
from .status import INTERRUPTED, LiveState, derive_status, follow
from .views import AgentViews

#: How long a prompt this process sent may wait for its turn to start before a resync calls it interrupted.
TURN_START_GRACE = 60.0
#: How far an environment's clock may be behind this machine's when its message times are compared with ours.
CLOCK_SKEW = 5.0
#: Environment states in which its server is away on purpose, not lost (the cloud tier's).
RESTING = ("sleeping", "paused")
#: How long after losing an environment's stream its tier may take to see why (a killed container's exit).
LOST_GRACE = 15.0

log = logging.getLogger(__name__)

# A resync that could not read an agent tries again after 2, 4, 6, 8 s (OpenCode may still be starting).
_RESYNC_ATTEMPTS, _RESYNC_RETRY_S = 5, 2.0


class Tracker:
    """Keeps every agent's live state from the hub's events and says what changed."""

    def __init__(self, store: Store, hub: EventHub, backends: dict[str, RuntimeBackend],
                 client: Callable[[], OpenCodeClient], live: LiveAgents, views: AgentViews) -> None:
        self.store = store
        self.hub = hub
        self.backends = backends
        self._client = client
        self.live = live
        self.views = views
        self.files = FileEdits(store, hub, backends)
        self._resync_task: asyncio.Task[None] | None = None
        self._watchers: dict[str, asyncio.Task[None]] = {}
        hub.add_listener(self._on_event)
        hub.add_snapshot_provider(self._snapshot)

    # --- events -------------------------------------------------------------

    def _on_event(self, event: GlobalEvent) -> None:
        kind = event.type
        if kind.startswith("palot."):
            source = event.payload.properties.get("source")
            if kind == STREAM_CONNECTED and event.payload.properties.get("reconnects"):
                self._schedule_resync()
                if source:  # an environment's own server is back (a cloud one may have been restored)
                    self._environment_lost(str(source), lost=False)
            elif kind == STREAM_DISCONNECTED and source:
                self._environment_lost(str(source))
            return
        if kind == "file.edited":
            self.files.edited(event)
            return
        sid = event.session_id
        agent_id = self.live.agent_for_session(sid) if sid else None
        if agent_id is None:
            self._track_external(event)
            if sid in self.live.external:  # a session started elsewhere (the OpenCode TUI): its status, too
                if follow(self.live.external_states.setdefault(sid, LiveState()), event):
                    self._announce_external(sid)
            return
        if not follow(self.live.live_of(agent_id), event):
            return
        if kind == "session.idle":
            self._check_environment(agent_id)
        self.settle(agent_id)

    def _track_external(self, event: GlobalEvent) -> None:
        if event.type not in ("session.created", "session.updated", "session.deleted"):
            return
        project = self.live.project_paths.get(event.directory or "")
        info = event.payload.properties.get("info")
        if project is None or not isinstance(info, dict):
            return
        try:
            session = Session.model_validate(info)
        except ValueError:
            return
        if event.type == "session.deleted":
            if self.live.external.pop(session.id, None) is not None:
                self.hub.publish(make_event(AGENT_REMOVED, event.directory, agentID=session.id,
                                            sessionID=session.id))
        elif session.parentID is None and session.id not in self.live.by_session:
            new = session.id not in self.live.external
            self.live.external[session.id] = (session, project)
            # A session Palot itself just created is recorded a moment after OpenCode announces it: say
            # "a new external session" only once it is still unclaimed a little later.
            self._announce_external(session.id, delay=2.5 if new else 0.0)

    def _announce_external(self, session_id: str, delay: float = 0.0) -> None:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return

        def publish() -> None:
            found = self.live.external.get(session_id)
            if found is None:
                return
            if self.live.agent_for_session(session_id) is not None:  # one of Palot's own, after all
                self.live.external.pop(session_id, None)
                return
            self.hub.publish(agent_event(self.views.external_view(*found)))

        loop.call_later(delay, publish)

    # --- environments that fail their agent ---------------------------------

    def watch_environment(self, agent_id: str, env: EnvironmentRecord) -> None:
        """While a container agent runs, check its environment every few seconds (a command can be
        OOM-killed without its tool call ever returning)."""
        if env.type == "worktree" or agent_id in self._watchers:
            return

        async def watch() -> None:
            try:
                while True:
                    await asyncio.sleep(2.0)
                    live = self.live.states.get(agent_id)
                    if live is None or not (live.busy or live.prompt_pending) or live.env_error:
                        return
                    reason = await self.backends[env.type].failure(env)
                    if reason:
                        live.env_error = reason
                        self.settle(agent_id)
                        rec = self.store.get_agent(agent_id)
                        if rec.session_id:  # the turn cannot finish well: stop it
                            with contextlib.suppress(PalotError):
                                await self.backends[env.type].client_for(env).abort(rec.session_id, env.directory)
                        return
            finally:
                self._watchers.pop(agent_id, None)

        self._watchers[agent_id] = asyncio.get_running_loop().create_task(watch())

    def _environment_lost(self, env_id: str, *, lost: bool = True) -> None:
        """An environment's own server went away (or, not ``lost``, came back): find out why (out of memory,
        engine down) and say so."""
        for rec, env, _ in self.store.list_agents_with_environments(include_archived=False):
            if env is not None and env.id == env_id:
                self._check_environment(rec.id, lost=lost)

    def _check_environment(self, agent_id: str, *, lost: bool = False) -> None:
        """Ask the backend whether the environment failed the agent (e.g. out of memory), in the background."""
        rec = self.store.get_agent(agent_id)
        env = self.store.get_environment(rec.environment_id) if rec.environment_id else None
        if env is None or env.type == "worktree":
            return

        async def check() -> None:
            backend = self.backends[env.type]
            try:
                reason = await self._why_failed(backend, env, lost)
                live = self.live.live_of(agent_id)
                if reason and live.env_error is None:
                    live.env_error = reason
                    self.settle(agent_id)
                if await refresh_notice(self.store, backend, env.id):  # e.g. a cloud container restored after a crash
                    self.announce(agent_id)
            except PalotError as e:  # the tier cannot say now, or Palot closed meanwhile: the next check will
                log.info("could not check the environment of %s: %s", agent_id, e)

        asyncio.get_running_loop().create_task(check())

    @staticmethod
    async def _why_failed(backend: RuntimeBackend, env: EnvironmentRecord, lost: bool) -> str | None:
        """Why the environment failed its agent; with ``lost``, its server went away too, so something did."""
        reason = await backend.failure(env)
        if reason is not None or not lost:
            return reason
        # A tier that learns of a stop late (the cloud Worker: workerd sees a killed container's exit after its
        # stream ended) is asked again for a while; others answer now, as a container engine does.
        grace = LOST_GRACE if getattr(backend, "sees_stops_late", False) else 0.0
        state, deadline = await backend.status(env), time.monotonic() + grace
        while state == "running" and time.monotonic() < deadline:  # the tier may not have seen the exit yet
            await asyncio.sleep(1.0)
            if (reason := await backend.failure(env)) is not None:
                return reason
            state = await backend.status(env)
        if state in RESTING:
            return None  # a cloud environment asleep or paused: the next request (or resume) wakes it
        if state == "running" and await current_notice(backend, env):
            return None  # started again after its container stopped unexpectedly: its notice says what was lost
        return ("the environment's OpenCode server is unreachable; if its container stopped, "
                "archive the agent to keep its work, then spawn a new one")

    # --- settling and announcing --------------------------------------------

    def settle(self, agent_id: str) -> None:
        """Persist a status change (with an audit entry) and announce it on the hub."""
        live = self.live.states.get(agent_id)
        try:
            rec = self.store.get_agent(agent_id)
        except AgentNotFound:
            return
        if live is None:
            return
        status = derive_status(live, archived=rec.archived_at is not None)
        error = (live.env_error or live.error) if status == AgentStatus.FAILED else None
        if status.value == rec.status and error == rec.error and (live.tokens, live.cost) == (rec.tokens, rec.cost):
            return
        before = rec.status
        self.store.update_agent(agent_id, status=status.value, error=error, tokens=live.tokens, cost=live.cost)
        if status.value != before:
            self.store.audit("status", agent_id=agent_id, project_id=rec.project_id,
                             **{"from": before, "to": status.value, "error": error})
        self.announce(agent_id)

    def announce(self, agent_id: str) -> None:
        """Publish the agent's view, after the event being handled now."""
        # Deferred so subscribers see OpenCode's event before Palot's reaction to it.
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return
        loop.call_soon(self._publish_agent, agent_id)

    def _publish_agent(self, agent_id: str) -> None:
        try:
            agent = self.views.by_id(agent_id)
        except AgentNotFound:
            return
        self.hub.publish(agent_event(agent))

    def _snapshot(self) -> Iterable[GlobalEvent]:
        for agent in self.views.list(include_external=False):
            yield agent_event(agent)

    # --- resync -------------------------------------------------------------

    async def resync(self) -> None:
        """Re-read status, permissions and last outcome from OpenCode for agents that may have moved on.

        An agent that cannot be read yet (OpenCode still starting) keeps its state and is tried again in
        the background a little later."""
        if not await self._resync_pass():
            self._schedule_resync(retrying=True)

    async def _resync_pass(self) -> bool:
        """One resync of every unsettled agent; False if some could not be read."""
        unread = False
        by_dir: dict[str, list[tuple[AgentRecord, EnvironmentRecord]]] = {}
        for rec, env, _ in self.store.list_agents_with_environments(include_archived=False):
            if env is None or env.state != "active" or not rec.session_id:
                continue
            live = self.live.states.get(rec.id)
            if rec.status in ("running", "waiting", "provisioning") or (live and (live.busy or live.prompt_pending)):
                by_dir.setdefault(env.directory, []).append((rec, env))
        for directory, agents in by_dir.items():
            env0 = agents[0][1]
            client = self.backends[env0.type].client_for(env0)
            seen = {rec.id: self.live.live_of(rec.id).events for rec, _ in agents}
            try:
                statuses = await client.session_statuses(directory)
                perms = await client.permissions(directory)
            except PalotError as e:
                log.warning("could not resync %s: %s", directory, e)
                unread = True
                continue
            for rec, _env in agents:
                live = self.live.live_of(rec.id)
                if live.prompt_sending:  # e.g. waking a cloud environment: what was read may predate the prompt
                    unread = True
                    continue
                assert rec.session_id
                busy = rec.session_id in statuses
                asking = {p.id: p.model_dump() for p in perms if p.sessionID == rec.session_id}
                if not busy:
                    try:
                        msgs = await client.messages(rec.session_id, directory)
                    except PalotError as e:
                        # Unread is not "nothing happened": settling now would call an interrupted turn done.
                        log.info("could not read agent %s's conversation to resync it: %s", rec.id, e)
                        unread = True
                        continue
                    aborted, error, unfinished = last_outcome(msgs)
                    if live.events != seen[rec.id]:
                        continue  # an event came while this was read: it is newer than what was read
                    if not asking and _turn_starting(live, msgs, unfinished):
                        unread = True  # e.g. a woken cloud environment: the prompt is in, its turn not yet
                        continue
                    live.prompt_pending = False
                    live.aborted = aborted
                    live.error = error or (INTERRUPTED if unfinished and not asking else None)
                live.busy, live.permissions = busy, asking
                self.settle(rec.id)
        await self._discover_external()
        return not unread

    async def _discover_external(self) -> None:
        client = self._client()
        found: dict[str, tuple[Session, ProjectRecord]] = {}
        for project in self.store.list_projects():
            self.live.project_paths[project.path] = project
            try:
                sessions = await client.list_sessions(project.path)
            except PalotError as e:
                log.warning("could not list sessions of %s: %s", project.path, e)
                continue
            unmanaged = [s for s in sessions if s.id not in self.live.by_session]
            for s in unmanaged:
                found[s.id] = (s, project)
            if unmanaged:  # busy or waiting right now: the events that said so came before this process
                try:
                    busy = await client.session_statuses(project.path)
                    asking = await client.permissions(project.path)
                except PalotError as e:
                    log.info("could not read the status of %s's sessions: %s", project.path, e)
                    continue
                for s in unmanaged:
                    live = self.live.external_states.setdefault(s.id, LiveState())
                    live.busy = s.id in busy
                    live.permissions = {p.id: p.model_dump() for p in asking if p.sessionID == s.id}
        self.live.external = found
        self.live.external_states = {sid: live for sid, live in self.live.external_states.items() if sid in found}

    def _schedule_resync(self, *, retrying: bool = False) -> None:
        if self._resync_task is None or self._resync_task.done():
            self._resync_task = asyncio.get_running_loop().create_task(self._resync_until_read(retrying))

    async def _resync_until_read(self, retrying: bool) -> None:
        for attempt in range(1 if retrying else 0, _RESYNC_ATTEMPTS):
            if attempt:
                await asyncio.sleep(_RESYNC_RETRY_S * attempt)
            try:
                if await self._resync_pass():
                    return
            except Exception:  # a background task: its failure is logged, the next reconnect tries again
                log.exception("resync failed")
                return

    async def close(self) -> None:
        """Stop background work (a resync waiting to try again)."""
        if self._resync_task is not None and not self._resync_task.done():
            self._resync_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._resync_task


def _turn_starting(live: LiveState, messages: list[Message], unfinished: bool) -> bool:
    """Whether the session is idle only because the prompt this process just sent has not started its turn:
    the prompt is not stored yet (OpenCode answers before it stores it), or it is and its turn is unanswered or
    unfinished (statuses and messages are not read at one instant). Past the grace, it is not."""
    if not live.prompt_pending or time.monotonic() - live.prompted_at >= TURN_START_GRACE:
        return False
    landed = any(m.info.role == "user" and m.info.time.created / 1000 >= live.prompted_wall - CLOCK_SKEW
                 for m in messages)
    return unfinished or not landed
