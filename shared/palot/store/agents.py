"""Projects, environments and agents: recording them, reading them back, changing some fields, and the
joined listing the service shows.
"""

from __future__ import annotations

import time
from typing import Any

from palot.errors import AgentNotFound, StoreError

from .database import Database, _check_fields, _update_row, _validated
from .keys import _project_id, _to_json
from .records import (
    _AGENT_COLS,
    _ENV_COLS,
    _PROJECT_COLS,
    AgentRecord,
    EnvironmentRecord,
    ProjectRecord,
    _agent,
    _environment,
    _project,
)

_NOT_FOUND_FIX = "run `palot agents list` to see agent ids"


class AgentTables(Database):
    """The ``projects``, ``environments`` and ``agents`` tables."""

    def upsert_project(self, path: str, name: str) -> ProjectRecord:
        """Record a project (keyed by ``path``); later calls only update the name."""
        project_id = _project_id(path)
        with self._db(write=True) as conn:
            conn.execute(
                "INSERT INTO projects (id, path, name, created_at) VALUES (?, ?, ?, ?)"
                " ON CONFLICT(id) DO UPDATE SET name = excluded.name",
                (project_id, path, name, time.time()),
            )
            row = conn.execute(
                "SELECT id, path, name, created_at FROM projects WHERE id = ?", (project_id,)
            ).fetchone()
        return _project(row)

    def get_project(self, project_id: str) -> ProjectRecord | None:
        """The project with this id, or None."""
        with self._db() as conn:
            row = conn.execute(
                "SELECT id, path, name, created_at FROM projects WHERE id = ?", (project_id,)
            ).fetchone()
        return _project(row) if row else None

    def list_projects(self) -> list[ProjectRecord]:
        """All projects, by name."""
        with self._db() as conn:
            rows = conn.execute(
                "SELECT id, path, name, created_at FROM projects ORDER BY name, path"
            ).fetchall()
        return [_project(r) for r in rows]

    # -- environments ---------------------------------------------------------

    def add_environment(self, env: EnvironmentRecord) -> None:
        """Record a new environment; its id must be unused."""
        values = env.model_dump()
        values["data"] = _to_json(values["data"], "environment data")
        cols = ", ".join(_ENV_COLS)
        marks = ", ".join("?" for _ in _ENV_COLS)
        with self._db(write=True) as conn:
            conn.execute(
                f"INSERT INTO environments ({cols}) VALUES ({marks})",
                [values[c] for c in _ENV_COLS],
            )

    def get_environment(self, env_id: str) -> EnvironmentRecord | None:
        """The environment with this id, or None."""
        with self._db() as conn:
            row = conn.execute(
                f"SELECT {', '.join(_ENV_COLS)} FROM environments WHERE id = ?", (env_id,)
            ).fetchone()
        return _environment(row) if row else None

    def list_environments(self, *, state: str | None = None) -> list[EnvironmentRecord]:
        """Environments, oldest first, optionally only those in ``state`` (e.g. "active")."""
        query = f"SELECT {', '.join(_ENV_COLS)} FROM environments"
        params: tuple[Any, ...] = ()
        if state is not None:
            query, params = query + " WHERE state = ?", (state,)
        with self._db() as conn:
            rows = conn.execute(query + " ORDER BY created_at, id", params).fetchall()
        return [_environment(r) for r in rows]

    def update_environment(self, env_id: str, **fields: Any) -> EnvironmentRecord:
        """Change some fields of an environment and return the new record."""
        _check_fields(fields, _ENV_COLS, "environment")
        with self._db(write=True) as conn:
            row = conn.execute(
                f"SELECT {', '.join(_ENV_COLS)} FROM environments WHERE id = ?", (env_id,)
            ).fetchone()
            if row is None:
                raise StoreError(
                    f"no environment with id {env_id!r}",
                    "run `palot agents list` to see agents and their environments",
                )
            updated = _validated(EnvironmentRecord, _environment(row), fields)
            values = updated.model_dump(include=set(fields))
            if "data" in values:
                values["data"] = _to_json(values["data"], "environment data")
            _update_row(conn, "environments", env_id, values)
        return updated

    # -- agents ---------------------------------------------------------------

    def add_agent(self, agent: AgentRecord) -> None:
        """Record a new agent; its id (chosen by the caller) must be unused."""
        values = agent.model_dump()
        cols = ", ".join(_AGENT_COLS)
        marks = ", ".join("?" for _ in _AGENT_COLS)
        with self._db(write=True) as conn:
            if conn.execute("SELECT 1 FROM agents WHERE id = ?", (agent.id,)).fetchone():
                raise StoreError(f"an agent with id {agent.id!r} already exists")
            if not conn.execute(
                "SELECT 1 FROM projects WHERE id = ?", (agent.project_id,)
            ).fetchone():
                raise StoreError(
                    f"agent {agent.id!r} names unknown project {agent.project_id!r}",
                    "record the project with upsert_project first",
                )
            conn.execute(
                f"INSERT INTO agents ({cols}) VALUES ({marks})",
                [values[c] for c in _AGENT_COLS],
            )

    def get_agent(self, agent_id: str) -> AgentRecord:
        """The agent with this id; raises AgentNotFound if there is none."""
        with self._db() as conn:
            row = conn.execute(
                f"SELECT {', '.join(_AGENT_COLS)} FROM agents WHERE id = ?", (agent_id,)
            ).fetchone()
        if row is None:
            raise AgentNotFound(f"no agent with id {agent_id!r}", _NOT_FOUND_FIX)
        return _agent(row)

    def find_agent_by_session(self, session_id: str) -> AgentRecord | None:
        """The agent driving this OpenCode session, or None."""
        with self._db() as conn:
            row = conn.execute(
                f"SELECT {', '.join(_AGENT_COLS)} FROM agents WHERE session_id = ?"
                " ORDER BY created_at DESC LIMIT 1",
                (session_id,),
            ).fetchone()
        return _agent(row) if row else None

    def update_agent(self, agent_id: str, **fields: Any) -> AgentRecord:
        """Change some fields of an agent, stamp ``updated_at`` and return the new record.

        ``updated_at`` is set to now unless given explicitly.
        """
        _check_fields(fields, _AGENT_COLS, "agent")
        fields.setdefault("updated_at", time.time())
        with self._db(write=True) as conn:
            row = conn.execute(
                f"SELECT {', '.join(_AGENT_COLS)} FROM agents WHERE id = ?", (agent_id,)
            ).fetchone()
            if row is None:
                raise AgentNotFound(f"no agent with id {agent_id!r}", _NOT_FOUND_FIX)
            updated = _validated(AgentRecord, _agent(row), fields)
            _update_row(conn, "agents", agent_id, updated.model_dump(include=set(fields)))
        return updated

    def delete_agent(self, agent_id: str) -> None:
        """Forget an agent. Its audit entries stay; raises AgentNotFound if unknown."""
        with self._db(write=True) as conn:
            cursor = conn.execute("DELETE FROM agents WHERE id = ?", (agent_id,))
            if cursor.rowcount == 0:
                raise AgentNotFound(f"no agent with id {agent_id!r}", _NOT_FOUND_FIX)

    def list_agents(
        self,
        *,
        project_id: str | None = None,
        status: str | list[str] | None = None,
        include_archived: bool = True,
    ) -> list[AgentRecord]:
        """Agents matching all given filters, oldest first."""
        where, params = _agent_filters(project_id, status, include_archived)
        with self._db() as conn:
            rows = conn.execute(
                f"SELECT {', '.join(_AGENT_COLS)} FROM agents a{where}"
                " ORDER BY a.created_at, a.id",
                params,
            ).fetchall()
        return [_agent(r) for r in rows]

    def list_agents_with_environments(
        self,
        *,
        project_id: str | None = None,
        status: str | list[str] | None = None,
        include_archived: bool = True,
    ) -> list[tuple[AgentRecord, EnvironmentRecord | None, ProjectRecord]]:
        """Like :meth:`list_agents`, each agent with its environment and project.

        One joined query, so listing a thousand agents stays a few milliseconds.
        """
        where, params = _agent_filters(project_id, status, include_archived)
        with self._db() as conn:
            # Unchanged since the last identical listing (by this or any other process)? Reuse it.
            version = (conn.execute("PRAGMA data_version").fetchone()[0], self._writes)
        key = (where, tuple(params))
        cached = self._listing_cache.get(key)
        if cached is not None and cached[0] == version:
            return list(cached[1])
        select = ", ".join(
            [f"a.{c}" for c in _AGENT_COLS]
            + [f"e.{c}" for c in _ENV_COLS]
            + [f"p.{c}" for c in _PROJECT_COLS]
        )
        with self._db() as conn:
            rows = conn.execute(
                f"SELECT {select} FROM agents a"
                " JOIN projects p ON p.id = a.project_id"
                " LEFT JOIN environments e ON e.id = a.environment_id"
                f"{where} ORDER BY a.created_at, a.id",
                params,
            ).fetchall()
        n_agent, n_env = len(_AGENT_COLS), len(_ENV_COLS)
        projects: dict[str, ProjectRecord] = {}  # built once per project, shared
        result: list[tuple[AgentRecord, EnvironmentRecord | None, ProjectRecord]] = []
        for row in rows:
            env_row = row[n_agent : n_agent + n_env]
            project_row = row[n_agent + n_env :]
            project = projects.get(project_row[0])
            if project is None:
                project = projects[project_row[0]] = _project(project_row)
            env = _environment(env_row) if env_row[0] is not None else None
            result.append((_agent(row[:n_agent]), env, project))
        self._listing_cache = {key: (version, result)}  # one entry: the common case is one filter, repeated
        return list(result)


def _agent_filters(
    project_id: str | None, status: str | list[str] | None, include_archived: bool
) -> tuple[str, list[Any]]:
    """WHERE clause (on alias ``a``) and parameters shared by the agent listings."""
    clauses: list[str] = []
    params: list[Any] = []
    if project_id is not None:
        clauses.append("a.project_id = ?")
        params.append(project_id)
    if status is not None:
        statuses = [status] if isinstance(status, str) else list(status)
        if not statuses:
            clauses.append("0")  # an empty status list matches nothing
        else:
            clauses.append(f"a.status IN ({', '.join('?' for _ in statuses)})")
            params.extend(statuses)
    if not include_archived:
        clauses.append("a.archived_at IS NULL")
    return (" WHERE " + " AND ".join(clauses) if clauses else ""), params
