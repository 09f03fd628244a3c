"""Views and queries: what an agent looks like now, found by any name, listed, and its environment's status.

Owns :class:`AgentViews`: building an :class:`~.models.Agent` from its record, environment, project and
live state (cached until something it shows changes), the views of external sessions, resolving an agent
reference (id, prefix, branch), listing and filtering, and the checks every command makes first
(:meth:`AgentViews.managed`). Reads the store and :class:`~.live.LiveAgents`; changes neither, except the
usage numbers :meth:`AgentViews.get` refreshes from OpenCode.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from .. import ports
from ..backends import RuntimeBackend
from ..errors import AgentNotFound, InvalidInput, InvalidState, PalotError, ReadOnlyAgent
from ..opencode import Session
from ..store import AgentRecord, EnvironmentRecord, ProjectRecord, Store
from .live import LiveAgents
from .models import Agent, AgentStatus, EnvironmentStatus, EnvironmentView
from .notices import NOTICE, current_notice
from .status import LiveState, derive_status, permission_views

log = logging.getLogger(__name__)

_WHERE = {"worktree": "worktree", "container": "container", "cloud": "cloud environment"}


def unavailable(env: EnvironmentRecord | None) -> str | None:
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


class AgentViews:
    """Agents as front ends see them, read from the store and the live states."""

    def __init__(self, store: Store, backends: dict[str, RuntimeBackend], live: LiveAgents) -> None:
        self.store = store
        self.backends = backends
        self.live = live
        self._cache: dict[str, tuple[tuple[Any, ...], Agent]] = {}

    def view_of(self, rec: AgentRecord, env: EnvironmentRecord | None, project: ProjectRecord) -> Agent:
        """The agent's view, rebuilt only when something it shows changed (listing a thousand stays cheap)."""
        live = self.live.states.get(rec.id)
        key = (rec.updated_at, rec.status, rec.error, rec.tokens, rec.cost, rec.archived_at,
               (env.id, env.state, env.directory, env.branch, bool(env.data.get("paused")), env.data.get(NOTICE))
               if env else None,
               project.name,
               None if live is None else (live.busy, live.prompt_pending, live.aborted, live.error, live.env_error,
                                          tuple(live.permissions), live.tokens, live.cost, live.provisioning,
                                          live.migrating))
        cached = self._cache.get(rec.id)
        if cached is not None and cached[0] == key:
            return cached[1]
        view = self._build(rec, env, project, live)
        self._cache[rec.id] = (key, view)
        return view

    def _build(
        self, rec: AgentRecord, env: EnvironmentRecord | None, project: ProjectRecord, live: LiveState | None
    ) -> Agent:
        if live is not None:
            status = derive_status(live, archived=rec.archived_at is not None)
            permissions = permission_views(live)
            error = (live.env_error or live.error) if status == AgentStatus.FAILED else None
            tokens, cost = max(live.tokens, rec.tokens), max(live.cost, rec.cost)
        else:
            status, permissions, error, tokens, cost = AgentStatus(rec.status), [], rec.error, rec.tokens, rec.cost
        if env is not None and env.data.get("paused") and status not in (AgentStatus.ARCHIVED, AgentStatus.MIGRATING):
            status, error = AgentStatus.PAUSED, None  # its cloud environment is paused (palot agents resume)
        environment = EnvironmentView(
            id=env.id if env else None, type=env.type if env else "none",
            directory=env.directory if env else project.path,
            branch=env.branch if env else None, base_commit=env.base_commit if env else None,
            host_path=self.host_path(env), unavailable=unavailable(env),
        )
        return Agent(
            id=rec.id, title=rec.title, status=status, project_id=project.id, project_path=project.path,
            project_name=project.name, environment=environment, session_id=rec.session_id, prompt=rec.prompt,
            model=rec.model, permission_mode=rec.permission_mode, error=error, permissions=permissions,
            tokens=tokens, cost=cost, created_at=rec.created_at, updated_at=rec.updated_at,
            environment_cost=rec.environment_cost, budget_usd=rec.budget_usd, budget_tokens=rec.budget_tokens,
            pause_reason=rec.pause_reason if status == AgentStatus.PAUSED else None,
            notice=env.data.get(NOTICE) if env is not None and env.state == "active" else None,
        )

    def external_view(self, session: Session, project: ProjectRecord) -> Agent:
        """A session Palot did not start, shown as a read-only agent."""
        live = self.live.external_states.get(session.id) or LiveState()
        status = derive_status(live, archived=False)
        return Agent(
            id=session.id, title=session.title or session.id, status=status,
            error=live.error if status == AgentStatus.FAILED else None, permissions=permission_views(live),
            project_id=project.id, project_path=project.path, project_name=project.name,
            environment=EnvironmentView(id=None, type="external", directory=session.directory,
                                        host_path=session.directory),
            session_id=session.id, tokens=session.tokens.total, cost=session.cost,
            created_at=session.time.created / 1000, updated_at=session.time.updated / 1000, read_only=True,
        )

    def host_path(self, env: EnvironmentRecord | None) -> str | None:
        """Where the environment's files are on this machine, while it has them."""
        backend = self.backends.get(env.type) if env is not None else None
        if env is None or backend is None or env.state != "active":
            return None
        try:
            return str(backend.host_path(env))
        except (KeyError, PalotError):  # a record without its tier's data (made by an older Palot)
            return None

    def by_id(self, agent_id: str) -> Agent:
        """The view of an agent known by its exact id."""
        rec = self.store.get_agent(agent_id)
        env = self.store.get_environment(rec.environment_id) if rec.environment_id else None
        project = self.store.get_project(rec.project_id)
        assert project is not None
        return self.view_of(rec, env, project)

    def resolve(self, agent_ref: str) -> str:
        """An agent id from an id, a unique id prefix, or the agent's branch."""
        ref = (agent_ref or "").strip()
        if not ref:
            raise InvalidInput("no agent id given", "pass an agent id from `palot agents list`")
        if ref in self.live.external:
            return ref
        try:
            return self.store.get_agent(ref).id
        except AgentNotFound:
            pass
        matches = [
            a.id for a, env, _ in self.store.list_agents_with_environments()
            if a.id.startswith(ref) or (env is not None and env.branch in (ref, f"palot/{ref}"))
        ]
        matches += [sid for sid in self.live.external if sid.startswith(ref)]
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
        agents = [self.view_of(rec, env, proj) for rec, env, proj in rows]
        if include_external and environment in (None, "external"):
            agents += [self.external_view(s, p) for s, p in self.live.external.values()
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
        if agent_id in self.live.external:
            session, project = self.live.external[agent_id]
            return self.external_view(session, project)
        agent = self.by_id(agent_id)
        if agent.session_id and agent.status != AgentStatus.ARCHIVED and agent.environment.unavailable is None:
            try:
                _, env = self.managed(agent_id, "read")
                session = await self.backends[env.type].client_for(env).get_session(agent.session_id, env.directory)
                live = self.live.live_of(agent_id)
                live.tokens, live.cost = session.tokens.total, session.cost
                agent = agent.model_copy(update={"tokens": live.tokens, "cost": live.cost})
            except PalotError as e:
                log.info("could not refresh usage of %s: %s", agent_id, e)
        return agent

    def managed(self, agent_ref: str, action: str) -> tuple[AgentRecord, EnvironmentRecord]:
        """The agent's record and environment, for ``action``; refused for sessions Palot did not start."""
        agent_id = self.resolve(agent_ref)
        if agent_id in self.live.external:
            raise ReadOnlyAgent(
                f"agent {agent_id} is an OpenCode session Palot did not start, so it cannot {action} it",
                "spawn a Palot agent for this work (`palot agents spawn`), or use OpenCode directly",
            )
        rec = self.store.get_agent(agent_id)
        env = self.store.get_environment(rec.environment_id) if rec.environment_id else None
        if env is None:
            raise InvalidState(f"agent {agent_id} has no environment", "destroy it and spawn a new one")
        return rec, env

    async def environment(self, agent_ref: str) -> EnvironmentStatus:
        """The agent's environment: type, state, directory, branch, and resource use where measurable.

        Works in every state; ``unavailable`` says what cannot be read (environment gone, engine unreachable).
        """
        agent_id = self.resolve(agent_ref)
        if agent_id in self.live.external:
            self.managed(agent_id, "inspect the environment of")  # read-only agents have no environment
        rec = self.store.get_agent(agent_id)
        env = self.store.get_environment(rec.environment_id) if rec.environment_id else None
        if env is None:
            project = self.store.get_project(rec.project_id)
            return EnvironmentStatus(agent_id=rec.id, type="none", state="missing",
                                     directory=project.path if project else "", branch=None, base_commit=None,
                                     unavailable=unavailable(None))
        backend = self.backends[env.type]
        why = unavailable(env)
        try:
            state = await backend.status(env)
            resources = await backend.resources(env) if env.state == "active" else None
            notice = await current_notice(backend, env)
        except PalotError as e:
            state, resources, notice = "unreachable", None, None
            why = f"the environment cannot be inspected now: {e.message}" + (f" ({e.fix})" if e.fix else "")
        if why is None and state != "running":
            try:
                reason = await backend.failure(env)
            except PalotError as e:
                reason = e.message
            why = reason or f"resource use cannot be measured: the environment's state is '{state}'"
        held = ports.PortRange.from_data(env.data) if env.state == "active" else None
        return EnvironmentStatus(
            agent_id=rec.id, type=env.type, state=state, directory=env.directory, host_path=self.host_path(env),
            branch=env.branch, base_commit=env.base_commit, resources=resources, unavailable=why, notice=notice,
            dev_port=held.first if held else None, dev_ports=str(held) if held else None,
        )
