"""The agent service: spawn, list, steer, review and retire agents across projects.

State lives in three places, each authoritative for one thing: the store
(what agents exist, where, and their last known status), OpenCode (sessions,
messages, permissions) and the event hub (what is happening now). The
service keeps a small live state per agent from the hub's events and derives
each agent's status from it.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import os
import re
import secrets
import shutil
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, Protocol

from .. import git, ports
from ..backends import EnvironmentSpec, RuntimeBackend
from ..errors import (
    AbortTimedOut,
    AgentNotFound,
    BranchExists,
    InvalidInput,
    InvalidState,
    OpenCodeHTTPError,
    PalotError,
    PullRequestFailed,
    ReadOnlyAgent,
    UnmergedWork,
)
from ..events import EventHub, event_source, make_event
from ..install import Progress, quiet
from ..opencode import STREAM_CONNECTED, STREAM_DISCONNECTED, GlobalEvent, Message, OpenCodeClient, PermissionRule, Session
from ..opencode.failures import error_sentence
from ..store import AgentRecord, EnvironmentRecord, ProjectRecord, Store
from .activity import build_activity, last_outcome, simplify_messages
from ..api import MigrationResult, permission_summary
from .models import (
    PERMISSION_MODES,
    ActivityItem,
    Agent,
    AgentDiff,
    AgentMessage,
    AgentStatus,
    EnvironmentStatus,
    EnvironmentView,
    FileChange,
    PermissionView,
    PullRequest,
    ReviewComment,
)
from . import review
from .status import INTERRUPTED, LiveState, derive_status

log = logging.getLogger(__name__)

#: Event Palot publishes on the hub whenever an agent's status or record changes.
AGENT_UPDATED = "palot.agent.updated"
#: Event Palot publishes when an agent is removed (destroyed).
AGENT_REMOVED = "palot.agent.removed"
#: Event Palot publishes when an agent edited a file: ``agentID``, ``path`` (relative to its environment's
#: root) and ``hostPath`` (the file on this machine). OpenCode's ``file.edited`` names only a path inside
#: the environment, and every container and cloud environment is ``/workspace``: front ends route by this.
AGENT_FILE = "palot.agent.file"


_PERMISSION_RULES: dict[str, list[PermissionRule]] = {
    "default": [],
    "ask": [
        PermissionRule(permission="edit", pattern="*", action="ask"),
        PermissionRule(permission="bash", pattern="*", action="ask"),
        PermissionRule(permission="webfetch", pattern="*", action="ask"),
    ],
    "auto": [PermissionRule(permission="*", pattern="*", action="allow")],
}
_REPLIES = ("once", "always", "reject")
# A resync that could not read an agent tries again after 2, 4, 6, 8 s (OpenCode may still be starting).
_RESYNC_ATTEMPTS, _RESYNC_RETRY_S = 5, 2.0
GH_TIMEOUT = 120.0
_SETTLED = {AgentStatus.COMPLETED, AgentStatus.FAILED, AgentStatus.PAUSED, AgentStatus.WAITING,
            AgentStatus.ARCHIVED}


def _slugify(text: str, limit: int = 32) -> str:
    words = re.sub(r"[^a-z0-9]+", " ", text.lower()).split()
    slug = ""
    for w in words:
        if len(slug) + len(w) + 1 > limit:
            break
        slug = f"{slug}-{w}" if slug else w
    return slug or "agent"


def _title_from(prompt: str) -> str:
    line = prompt.strip().splitlines()[0] if prompt.strip() else "agent"
    return line if len(line) <= 60 else line[:59] + "…"


def _patch_sha(patch: str) -> str:
    return hashlib.sha256(patch.encode("utf-8", "surrogateescape")).hexdigest()


def _agent_event(agent: Agent) -> GlobalEvent:
    # sessionID lets subscribers filtered to the agent's session receive it too.
    return make_event(AGENT_UPDATED, agent.environment.directory, agentID=agent.id, sessionID=agent.session_id,
                      agent=agent.model_dump(mode="json"))


_WHERE = {"worktree": "worktree", "container": "container", "cloud": "cloud environment"}


def _unavailable(env: EnvironmentRecord | None) -> str | None:
    """What can no longer be read about an agent whose environment is not active, and where its work is."""
    if env is None:
        return "the agent has no environment any more: its conversation and files are no longer available"
    if env.state == "active":
        return None
    kept = f"; its work is on branch {env.branch}" if env.branch else ""
    where = _WHERE.get(env.type, f"{env.type} environment")
    done = "archived" if env.state == "archived" else f"removed ({env.state})"
    if env.type == "worktree":  # the conversation stays on the shared OpenCode server
        return f"the agent's files are no longer on disk: its worktree was {done}{kept}"
    return f"the conversation is no longer available: the agent's {where} was {done}{kept}"


def _notice(text: str) -> ActivityItem:
    """The one activity line of an agent whose conversation cannot be read."""
    head, _, rest = text.partition(": ")
    return ActivityItem(index=0, id="palot-unavailable", time=time.time(), kind="notice", verb=head, summary=rest)


def _permission_views(live: LiveState) -> list[PermissionView]:
    return [
        PermissionView(id=pid, permission=str(p.get("permission", "")), patterns=list(p.get("patterns") or []),
                       summary=permission_summary(str(p.get("permission", "permission")),
                                                  list(p.get("patterns") or [])))
        for pid, p in live.permissions.items()
    ]


def _follow(live: LiveState, event: GlobalEvent) -> bool:
    """Update a session's live state from one OpenCode event; False if the event says nothing about it."""
    kind, props = event.type, event.payload.properties
    if kind == "session.status":
        st = (props.get("status") or {}).get("type")
        live.busy = st in ("busy", "retry")
        if live.busy:  # a turn runs: whatever ended the last one (an abort, an error) is over
            live.prompt_pending = live.aborted = False
            live.error = None
        else:
            live.permissions.clear()  # an idle session asks nothing (an abort answers no request)
    elif kind == "session.idle":
        live.busy = live.prompt_pending = False
        live.permissions.clear()
    elif kind == "session.error":
        err = props.get("error") or {}
        name = err.get("name", "Error")
        if name == "MessageAbortedError":
            live.aborted = True
        else:
            live.error = error_sentence(name, err.get("data"))
    elif kind == "permission.asked":
        live.permissions[str(props.get("id"))] = dict(props)
    elif kind == "permission.replied":
        live.permissions.pop(str(props.get("requestID")), None)
    elif kind == "session.updated":
        info = props.get("info") or {}
        tokens = info.get("tokens") or {}
        cache = tokens.get("cache") or {}
        live.tokens = int(sum(tokens.get(k, 0) or 0 for k in ("input", "output", "reasoning"))
                          + (cache.get("read", 0) or 0) + (cache.get("write", 0) or 0))
        live.cost = float(info.get("cost") or 0)
    else:
        return False
    return True


class Mover(Protocol):
    """What moves agents (:class:`palot.migration.MigrationEngine`), wired in by :class:`palot.Palot`."""

    async def move(self, agent_ref: str, target: str, *, options: dict[str, Any] | None = None,
                   resume: bool | None = None, progress: Progress = quiet) -> MigrationResult: ...


class AgentService:
    """Every agent action, for every front end."""

    def __init__(
        self,
        store: Store,
        hub: EventHub,
        backends: dict[str, RuntimeBackend],
        client: Callable[[], OpenCodeClient],
    ) -> None:
        self.store = store
        self.hub = hub
        self.backends = backends
        self._client = client
        self._live: dict[str, LiveState] = {}
        self._by_session: dict[str, str] = {}
        self._external: dict[str, tuple[Session, ProjectRecord]] = {}
        self._external_live: dict[str, LiveState] = {}  # by session id, derived like an agent's
        self._project_paths: dict[str, ProjectRecord] = {}
        self._resync_task: asyncio.Task[None] | None = None
        self._watchers: dict[str, asyncio.Task[None]] = {}
        self._unknown_sessions: dict[str, float] = {}
        self._views: dict[str, tuple[tuple[Any, ...], Agent]] = {}
        # Where file events come from → (agent id, environment id): an environment id (container and cloud
        # servers are event sources of their own) or a worktree's directory (the shared server's events).
        self._file_owners: dict[str, tuple[str, str]] = {}
        self._file_owner_misses: dict[str, float] = {}  # places that belonged to no agent, when last looked
        self.mover: Mover | None = None  # the migration engine, set by Palot
        self._reserved: set[tuple[str, str]] = set()  # (repository, branch) chosen by spawns in progress
        # Dev-server ports: where ranges start and how many each agent gets (settings.toml [ports]), the
        # ranges of spawns in progress, and the file the shared server's plugin reads (set by Palot).
        self.port_base, self.ports_per_agent = ports.DEFAULT_BASE, ports.DEFAULT_PER_AGENT
        self._ports_reserved: list[ports.PortRange] = []
        self.env_map: Path | None = None
        for rec in store.list_agents():
            if rec.session_id:
                self._by_session[rec.session_id] = rec.id
        for project in store.list_projects():
            self._project_paths[project.path] = project
        hub.add_listener(self._on_event)
        hub.add_snapshot_provider(self._snapshot)

    # --- lifecycle ----------------------------------------------------------

    async def start(self) -> None:
        """Bring every unfinished agent's status up to date and discover external sessions."""
        self.write_env_map()
        await self.resync()

    # --- dev-server ports ---------------------------------------------------

    def _live_port_ranges(self) -> list[ports.PortRange]:
        """The ranges live environments hold (a move's target holds its agent's range too)."""
        held = [ports.PortRange.from_data(env.data) for env in self.store.list_environments()
                if env.state in ("active", "migrating")]
        return [r for r in held if r is not None] + self._ports_reserved

    def _allocate_ports(self) -> ports.PortRange:
        """A range of dev-server ports no live agent holds; reserved until its environment is recorded."""
        chosen = ports.allocate(self._live_port_ranges(), base=self.port_base, per_agent=self.ports_per_agent)
        self._ports_reserved.append(chosen)
        return chosen

    @property
    def spawning(self) -> bool:
        """A spawn is in progress: its environment exists before its record does."""
        return bool(self._reserved)

    def reserved_branches(self) -> set[tuple[str, str]]:
        """(repository, branch) of the spawns in progress: their branches have no record yet."""
        return set(self._reserved)

    def write_env_map(self) -> None:
        """Tell the shared server's plugin each worktree agent's own variables (keyed by its directory)."""
        if self.env_map is None:
            return
        envs: dict[str, dict[str, str]] = {}
        for env in self.store.list_environments(state="active"):
            held = ports.PortRange.from_data(env.data)
            if env.type == "worktree" and held is not None:
                envs[env.directory] = held.env()
        ports.write_env_map(self.env_map, envs)

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
            live = self._live.get(rec.id)
            if rec.status in ("running", "waiting", "provisioning") or (live and (live.busy or live.prompt_pending)):
                by_dir.setdefault(env.directory, []).append((rec, env))
        for directory, agents in by_dir.items():
            env0 = agents[0][1]
            client = self.backends[env0.type].client_for(env0)
            try:
                statuses = await client.session_statuses(directory)
                perms = await client.permissions(directory)
            except PalotError as e:
                log.warning("could not resync %s: %s", directory, e)
                unread = True
                continue
            for rec, _env in agents:
                live = self._live_of(rec.id)
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
                    live.prompt_pending = False
                    live.aborted = aborted
                    live.error = error or (INTERRUPTED if unfinished and not asking else None)
                live.busy, live.permissions = busy, asking
                self._settle(rec.id)
        await self._discover_external()
        return not unread

    async def _discover_external(self) -> None:
        client = self._client()
        found: dict[str, tuple[Session, ProjectRecord]] = {}
        for project in self.store.list_projects():
            self._project_paths[project.path] = project
            try:
                sessions = await client.list_sessions(project.path)
            except PalotError as e:
                log.warning("could not list sessions of %s: %s", project.path, e)
                continue
            unmanaged = [s for s in sessions if s.id not in self._by_session]
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
                    live = self._external_live.setdefault(s.id, LiveState())
                    live.busy = s.id in busy
                    live.permissions = {p.id: p.model_dump() for p in asking if p.sessionID == s.id}
        self._external = found
        self._external_live = {sid: live for sid, live in self._external_live.items() if sid in found}

    # --- events -------------------------------------------------------------

    def _on_event(self, event: GlobalEvent) -> None:
        kind = event.type
        if kind.startswith("palot."):
            source = event.payload.properties.get("source")
            if kind == STREAM_CONNECTED and event.payload.properties.get("reconnects"):
                self._schedule_resync()
            elif kind == STREAM_DISCONNECTED and source:
                self._environment_lost(str(source))
            return
        if kind == "file.edited":
            self._file_edited(event)
            return
        sid = event.session_id
        agent_id = self.agent_for_session(sid) if sid else None
        if agent_id is None:
            self._track_external(event)
            if sid in self._external:  # a session started elsewhere (the OpenCode TUI): its status, too
                if _follow(self._external_live.setdefault(sid, LiveState()), event):
                    self._announce_external(sid)
            return
        if not _follow(self._live_of(agent_id), event):
            return
        if kind == "session.idle":
            self._check_environment(agent_id)
        self._settle(agent_id)

    def agent_for_session(self, session_id: str) -> str | None:
        """The agent of a session, including agents another Palot process (CLI, MCP, editor) spawned."""
        agent_id = self._by_session.get(session_id)
        if agent_id is not None:
            return agent_id
        now = time.monotonic()
        # Look in the store at most every 2 s per unknown session (external sessions stay unknown;
        # a new agent's session id is recorded a moment after OpenCode announces the session).
        if now - self._unknown_sessions.get(session_id, 0.0) < 2.0:
            return None
        rec = self.store.find_agent_by_session(session_id)
        if rec is None:
            self._unknown_sessions[session_id] = now
            return None
        self._unknown_sessions.pop(session_id, None)
        self._by_session[session_id] = rec.id
        self._external.pop(session_id, None)
        return rec.id

    def _file_edited(self, event: GlobalEvent) -> None:
        """Say which agent edited which file (``palot.agent.file``), from the environment the event came from."""
        file = event.payload.properties.get("file")
        found = self._file_owner(event)
        if not isinstance(file, str) or found is None:
            return
        rec, env = found
        root = os.path.normpath(env.directory)
        path = os.path.normpath(os.path.join(root, file))
        if not path.startswith(root + os.sep):
            return  # outside the agent's working directory
        rel = os.path.relpath(path, root).replace(os.sep, "/")
        try:
            host = self.backends[env.type].host_path(env) / rel
        except (KeyError, PalotError):
            return
        # Deferred, like agent updates, so subscribers see OpenCode's event before Palot's reading of it.
        self._defer(make_event(AGENT_FILE, env.directory, agentID=rec.id, sessionID=rec.session_id, path=rel,
                               hostPath=str(host)))

    def _file_owner(self, event: GlobalEvent) -> tuple[AgentRecord, EnvironmentRecord] | None:
        # The shared server may name a worktree by its resolved path (symlinks in the data dir's path).
        key = event_source(event) or (os.path.realpath(event.directory) if event.directory else None)
        if not key:
            return None
        found = self._active_owner(key)
        if found is None:
            # A new or moved agent (perhaps spawned by another Palot process): read who owns what again, but
            # at most every 2 s for a place that belongs to no agent (a session Palot did not start).
            now = time.monotonic()
            if now - self._file_owner_misses.get(key, 0.0) < 2.0:
                return None
            self._file_owners = {}
            for rec, env, _ in self.store.list_agents_with_environments(include_archived=False):
                if env is not None and env.state == "active":
                    self._file_owners[env.id] = (rec.id, env.id)
                    if env.type == "worktree":
                        self._file_owners[os.path.realpath(env.directory)] = (rec.id, env.id)
            found = self._active_owner(key)
            if found is None:
                self._file_owner_misses[key] = now
                return None
        self._file_owner_misses.pop(key, None)
        return found

    def _active_owner(self, key: str) -> tuple[AgentRecord, EnvironmentRecord] | None:
        owner = self._file_owners.get(key)
        if owner is None:
            return None
        agent_id, env_id = owner
        try:
            rec = self.store.get_agent(agent_id)
        except AgentNotFound:
            return None
        env = self.store.get_environment(env_id) if rec.environment_id == env_id else None
        return (rec, env) if env is not None and env.state == "active" else None

    def _defer(self, event: GlobalEvent) -> None:
        try:
            asyncio.get_running_loop().call_soon(self.hub.publish, event)
        except RuntimeError:
            pass

    def _track_external(self, event: GlobalEvent) -> None:
        if event.type not in ("session.created", "session.updated", "session.deleted"):
            return
        project = self._project_paths.get(event.directory or "")
        info = event.payload.properties.get("info")
        if project is None or not isinstance(info, dict):
            return
        try:
            session = Session.model_validate(info)
        except ValueError:
            return
        if event.type == "session.deleted":
            if self._external.pop(session.id, None) is not None:
                self.hub.publish(make_event(AGENT_REMOVED, event.directory, agentID=session.id,
                                            sessionID=session.id))
        elif session.parentID is None and session.id not in self._by_session:
            new = session.id not in self._external
            self._external[session.id] = (session, project)
            # A session Palot itself just created is recorded a moment after OpenCode announces it: say
            # "a new external session" only once it is still unclaimed a little later.
            self._announce_external(session.id, delay=2.5 if new else 0.0)

    def _announce_external(self, session_id: str, delay: float = 0.0) -> None:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return

        def publish() -> None:
            found = self._external.get(session_id)
            if found is None:
                return
            if self.agent_for_session(session_id) is not None:  # one of Palot's own, after all
                self._external.pop(session_id, None)
                return
            self.hub.publish(_agent_event(self._external_view(*found)))

        loop.call_later(delay, publish)

    def _watch_environment(self, agent_id: str, env: EnvironmentRecord) -> None:
        """While a container agent runs, check its environment every few seconds (a command can be
        OOM-killed without its tool call ever returning)."""
        if env.type == "worktree" or agent_id in self._watchers:
            return

        async def watch() -> None:
            try:
                while True:
                    await asyncio.sleep(2.0)
                    live = self._live.get(agent_id)
                    if live is None or not (live.busy or live.prompt_pending) or live.env_error:
                        return
                    reason = await self.backends[env.type].failure(env)
                    if reason:
                        live.env_error = reason
                        self._settle(agent_id)
                        rec = self.store.get_agent(agent_id)
                        if rec.session_id:  # the turn cannot finish well: stop it
                            with contextlib.suppress(PalotError):
                                await self.backends[env.type].client_for(env).abort(rec.session_id, env.directory)
                        return
            finally:
                self._watchers.pop(agent_id, None)

        self._watchers[agent_id] = asyncio.get_running_loop().create_task(watch())

    def _environment_lost(self, env_id: str) -> None:
        """An environment's own server went away: find out why (out of memory, engine down) and say so."""
        for rec, env, _ in self.store.list_agents_with_environments(include_archived=False):
            if env is not None and env.id == env_id:
                self._check_environment(rec.id, lost=True)

    def _check_environment(self, agent_id: str, *, lost: bool = False) -> None:
        """Ask the backend whether the environment failed the agent (e.g. out of memory), in the background."""
        rec = self.store.get_agent(agent_id)
        env = self.store.get_environment(rec.environment_id) if rec.environment_id else None
        if env is None or env.type == "worktree":
            return

        async def check() -> None:
            reason = await self.backends[env.type].failure(env)
            if reason is None and lost:
                reason = ("the environment's OpenCode server is unreachable; if its container stopped, "
                          "archive the agent to keep its work, then spawn a new one")
            live = self._live_of(agent_id)
            if reason and live.env_error is None:
                live.env_error = reason
                self._settle(agent_id)

        asyncio.get_running_loop().create_task(check())

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

    def _live_of(self, agent_id: str) -> LiveState:
        """The agent's live state. The first one in this process is seeded from the store, so an agent that
        was paused (e.g. at its budget) or failed stays so after a restart until OpenCode says otherwise."""
        live = self._live.get(agent_id)
        if live is None:
            rec = self.store.get_agent(agent_id)
            live = self._live[agent_id] = LiveState(
                tokens=rec.tokens, cost=rec.cost, aborted=rec.status == AgentStatus.PAUSED.value,
                error=rec.error if rec.status == AgentStatus.FAILED.value else None)
        return live

    def _settle(self, agent_id: str) -> None:
        """Persist a status change (with an audit entry) and announce it on the hub."""
        live = self._live.get(agent_id)
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
        self._announce(agent_id)

    def _announce(self, agent_id: str) -> None:
        # Deferred so subscribers see OpenCode's event before Palot's reaction to it.
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return
        loop.call_soon(self._publish_agent, agent_id)

    def _publish_agent(self, agent_id: str) -> None:
        try:
            agent = self._view_by_id(agent_id)
        except AgentNotFound:
            return
        self.hub.publish(_agent_event(agent))

    def _snapshot(self) -> Iterable[GlobalEvent]:
        for agent in self.list(include_external=False):
            yield _agent_event(agent)

    # --- views --------------------------------------------------------------

    def _view(self, rec: AgentRecord, env: EnvironmentRecord | None, project: ProjectRecord) -> Agent:
        live = self._live.get(rec.id)
        # Views are rebuilt only when something they show changed (listing a thousand agents stays cheap).
        key = (rec.updated_at, rec.status, rec.error, rec.tokens, rec.cost, rec.archived_at,
               (env.id, env.state, env.directory, env.branch) if env else None, project.name,
               None if live is None else (live.busy, live.prompt_pending, live.aborted, live.error, live.env_error,
                                          tuple(live.permissions), live.tokens, live.cost, live.provisioning,
                                          live.migrating))
        cached = self._views.get(rec.id)
        if cached is not None and cached[0] == key:
            return cached[1]
        view = self._build_view(rec, env, project, live)
        self._views[rec.id] = (key, view)
        return view

    def _build_view(
        self, rec: AgentRecord, env: EnvironmentRecord | None, project: ProjectRecord, live: LiveState | None
    ) -> Agent:
        if live is not None:
            status = derive_status(live, archived=rec.archived_at is not None)
            permissions = _permission_views(live)
            error = (live.env_error or live.error) if status == AgentStatus.FAILED else None
            tokens, cost = max(live.tokens, rec.tokens), max(live.cost, rec.cost)
        else:
            status, permissions, error, tokens, cost = AgentStatus(rec.status), [], rec.error, rec.tokens, rec.cost
        environment = EnvironmentView(
            id=env.id if env else None, type=env.type if env else "none",
            directory=env.directory if env else project.path,
            branch=env.branch if env else None, base_commit=env.base_commit if env else None,
            host_path=self._host_path(env), unavailable=_unavailable(env),
        )
        return Agent(
            id=rec.id, title=rec.title, status=status, project_id=project.id, project_path=project.path,
            project_name=project.name, environment=environment, session_id=rec.session_id, prompt=rec.prompt,
            model=rec.model, permission_mode=rec.permission_mode, error=error, permissions=permissions,
            tokens=tokens, cost=cost, created_at=rec.created_at, updated_at=rec.updated_at,
            environment_cost=rec.environment_cost, budget_usd=rec.budget_usd, budget_tokens=rec.budget_tokens,
            pause_reason=rec.pause_reason if status == AgentStatus.PAUSED else None,
        )

    def _external_view(self, session: Session, project: ProjectRecord) -> Agent:
        live = self._external_live.get(session.id) or LiveState()
        status = derive_status(live, archived=False)
        return Agent(
            id=session.id, title=session.title or session.id, status=status,
            error=live.error if status == AgentStatus.FAILED else None, permissions=_permission_views(live),
            project_id=project.id, project_path=project.path, project_name=project.name,
            environment=EnvironmentView(id=None, type="external", directory=session.directory,
                                        host_path=session.directory),
            session_id=session.id, tokens=session.tokens.total, cost=session.cost,
            created_at=session.time.created / 1000, updated_at=session.time.updated / 1000, read_only=True,
        )

    def _host_path(self, env: EnvironmentRecord | None) -> str | None:
        """Where the environment's files are on this machine, while it has them."""
        backend = self.backends.get(env.type) if env is not None else None
        if env is None or backend is None or env.state != "active":
            return None
        try:
            return str(backend.host_path(env))
        except (KeyError, PalotError):  # a record without its tier's data (made by an older Palot)
            return None

    def _view_by_id(self, agent_id: str) -> Agent:
        rec = self.store.get_agent(agent_id)
        env = self.store.get_environment(rec.environment_id) if rec.environment_id else None
        project = self.store.get_project(rec.project_id)
        assert project is not None
        return self._view(rec, env, project)

    def view(self, agent_ref: str) -> Agent:
        """The agent's view as Palot knows it now (no call to OpenCode)."""
        return self._view_by_id(self.resolve(agent_ref))

    def resolve(self, agent_ref: str) -> str:
        """An agent id from an id, a unique id prefix, or the agent's branch."""
        ref = (agent_ref or "").strip()
        if not ref:
            raise InvalidInput("no agent id given", "pass an agent id from `palot agents list`")
        if ref in self._external:
            return ref
        try:
            return self.store.get_agent(ref).id
        except AgentNotFound:
            pass
        matches = [
            a.id for a, env, _ in self.store.list_agents_with_environments()
            if a.id.startswith(ref) or (env is not None and env.branch in (ref, f"palot/{ref}"))
        ]
        matches += [sid for sid in self._external if sid.startswith(ref)]
        if len(matches) == 1:
            return matches[0]
        if len(matches) > 1:
            raise InvalidInput(f"'{ref}' matches {len(matches)} agents: {', '.join(matches[:5])}",
                               "give more of the agent id")
        raise AgentNotFound(f"no agent '{ref}'", "run `palot agents list` to see agent ids")

    def list(
        self,
        *,
        project: str | None = None,
        status: str | list[str] | None = None,
        environment: str | None = None,
        include_archived: bool = False,
        include_external: bool = True,
    ) -> list[Agent]:
        """Agents across all projects, newest first, filtered by project (path, name or id), status, environment."""
        project_id = self._project_filter(project)
        statuses = {status} if isinstance(status, str) else set(status) if status else None
        for s in statuses or ():
            if s not in {st.value for st in AgentStatus}:
                raise InvalidInput(f"unknown status '{s}'",
                                   f"use one of: {', '.join(st.value for st in AgentStatus)}")
        rows = self.store.list_agents_with_environments(project_id=project_id, include_archived=include_archived)
        agents = [self._view(rec, env, proj) for rec, env, proj in rows]
        if include_external and environment in (None, "external"):
            agents += [self._external_view(s, p) for s, p in self._external.values()
                       if project_id is None or p.id == project_id]
        if statuses:
            agents = [a for a in agents if a.status.value in statuses]
        if environment:
            agents = [a for a in agents if a.environment.type == environment]
        agents.sort(key=lambda a: a.created_at, reverse=True)
        return agents

    def _project_filter(self, project: str | None) -> str | None:
        if not project:
            return None
        for rec in self.store.list_projects():
            if project in (rec.id, rec.name, rec.path) or str(Path(project).expanduser().resolve()) == rec.path:
                return rec.id
        raise InvalidInput(f"unknown project '{project}'",
                           "pass a project's path, name or id; spawning an agent in a repository adds it")

    async def get(self, agent_ref: str) -> Agent:
        """One agent, with tokens and cost fresh from OpenCode."""
        agent_id = self.resolve(agent_ref)
        if agent_id in self._external:
            session, project = self._external[agent_id]
            return self._external_view(session, project)
        agent = self._view_by_id(agent_id)
        if agent.session_id and agent.status != AgentStatus.ARCHIVED and agent.environment.unavailable is None:
            try:
                _, env = self.managed(agent_id, "read")
                session = await self.backends[env.type].client_for(env).get_session(agent.session_id, env.directory)
                live = self._live_of(agent_id)
                live.tokens, live.cost = session.tokens.total, session.cost
                agent = agent.model_copy(update={"tokens": live.tokens, "cost": live.cost})
            except PalotError as e:
                log.info("could not refresh usage of %s: %s", agent_id, e)
        return agent

    # --- spawning -----------------------------------------------------------

    async def spawn(
        self,
        project: str | Path,
        prompt: str,
        *,
        title: str | None = None,
        model: str | None = None,
        base_branch: str | None = None,
        branch: str | None = None,
        setup_script: str | None = None,
        permission_mode: str = "default",
        environment: str = "worktree",
        options: dict[str, Any] | None = None,
        budget_usd: float | None = None,
        budget_tokens: int | None = None,
        template: str | None = None,
        progress: Progress = quiet,
    ) -> Agent:
        """Create an environment on a new branch, a session in it, and send the prompt (asynchronously).

        Everything is validated before anything is created, so bad input changes nothing.
        ``options`` are the environment tier's (container: memory, cpus, pids, network, ports); ``template``
        names the template the prompt was filled from (for the audit log).
        """
        if not isinstance(prompt, str) or not prompt.strip():
            raise InvalidInput("the prompt is empty", "say what the agent should work on")
        if permission_mode not in PERMISSION_MODES:
            raise InvalidInput(f"unknown permission mode '{permission_mode}'",
                               f"use one of: {', '.join(PERMISSION_MODES)}")
        backend = self.backends.get(environment)
        if backend is None:
            raise InvalidInput(f"environment '{environment}' is not available",
                               f"use one of: {', '.join(self.backends)}")
        if options and environment == "worktree":
            raise InvalidInput("environment options (memory, cpus, network, ports …) apply to containers only",
                               "drop them, or spawn with environment 'container'")
        if (budget_usd is not None and budget_usd <= 0) or (budget_tokens is not None and budget_tokens <= 0):
            raise InvalidInput("a budget must be more than zero", "e.g. --budget-usd 0.50 or --budget-tokens 200000")
        if model is not None and not re.fullmatch(r"[^/\s]+/\S+", model):
            raise InvalidInput(f"model '{model}' is not of the form provider/model",
                               "e.g. anthropic/claude-sonnet-4-5, as in your OpenCode config")
        root = await git.repo_root(project)
        base_commit = await git.resolve_commit(root, base_branch or "HEAD")
        if model is not None:  # the shared server has the user's providers, as every environment does
            await self.check_model(model, self._client(), root)
        title = (title or "").strip() or _title_from(prompt)
        if branch:
            await git.validate_branch_name(branch)
            if (str(root), branch) in self._reserved or await git.branch_exists(root, branch):
                raise BranchExists(f"branch '{branch}' already exists in {root}",
                                   "choose another branch name, or omit it and Palot picks a free one")
        else:
            branch = await self._free_branch(root, _slugify(title))

        project_rec = self.store.upsert_project(str(root), root.name)
        self._project_paths[project_rec.path] = project_rec
        progress(f"creating {environment} on branch {branch} from {base_commit[:8]}")
        # Reserved until the branch exists: spawns at once with one title must not pick the same branch.
        self._reserved.add((str(root), branch))
        dev_ports = self._allocate_ports()
        try:
            env = await backend.provision(EnvironmentSpec(
                project_path=root, project_id=project_rec.id, project_name=project_rec.name,
                branch=branch, base_commit=base_commit, setup_script=setup_script, options=options,
                dev_ports=dev_ports,
            ))
            data = dict(env.data)
            if setup_script:  # kept so a move can run it again in the new environment
                data["setup_script"] = setup_script
            env = env.model_copy(update={"data": data})
            self.store.add_environment(env)
        finally:
            self._reserved.discard((str(root), branch))
            self._ports_reserved.remove(dev_ports)
        self.write_env_map()
        now = time.time()
        agent_id = "ag_" + secrets.token_hex(4)
        rec = AgentRecord(
            id=agent_id, project_id=project_rec.id, environment_id=env.id, session_id=None, title=title,
            prompt=prompt, model=model, permission_mode=permission_mode, status=AgentStatus.PROVISIONING.value,
            error=None, created_at=now, updated_at=now, budget_usd=budget_usd, budget_tokens=budget_tokens,
        )
        self.store.add_agent(rec)
        self.store.audit("spawned", agent_id=agent_id, project_id=project_rec.id, environment=environment,
                         branch=branch, base_commit=base_commit, directory=env.directory, title=title,
                         **({"template": template} if template else {}))
        live = self._live[agent_id] = LiveState(provisioning=True)
        try:
            progress("creating the OpenCode session")
            client = backend.client_for(env)
            session = await client.create_session(env.directory, title=title,
                                                  permission=_PERMISSION_RULES[permission_mode])
            self._by_session[session.id] = agent_id
            self.store.update_agent(agent_id, session_id=session.id)
            live.provisioning, live.prompt_pending = False, True
            progress("sending the prompt")
            await client.prompt_async(session.id, env.directory, prompt, model=model)
            self._watch_environment(agent_id, env)
        except PalotError as e:
            live.provisioning = live.prompt_pending = False
            live.error = f"could not start: {e}"
            self._settle(agent_id)
            raise
        self._settle(agent_id)
        return self._view_by_id(agent_id)

    async def models(self, project: str | Path | None = None) -> list[str]:
        """The ``provider/model`` names agents can use in ``project`` (your OpenCode config and the project's)."""
        directory = Path(project).expanduser().resolve() if project else Path.cwd()
        if not directory.is_dir():
            raise InvalidInput(f"{directory} is not a directory", "pass a project's path")
        return await self._client().models(str(directory))

    @staticmethod
    async def check_model(model: str, client: OpenCodeClient, directory: Path | str) -> None:
        """Refuse a model the server does not know for ``directory``, naming the ones it does."""
        known = await client.models(str(directory))
        if model not in known:
            shown = ", ".join(known[:20]) + (f" (and {len(known) - 20} more)" if len(known) > 20 else "")
            raise InvalidInput(
                f"model '{model}' is not configured in OpenCode for {directory}",
                f"use one of: {shown}" if known else "add a provider to your OpenCode config (`opencode auth login`)",
            )

    async def _free_branch(self, root: Path, slug: str) -> str:
        for n in range(1, 1000):
            candidate = f"palot/{slug}" if n == 1 else f"palot/{slug}-{n}"
            # Checked after the await: another spawn may have taken it meanwhile (it reserves it at once).
            if not await git.branch_exists(root, candidate) and (str(root), candidate) not in self._reserved:
                self._reserved.add((str(root), candidate))
                return candidate
        return f"palot/{slug}-{secrets.token_hex(3)}"

    # --- steering -----------------------------------------------------------

    def managed(self, agent_ref: str, action: str) -> tuple[AgentRecord, EnvironmentRecord]:
        """The agent's record and environment, for ``action``; refused for sessions Palot did not start."""
        agent_id = self.resolve(agent_ref)
        if agent_id in self._external:
            raise ReadOnlyAgent(
                f"agent {agent_id} is an OpenCode session Palot did not start, so it cannot {action} it",
                "spawn a Palot agent for this work (`palot agents spawn`), or use OpenCode directly",
            )
        rec = self.store.get_agent(agent_id)
        env = self.store.get_environment(rec.environment_id) if rec.environment_id else None
        if env is None:
            raise InvalidState(f"agent {agent_id} has no environment", "destroy it and spawn a new one")
        return rec, env

    def _active(self, agent_ref: str, action: str) -> tuple[AgentRecord, EnvironmentRecord]:
        rec, env = self.managed(agent_ref, action)
        if rec.archived_at is not None or env.state != "active":
            raise InvalidState(
                f"agent {rec.id} is archived, so Palot cannot {action} it",
                f"its work is kept on branch {env.branch}; spawn a new agent with --base-branch {env.branch}",
            )
        if not rec.session_id:
            raise InvalidState(f"agent {rec.id} has no OpenCode session", "destroy it and spawn a new one")
        self._not_moving(rec, action)
        return rec, env

    def _not_moving(self, rec: AgentRecord, action: str) -> None:
        live = self._live.get(rec.id)
        if (live is not None and live.migrating) or rec.status == AgentStatus.MIGRATING.value:
            raise InvalidState(f"agent {rec.id} is moving to another environment, so Palot cannot {action} it now",
                               f"wait for the move to finish (`palot agents wait {rec.id}`)")

    async def prompt(self, agent_ref: str, text: str, *, model: str | None = None) -> Agent:
        """Send the agent another prompt (request changes, answer a question, resume after abort)."""
        if not isinstance(text, str) or not text.strip():
            raise InvalidInput("the prompt is empty", "say what the agent should do next")
        rec, env = self._active(agent_ref, "prompt")
        client = self.backends[env.type].client_for(env)
        if model is not None:
            await self.check_model(model, client, env.directory)
        live = self._live_of(rec.id)
        live.aborted, live.error, live.env_error, live.prompt_pending = False, None, None, True
        assert rec.session_id
        try:
            await client.prompt_async(rec.session_id, env.directory, text, model=model or rec.model)
        except PalotError:
            live.prompt_pending = False
            raise
        self._watch_environment(rec.id, env)
        if rec.pause_reason is not None:
            self.store.update_agent(rec.id, pause_reason=None)
        self.store.audit("prompted", agent_id=rec.id, project_id=rec.project_id, chars=len(text))
        self._settle(rec.id)
        return self._view_by_id(rec.id)

    async def abort(self, agent_ref: str, *, reason: str | None = None) -> Agent:
        """Stop the agent's current turn; it is paused until prompted again. ``reason``: why Palot paused it
        (a policy, e.g. its budget), shown with the paused status until the next prompt."""
        rec, env = self._active(agent_ref, "abort")
        assert rec.session_id
        live = self._live_of(rec.id)
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
        self._settle(rec.id)
        self._announce(rec.id)
        return self._view_by_id(rec.id)

    def set_budget(self, agent_ref: str, *, usd: float | None = None, tokens: int | None = None) -> Agent:
        """Set the agent's own budget (either limit left out stays as it was)."""
        agent_id = self.resolve(agent_ref)
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
        self._announce(agent_id)
        return self._view_by_id(agent_id)

    def announce(self, agent_id: str) -> None:
        """Publish the agent's view again (a policy changed something it shows)."""
        self._announce(agent_id)

    async def reply_permission(
        self, agent_ref: str, reply: str, *, permission_id: str | None = None, message: str | None = None
    ) -> Agent:
        """Answer a pending permission request: ``once``, ``always`` or ``reject``.

        Rejecting ends the agent's turn, so the agent is then paused until prompted again.
        """
        if reply not in _REPLIES:
            raise InvalidInput(f"unknown reply '{reply}'", f"use one of: {', '.join(_REPLIES)}")
        rec, env = self._active(agent_ref, "answer permissions for")
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
        live = self._live_of(rec.id)
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
        self._settle(rec.id)
        return self._view_by_id(rec.id)

    async def wait(
        self, agent_ref: str, *, timeout: float = 300.0, until: Iterable[AgentStatus] | None = None
    ) -> Agent:
        """Block until the agent settles (completed, failed, paused, waiting, archived) or ``timeout``."""
        agent_id = self.resolve(agent_ref)
        targets = set(until) if until is not None else _SETTLED
        with self.hub.subscribe(types=[AGENT_UPDATED], replay=False) as sub:
            agent = self._view_by_id(agent_id)
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
                agent = self._view_by_id(agent_id)
        return agent

    # --- reading ------------------------------------------------------------

    async def _session_messages(self, agent_id: str) -> tuple[list[Message], str | None, str | None]:
        """The agent's messages, the directory its tool paths are relative to, and why the conversation
        cannot be read when it cannot (then there are no messages)."""
        if agent_id in self._external:
            session, _ = self._external[agent_id]
            return await self._client().messages(session.id, session.directory), session.directory, None
        rec = self.store.get_agent(agent_id)
        env = self.store.get_environment(rec.environment_id) if rec.environment_id else None
        if env is None or not rec.session_id:
            return [], env.directory if env else None, _unavailable(env)
        gone = _unavailable(env) if env.type != "worktree" else None
        if gone:
            return [], env.directory, gone
        try:
            client = self.backends[env.type].client_for(env)
            return await client.messages(rec.session_id, env.directory), env.directory, None
        except OpenCodeHTTPError as e:
            if e.status == 404:
                return [], env.directory, None
            raise
        except (OSError, KeyError) as e:  # the environment's files (credentials) are gone
            raise InvalidState(f"the conversation of agent {rec.id} cannot be read: its environment is incomplete "
                               f"({type(e).__name__}: {e})",
                               f"archive the agent to keep its work on branch {env.branch}") from e

    async def _readable_messages(self, agent_id: str, first_look: bool) -> tuple[list[Message], str | None, str | None]:
        """As :meth:`_session_messages`; on a first look an unreachable server is a reason, not an error."""
        try:
            return await self._session_messages(agent_id)
        except PalotError as e:
            if not first_look or isinstance(e, InvalidInput):
                raise
            return [], None, f"the conversation cannot be read now: {e.message}" + (f" ({e.fix})" if e.fix else "")

    async def activity(self, agent_ref: str, *, since: int = 0) -> list[ActivityItem]:
        """Structured activity, oldest first; ``since`` skips items already seen (a cursor).

        When the conversation cannot be read (its environment was archived, or its server is unreachable),
        the activity is one ``notice`` line saying so.
        """
        agent_id = self.resolve(agent_ref)
        messages, root, unavailable = await self._readable_messages(agent_id, since <= 0)
        if unavailable:
            return [_notice(unavailable)] if since <= 0 else []
        return [item for item in build_activity(messages, root) if item.index >= since]

    async def messages(self, agent_ref: str) -> list[AgentMessage]:
        """The agent's conversation, simplified; empty when it is no longer available (see the agent's view)."""
        agent_id = self.resolve(agent_ref)
        messages, _, _ = await self._session_messages(agent_id)
        return simplify_messages(messages)

    async def diff(self, agent_ref: str, *, path: str | None = None) -> AgentDiff:
        """The agent's changes against its base commit, untracked files included.

        Once its environment is gone, the diff of its branch as kept in the user's repository (``unavailable``
        says so); when a cloud environment cannot be reached, its mirror as last brought up to date.
        """
        agent_id = self.resolve(agent_ref)
        unavailable = None
        if agent_id in self._external:
            session, project = self._external[agent_id]
            d = await git.diff(Path(session.directory), "HEAD", path=path)
        else:
            rec = self.store.get_agent(agent_id)
            env = self.store.get_environment(rec.environment_id) if rec.environment_id else None
            if env is None or not env.base_commit:
                return AgentDiff(agent_id=agent_id, base_commit=None, files=[], additions=0, deletions=0, patch="",
                                 unavailable=_unavailable(None))
            if env.state != "active":
                unavailable = f"{_unavailable(env)}; this is that branch as kept in your repository"
            try:
                d = await self._git_diff(env, path=path)
            except PalotError as e:
                host = Path(self._host_path(env) or "")
                if env.state != "active" or not (host / ".git").exists():
                    raise
                d = await git.diff(host, env.base_commit, path=path)
                unavailable = (f"the environment cannot be reached now ({e.message}"
                               + (f"; {e.fix}" if e.fix else "") + "); this is its last synced state")
        files = [FileChange(path=f.path, status=f.status, additions=f.additions, deletions=f.deletions,
                            binary=f.binary, old_path=f.old_path) for f in d.files]
        return AgentDiff(agent_id=agent_id, base_commit=d.base_commit, files=files,
                         additions=d.additions, deletions=d.deletions, patch=d.patch, unavailable=unavailable)

    async def _git_diff(self, env: EnvironmentRecord, *, path: str | None = None) -> git.Diff:
        assert env.base_commit
        backend = self.backends[env.type]
        try:
            directory = await backend.sync(env) if env.state == "active" else backend.host_path(env)
        except KeyError:  # a record without its workspace: read the branch
            directory = None
        if env.state == "active" and directory is not None and directory.is_dir():
            return await git.diff(directory, env.base_commit, path=path)
        if not env.branch or "project_path" not in env.data:
            raise InvalidState(f"the files of environment {env.id} are gone and it has no branch to read",
                               "nothing is left to show; destroy the agent")
        return await git.diff_refs(Path(env.data["project_path"]), env.base_commit, env.branch, path=path)

    # --- completing ---------------------------------------------------------

    async def apply(self, agent_ref: str, *, path: str | None = None) -> list[str]:
        """Apply the agent's changes (or only ``path``'s) to the user's checkout, uncommitted; refuses on a
        conflict or a dirty checkout, changing nothing."""
        rec, env = self.managed(agent_ref, "apply")
        d = await self._git_diff(env, path=path)
        if d.is_empty:
            what = f"changes to {path}" if path else "changes"
            raise InvalidState(f"agent {rec.id} has no {what} to apply", "wait for it to finish, or prompt it")
        project = self.store.get_project(rec.project_id)
        assert project is not None
        changed = await git.apply_patch(Path(project.path), d.patch)
        if path is None:  # "applied" means all of it: destroy checks this before dropping the branch
            self.store.update_agent(rec.id, applied_patch_sha=_patch_sha(d.patch))
        self.store.audit("applied", agent_id=rec.id, project_id=rec.project_id, files=changed,
                         **({"path": path} if path else {}))
        self._announce(rec.id)
        return changed

    async def archive(self, agent_ref: str, *, reason: str | None = None) -> Agent:
        """Stop the agent and remove its environment; every change stays on its branch. ``reason``: why Palot
        archived it by itself (a policy), kept in the audit log."""
        rec, env = self.managed(agent_ref, "archive")
        if rec.archived_at is not None:
            return self._view_by_id(rec.id)
        self._not_moving(rec, "archive")
        await self._stop_session(rec, env)
        await self.backends[env.type].archive(env)
        self.store.update_environment(env.id, state="archived")  # its dev-server ports are free again
        self.store.update_agent(rec.id, archived_at=time.time(), status=AgentStatus.ARCHIVED.value)
        self.write_env_map()
        self._live.pop(rec.id, None)
        self.store.audit("archived", agent_id=rec.id, project_id=rec.project_id, branch=env.branch,
                         **({"reason": reason} if reason else {}))
        self._announce(rec.id)
        return self._view_by_id(rec.id)

    def retry_spawn(self, agent_ref: str) -> dict[str, Any]:
        """What a retry of the agent spawns (the arguments of :meth:`spawn`): its project, prompt, base commit,
        model, permission mode, budget, environment type with its options (read back from the environment) and
        setup script.

        A failed, paused, completed or archived agent can be retried; one still at work or waiting is refused.
        """
        rec, env = self.managed(agent_ref, "retry")
        status = self._view_by_id(rec.id).status
        if status.active or status == AgentStatus.WAITING:
            doing = "waiting for you" if status == AgentStatus.WAITING else status.value
            raise InvalidState(f"agent {rec.id} is {doing}, so it cannot be retried now",
                               f"wait for it to settle, or abort it first (`palot agents abort {rec.id}`)")
        project = self.store.get_project(rec.project_id)
        assert project is not None
        if not env.base_commit:
            raise InvalidState(f"agent {rec.id} has no base commit to start again from",
                               "spawn a new agent with its prompt instead")
        options = self.backends[env.type].options_of(env)  # a moved agent is retried where it runs now
        title = re.sub(r"\s*\(retry\)$", "", rec.title) + " (retry)"
        return {"project": project.path, "prompt": rec.prompt, "title": title, "model": rec.model,
                "base_branch": env.base_commit, "setup_script": env.data.get("setup_script"),
                "permission_mode": rec.permission_mode, "environment": env.type, "options": options,
                "budget_usd": rec.budget_usd, "budget_tokens": rec.budget_tokens}

    def retried(self, old_id: str, new: Agent) -> None:
        """Note in the audit log that ``new`` retries ``old_id`` (the old agent is left as it is)."""
        rec = self.store.get_agent(old_id)
        self.store.audit("retried", agent_id=old_id, project_id=rec.project_id, retry=new.id, branch=new.branch)
        self.store.audit("retry_of", agent_id=new.id, project_id=rec.project_id, original=old_id)

    async def request_changes(self, agent_ref: str, comments: list[ReviewComment], *,
                              note: str | None = None) -> Agent:
        """Send the agent one prompt built from review comments on its diff (file, lines, quoted diff lines,
        comment); a comment on a file or lines outside its diff is refused and nothing is sent."""
        rec, _ = self._active(agent_ref, "request changes of")
        comments = [c.model_copy(update={"path": c.path.strip().removeprefix("./")}) for c in comments]
        d = await self.diff(rec.id)
        hunks = review.check_comments(comments, d)
        agent = await self.prompt(rec.id, review.changes_prompt(comments, hunks, note))
        self.store.audit("changes_requested", agent_id=rec.id, project_id=rec.project_id,
                         comments=[{"path": c.path, "line": c.line, "end_line": c.end_line or c.line}
                                   for c in comments], note=bool(note))
        return agent

    async def destroy(self, agent_ref: str, *, force: bool = False) -> None:
        """Remove the agent, its environment, session and branch; refuses to drop unapplied work unless forced."""
        rec, env = self.managed(agent_ref, "destroy")
        self._not_moving(rec, "destroy")
        if not force:
            await self._check_no_unmerged_work(rec, env)
        await self._stop_session(rec, env)
        if rec.session_id and env.state == "active":
            try:
                await self.backends[env.type].client_for(env).delete_session(rec.session_id, env.directory)
            except PalotError as e:
                log.info("could not delete session %s: %s", rec.session_id, e)
        await self.backends[env.type].destroy(env)
        self.store.update_environment(env.id, state="destroyed")
        self.write_env_map()
        self.store.audit("destroyed", agent_id=rec.id, project_id=rec.project_id, branch=env.branch, forced=force)
        self.store.delete_agent(rec.id)
        self._live.pop(rec.id, None)
        if rec.session_id:
            self._by_session.pop(rec.session_id, None)
        self.hub.publish(make_event(AGENT_REMOVED, env.directory, agentID=rec.id, sessionID=rec.session_id))

    async def unmerged_work(self, agent_ref: str) -> str | None:
        """What destroying the agent would lose (its changes neither applied nor merged), or None."""
        rec, env = self.managed(agent_ref, "destroy")
        try:
            await self._check_no_unmerged_work(rec, env)
        except UnmergedWork as e:
            return e.message
        return None

    async def _check_no_unmerged_work(self, rec: AgentRecord, env: EnvironmentRecord) -> None:
        try:
            d = await self._git_diff(env)
        except PalotError:
            return  # the environment is already gone: nothing left to lose
        if d.is_empty or rec.applied_patch_sha == _patch_sha(d.patch):
            return
        project = self.store.get_project(rec.project_id)
        assert project is not None and env.branch
        directory = self.backends[env.type].host_path(env)
        clean = not (env.state == "active" and directory.is_dir() and await git.is_dirty(directory))
        if clean and await git.is_ancestor(Path(project.path), env.branch, "HEAD"):
            return  # merged into the user's branch
        raise UnmergedWork(
            f"agent {rec.id} has {len(d.files)} changed files (+{d.additions} -{d.deletions}) "
            "that were neither applied nor merged",
            f"apply them (`palot agents apply {rec.id}`), archive the agent to keep its branch, or destroy with --force",
        )

    async def _stop_session(self, rec: AgentRecord, env: EnvironmentRecord) -> None:
        live = self._live.get(rec.id)
        if not rec.session_id or env.state != "active":
            return
        client = self.backends[env.type].client_for(env)
        try:
            if live is None or live.busy or live.prompt_pending or live.permissions:
                await client.abort(rec.session_id, env.directory)
            # Release OpenCode's watchers on the directory before it disappears.
            await client.dispose_instance(env.directory)
        except PalotError as e:
            log.info("could not stop session %s cleanly: %s", rec.session_id, e)

    async def create_pr(
        self, agent_ref: str, *, title: str | None = None, body: str | None = None, remote: str = "origin",
        base: str | None = None,
    ) -> PullRequest:
        """Commit the agent's work on its branch, push it, and open a PR with ``gh`` when it is installed.

        Without ``gh`` the branch is still pushed and the result says exactly what is missing.
        """
        rec, env = self.managed(agent_ref, "create a PR for")
        project = self.store.get_project(rec.project_id)
        assert project is not None and env.branch
        repo = Path(project.path)
        url = await git.remote_url(repo, remote)
        if url is None:
            raise InvalidState(f"{repo} has no remote '{remote}' to push {env.branch} to",
                               f"add one (`git -C {repo} remote add {remote} URL`) or pass another remote")
        if (await self._git_diff(env)).is_empty:
            raise InvalidState(f"agent {rec.id} has no changes to propose", "wait for it to finish, or prompt it")
        if env.state == "active":
            await self.backends[env.type].publish_branch(env, title or rec.title)
        await git.push_branch(repo, env.branch, remote)
        self.store.audit("pushed", agent_id=rec.id, project_id=rec.project_id, branch=env.branch, remote=remote)
        gh = shutil.which("gh")
        if gh is None:
            return PullRequest(
                agent_id=rec.id, branch=env.branch, remote=remote, remote_url=url, pushed=True,
                message=(f"pushed {env.branch} to {remote}; the GitHub CLI (gh) is not installed, so no PR was "
                         "opened — install gh and run `gh auth login`, or open the PR from the branch on your host"),
            )
        args = [gh, "pr", "create", "--head", env.branch, "--title", title or rec.title,
                "--body", body or f"Opened by Palot for agent {rec.id}.\n\nPrompt:\n\n{rec.prompt}"]
        if base:
            args += ["--base", base]
        proc = await asyncio.create_subprocess_exec(*args, cwd=repo, stdin=asyncio.subprocess.DEVNULL,
                                                    stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        try:
            out, err = await asyncio.wait_for(proc.communicate(), GH_TIMEOUT)
        except asyncio.TimeoutError:
            proc.kill()
            await proc.wait()
            raise PullRequestFailed(f"pushed {env.branch}, but `gh pr create` did not finish within {GH_TIMEOUT:.0f} s",
                                    "run `gh auth status` to check your login and network, then try again") from None
        if proc.returncode != 0:
            raise PullRequestFailed(f"pushed {env.branch}, but `gh pr create` failed: {err.decode(errors='replace')[-500:]}",
                                    "run `gh auth status` to check your login, then try again")
        pr_url = out.decode().strip().splitlines()[-1] if out.strip() else None
        self.store.audit("pr_created", agent_id=rec.id, project_id=rec.project_id, url=pr_url)
        return PullRequest(agent_id=rec.id, branch=env.branch, remote=remote, remote_url=url, pushed=True,
                           url=pr_url, message=f"opened {pr_url}")

    async def environment(self, agent_ref: str) -> EnvironmentStatus:
        """The agent's environment: type, state, directory, branch, and resource use where measurable.

        Works in every state; ``unavailable`` says what cannot be read (environment gone, engine unreachable).
        """
        agent_id = self.resolve(agent_ref)
        if agent_id in self._external:
            self.managed(agent_id, "inspect the environment of")  # read-only agents have no environment
        rec = self.store.get_agent(agent_id)
        env = self.store.get_environment(rec.environment_id) if rec.environment_id else None
        if env is None:
            project = self.store.get_project(rec.project_id)
            return EnvironmentStatus(agent_id=rec.id, type="none", state="missing",
                                     directory=project.path if project else "", branch=None, base_commit=None,
                                     unavailable=_unavailable(None))
        backend = self.backends[env.type]
        unavailable = _unavailable(env)
        try:
            state = await backend.status(env)
            resources = await backend.resources(env) if env.state == "active" else None
        except PalotError as e:
            state, resources = "unreachable", None
            unavailable = f"the environment cannot be inspected now: {e.message}" + (f" ({e.fix})" if e.fix else "")
        if unavailable is None and state != "running":
            try:
                reason = await backend.failure(env)
            except PalotError as e:
                reason = e.message
            unavailable = reason or f"resource use cannot be measured: the environment's state is '{state}'"
        held = ports.PortRange.from_data(env.data) if env.state == "active" else None
        return EnvironmentStatus(
            agent_id=rec.id, type=env.type, state=state, directory=env.directory, host_path=self._host_path(env),
            branch=env.branch, base_commit=env.base_commit, resources=resources, unavailable=unavailable,
            dev_port=held.first if held else None, dev_ports=str(held) if held else None,
        )

    # --- moving (the migration engine drives these) -------------------------

    async def move(self, agent_ref: str, target: str, *, options: dict[str, Any] | None = None,
                   resume: bool | None = None, progress: Progress = quiet) -> MigrationResult:
        """Move the agent to a new environment of type ``target`` (see :class:`palot.migration.MigrationEngine`)."""
        if self.mover is None:
            raise InvalidState("moving agents needs the full Palot core", "use palot.Palot")
        return await self.mover.move(agent_ref, target, options=options, resume=resume, progress=progress)

    def set_migrating(self, agent_id: str, on: bool) -> None:
        live = self._live_of(agent_id)
        live.migrating = on
        self._settle(agent_id)

    async def pause_for_move(self, agent_id: str) -> bool:
        """Stop the agent's turn if it has one (and wait until OpenCode says it stopped); True if it had one."""
        rec = self.store.get_agent(agent_id)
        env = self.store.get_environment(rec.environment_id or "")
        assert env is not None and rec.session_id
        client = self.backends[env.type].client_for(env)
        live = self._live_of(agent_id)
        busy = (rec.session_id in await client.session_statuses(env.directory) or live.busy or live.prompt_pending
                or bool(live.permissions))
        if busy:
            await client.abort(rec.session_id, env.directory)
            deadline = time.monotonic() + 20
            while rec.session_id in await client.session_statuses(env.directory):
                if time.monotonic() > deadline:
                    raise AbortTimedOut(f"agent {agent_id} did not stop its turn within 20 s",
                                         "abort it (`palot agents abort`), then move it again")
                await asyncio.sleep(0.1)
            live.busy = live.prompt_pending = False
            live.permissions.clear()
            live.aborted = True
            self.store.audit("paused", agent_id=agent_id, project_id=rec.project_id, reason="move")
        return busy

    async def moved(self, agent_id: str, status: str, *, note: str | None = None) -> None:
        """The agent now lives in its new environment: start its live state afresh, and resume it with ``note``."""
        rec = self.store.get_agent(agent_id)
        live = LiveState(tokens=rec.tokens, cost=rec.cost, aborted=status == AgentStatus.PAUSED.value,
                         error=rec.error if status == AgentStatus.FAILED.value else None)
        self._live[agent_id] = live
        self.write_env_map()  # its ports now belong to its new directory
        self._settle(agent_id)
        self._announce(agent_id)
        if note:
            await self.prompt(agent_id, note)

    def moved_back(self, agent_id: str, status: str) -> None:
        """A move was rolled back: the agent is in its old environment, with ``status``."""
        live = self._live.get(agent_id)
        if live is None:
            self.store.update_agent(agent_id, status=status)
            return
        live.migrating = False
        if status == AgentStatus.PAUSED.value:
            live.aborted = True
        self._settle(agent_id)
        self._announce(agent_id)

    # --- misc ---------------------------------------------------------------

    def audit_log(self, agent_ref: str | None = None, limit: int = 200) -> list[dict[str, Any]]:
        agent_id = self.resolve(agent_ref) if agent_ref else None
        return [e.model_dump() for e in self.store.audit_log(agent_id=agent_id, limit=limit)]
