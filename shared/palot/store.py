"""Durable Palot state in one SQLite file.

Holds projects, agent environments, agents, moves, templates and an audit log
of lifecycle events (schema 1's ``preferences`` table is kept, unused, so no
schema step is needed to drop it). Design notes:

* Stdlib ``sqlite3`` in WAL mode so several Palot processes (CLI, daemon, UI
  bridge) can share the file: readers never block the writer.
* One connection per :class:`Store`, guarded by a ``threading.Lock``. Every
  call is sub-millisecond, so async code calls it directly instead of paying
  for a thread hop.
* The schema version lives in ``PRAGMA user_version``; :data:`MIGRATIONS` is an
  ordered list of SQL scripts, each applied in its own transaction.
* Secrets never reach the store: audit details with secret-looking keys are
  refused outright.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import sqlite3
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from palot.errors import AgentNotFound, StoreError

__all__ = [
    "AgentRecord",
    "AuditEntry",
    "EnvironmentRecord",
    "JournalEntry",
    "MIGRATIONS",
    "MigrationRecord",
    "PermissionRecord",
    "ProjectRecord",
    "SCHEMA_VERSION",
    "Store",
    "TemplateRecord",
]


# --- records ---------------------------------------------------------------


class ProjectRecord(BaseModel):
    """A repository Palot runs agents in."""

    id: str
    path: str
    name: str
    created_at: float


class EnvironmentRecord(BaseModel):
    """Where an agent runs: a worktree, container, cloud box or external server."""

    id: str
    type: str  # "worktree" | "container" | "cloud" | "external"
    directory: str
    branch: str | None
    base_commit: str | None
    server_url: str | None
    state: str  # "active" | "archived" | "destroyed"
    created_at: float
    data: dict = {}  # backend-specific, never secrets
    cost: float = 0.0  # the estimated cost of its running time already counted (cloud), USD


class AgentRecord(BaseModel):
    """One coding agent: an OpenCode session plus Palot's bookkeeping."""

    id: str
    project_id: str
    environment_id: str | None
    session_id: str | None
    title: str
    prompt: str
    model: str | None
    permission_mode: str
    status: str
    error: str | None
    created_at: float
    updated_at: float
    archived_at: float | None = None
    applied_patch_sha: str | None = None
    tokens: int = 0
    cost: float = 0.0
    budget_usd: float | None = None
    budget_tokens: int | None = None
    pause_reason: str | None = None  # why Palot paused the agent (a budget), cleared by the next prompt
    environment_cost: float = 0.0  # its environments' running time counted so far (cloud), USD


class PermissionRecord(BaseModel):
    """A permission request an agent asked, from when Palot first saw it until it was answered."""

    id: str
    agent_id: str
    tool: str
    patterns: list[str] = []
    asked_at: float
    answered_at: float | None = None
    reply: str | None = None
    answered_by: str | None = None  # "person", or the rule that answered it (e.g. "rule 2: allow bash 'npm test*'")


class MigrationRecord(BaseModel):
    """One move of an agent between environments, with where it stands."""

    id: str
    agent_id: str
    source_env_id: str
    target_type: str
    target_env_id: str | None = None
    # "running" → "committed" (the agent points at the target) → "completed"; or "rolled_back", "failed"
    state: str
    step: str | None = None  # the last step journaled
    manifest: dict = {}  # the migration manifest (never secrets)
    error: str | None = None
    created_at: float
    updated_at: float


class JournalEntry(BaseModel):
    """One line of a migration's journal: a step started or done."""

    migration_id: str
    ts: float
    step: str
    phase: str  # "started" | "done" | "undone"
    detail: dict = {}


class AuditEntry(BaseModel):
    """One lifecycle event, as recorded by :meth:`Store.audit`."""

    id: int
    ts: float
    agent_id: str | None
    project_id: str | None
    event: str
    detail: dict


class TemplateRecord(BaseModel):
    """A reusable prompt; ``project_path`` is the project's root, or "" for every project."""

    name: str
    project_path: str = ""
    prompt: str
    title: str | None = None
    environment: str | None = None
    model: str | None = None
    permission_mode: str | None = None
    setup_script: str | None = None
    created_at: float
    updated_at: float


# --- schema ----------------------------------------------------------------

# MIGRATIONS[i] takes the database from version i to version i + 1.
# Append only: never edit a script that has shipped.
MIGRATIONS: list[str] = [
    # 1: initial schema
    """
    CREATE TABLE projects (
        id          TEXT PRIMARY KEY,
        path        TEXT NOT NULL UNIQUE,
        name        TEXT NOT NULL,
        created_at  REAL NOT NULL
    );

    CREATE TABLE environments (
        id           TEXT PRIMARY KEY,
        type         TEXT NOT NULL,
        directory    TEXT NOT NULL,
        branch       TEXT,
        base_commit  TEXT,
        server_url   TEXT,
        state        TEXT NOT NULL,
        created_at   REAL NOT NULL,
        data         TEXT NOT NULL DEFAULT '{}'
    );

    CREATE TABLE agents (
        id                 TEXT PRIMARY KEY,
        project_id         TEXT NOT NULL REFERENCES projects(id),
        environment_id     TEXT REFERENCES environments(id),
        session_id         TEXT,
        title              TEXT NOT NULL,
        prompt             TEXT NOT NULL,
        model              TEXT,
        permission_mode    TEXT NOT NULL,
        status             TEXT NOT NULL,
        error              TEXT,
        created_at         REAL NOT NULL,
        updated_at         REAL NOT NULL,
        archived_at        REAL,
        applied_patch_sha  TEXT
    );
    CREATE INDEX agents_project ON agents(project_id, created_at);
    CREATE INDEX agents_status ON agents(status);
    CREATE INDEX agents_session ON agents(session_id);
    CREATE INDEX agents_environment ON agents(environment_id);
    -- Listings are ordered by creation; this index spares a sort.
    CREATE INDEX agents_created ON agents(created_at, id);

    -- No foreign keys on purpose: the log outlives the agents it mentions.
    CREATE TABLE audit (
        id          INTEGER PRIMARY KEY AUTOINCREMENT,
        ts          REAL NOT NULL,
        agent_id    TEXT,
        project_id  TEXT,
        event       TEXT NOT NULL,
        detail      TEXT NOT NULL DEFAULT '{}'
    );
    CREATE INDEX audit_agent ON audit(agent_id, id);

    CREATE TABLE preferences (
        key    TEXT PRIMARY KEY,
        value  TEXT NOT NULL
    );
    """,
    # 2: usage, so listings show tokens and cost without asking OpenCode
    """
    ALTER TABLE agents ADD COLUMN tokens INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE agents ADD COLUMN cost REAL NOT NULL DEFAULT 0;
    """,
    # 3: migrations between environments, each with a journal of its steps
    """
    CREATE TABLE migrations (
        id             TEXT PRIMARY KEY,
        agent_id       TEXT NOT NULL,
        source_env_id  TEXT NOT NULL,
        target_type    TEXT NOT NULL,
        target_env_id  TEXT,
        state          TEXT NOT NULL,
        step           TEXT,
        manifest       TEXT NOT NULL DEFAULT '{}',
        error          TEXT,
        created_at     REAL NOT NULL,
        updated_at     REAL NOT NULL
    );
    CREATE INDEX migrations_state ON migrations(state);
    CREATE INDEX migrations_agent ON migrations(agent_id, created_at);

    CREATE TABLE migration_journal (
        id            INTEGER PRIMARY KEY AUTOINCREMENT,
        migration_id  TEXT NOT NULL REFERENCES migrations(id),
        ts            REAL NOT NULL,
        step          TEXT NOT NULL,
        phase         TEXT NOT NULL,
        detail        TEXT NOT NULL DEFAULT '{}'
    );
    CREATE INDEX migration_journal_migration ON migration_journal(migration_id, id);
    """,
    # 4: fleet policies: budgets per agent, what the fleet spent per day, the permission inbox
    """
    ALTER TABLE agents ADD COLUMN budget_usd REAL;
    ALTER TABLE agents ADD COLUMN budget_tokens INTEGER;
    ALTER TABLE agents ADD COLUMN pause_reason TEXT;

    CREATE TABLE spend (
        day     TEXT PRIMARY KEY,
        usd     REAL NOT NULL DEFAULT 0,
        tokens  INTEGER NOT NULL DEFAULT 0
    );

    CREATE TABLE permission_requests (
        id           TEXT PRIMARY KEY,
        agent_id     TEXT NOT NULL,
        tool         TEXT NOT NULL,
        patterns     TEXT NOT NULL DEFAULT '[]',
        asked_at     REAL NOT NULL,
        answered_at  REAL,
        reply        TEXT,
        answered_by  TEXT
    );
    CREATE INDEX permission_requests_open ON permission_requests(answered_at, asked_at);
    """,
    # 5: cloud running time counted toward budgets, per environment (so a restart never counts it twice)
    """
    ALTER TABLE environments ADD COLUMN cost REAL NOT NULL DEFAULT 0;
    ALTER TABLE agents ADD COLUMN environment_cost REAL NOT NULL DEFAULT 0;
    """,
    # 6: prompt templates, per project ('' = every project), spawn defaults as typed columns
    """
    CREATE TABLE templates (
        name             TEXT NOT NULL,
        project_path     TEXT NOT NULL DEFAULT '',
        prompt           TEXT NOT NULL,
        title            TEXT,
        environment      TEXT,
        model            TEXT,
        permission_mode  TEXT,
        setup_script     TEXT,
        created_at       REAL NOT NULL,
        updated_at       REAL NOT NULL,
        PRIMARY KEY (project_path, name)
    );
    CREATE INDEX templates_name ON templates(name);
    """,
]

SCHEMA_VERSION = len(MIGRATIONS)

_BUSY_TIMEOUT_MS = 5000

_PROJECT_COLS = ("id", "path", "name", "created_at")
_ENV_COLS = tuple(EnvironmentRecord.model_fields)
_AGENT_COLS = tuple(AgentRecord.model_fields)
_MIGRATION_COLS = tuple(MigrationRecord.model_fields)
_PERMISSION_COLS = tuple(PermissionRecord.model_fields)
_TEMPLATE_COLS = tuple(TemplateRecord.model_fields)

# Words that mark a key as secret. Matched per word ("access_token", "apiKey")
# so harmless keys such as "input_tokens" still pass.
_SECRET_WORDS = frozenset({"password", "passwd", "token", "secret", "apikey"})
_WORD_SPLIT = re.compile(r"[^A-Za-z0-9]+|(?<=[a-z0-9])(?=[A-Z])")

_NOT_FOUND_FIX = "run `palot agents list` to see agent ids"


def _split_statements(script: str) -> list[str]:
    """Split a SQL script into statements (``executescript`` would commit mid-way)."""
    statements: list[str] = []
    buf = ""
    for piece in script.split(";"):
        buf += piece + ";"
        # complete_statement copes with ';' inside strings, comments and triggers.
        if sqlite3.complete_statement(buf):
            if buf.strip(" \t\r\n;"):
                statements.append(buf.strip())
            buf = ""
    if buf.strip(" \t\r\n;"):
        statements.append(buf.strip())
    return statements


def _secret_key(key: str) -> bool:
    words = [w.lower() for w in _WORD_SPLIT.split(key) if w]
    if any(w in _SECRET_WORDS for w in words):
        return True
    # "api_key", "api-key", "ApiKey" split into two words.
    return any(a == "api" and b == "key" for a, b in zip(words, words[1:]))


def _check_no_secrets(value: Any, where: str = "detail") -> None:
    """Refuse secret-looking keys anywhere in a (nested) JSON-like value."""
    if isinstance(value, dict):
        for key, inner in value.items():
            if isinstance(key, str) and _secret_key(key):
                raise StoreError(
                    f"refusing to store audit {where} key {key!r}: it looks like a secret",
                    "leave credentials out of audit details (log a name or a fingerprint instead)",
                )
            _check_no_secrets(inner, f"{where}.{key}")
    elif isinstance(value, (list, tuple)):
        for item in value:
            _check_no_secrets(item, where)


def _to_json(value: Any, what: str) -> str:
    try:
        return json.dumps(value, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise StoreError(
            f"{what} is not JSON-serialisable: {exc}",
            "pass only strings, numbers, booleans, None, lists and dicts",
        ) from exc


def _project_id(path: str) -> str:
    # Stable across processes and runs, short enough to type.
    return "prj_" + hashlib.sha256(path.encode("utf-8")).hexdigest()[:12]


def _project(row: Sequence[Any]) -> ProjectRecord:
    return ProjectRecord(id=row[0], path=row[1], name=row[2], created_at=row[3])


def _environment(row: Sequence[Any]) -> EnvironmentRecord:
    values = dict(zip(_ENV_COLS, row))
    values["data"] = json.loads(values["data"] or "{}")
    return EnvironmentRecord.model_validate(values)


def _migration(row: Sequence[Any]) -> MigrationRecord:
    values = dict(zip(_MIGRATION_COLS, row))
    values["manifest"] = json.loads(values["manifest"])
    return MigrationRecord(**values)


def _permission(row: Sequence[Any]) -> PermissionRecord:
    values = dict(zip(_PERMISSION_COLS, row))
    values["patterns"] = json.loads(values["patterns"] or "[]")
    return PermissionRecord.model_validate(values)


def _agent(row: Sequence[Any]) -> AgentRecord:
    return AgentRecord.model_validate(dict(zip(_AGENT_COLS, row)))


# --- store -----------------------------------------------------------------


class Store:
    """Palot's SQLite-backed state. Safe to share between threads and processes."""

    def __init__(self, path: Path) -> None:
        """Open (creating if needed) the database at ``path`` and migrate it."""
        self.path = Path(path)
        self._lock = threading.Lock()
        self._writes = 0  # commits through this connection (PRAGMA data_version counts only others')
        self._listing_cache: dict[tuple[Any, ...], tuple[tuple[int, int], list[Any]]] = {}
        self._conn: sqlite3.Connection | None = None
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            # Create the file ourselves so it is never world-readable, even briefly.
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
            os.close(fd)
            os.chmod(self.path, 0o600)
        except OSError as exc:
            raise StoreError(
                f"cannot create Palot's database at {self.path}: {exc}",
                "check that the directory exists and is writable by you",
            ) from exc
        try:
            # isolation_level=None: we issue BEGIN/COMMIT ourselves.
            conn = sqlite3.connect(
                str(self.path),
                timeout=_BUSY_TIMEOUT_MS / 1000,
                isolation_level=None,
                check_same_thread=False,
            )
        except sqlite3.Error as exc:
            raise StoreError(f"cannot open Palot's database at {self.path}: {exc}") from exc
        self._conn = conn
        try:
            conn.execute(f"PRAGMA busy_timeout = {_BUSY_TIMEOUT_MS}")
            conn.execute("PRAGMA foreign_keys = ON")
            mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            if str(mode).lower() != "wal":
                raise StoreError(
                    f"cannot switch {self.path} to WAL mode (got {mode!r})",
                    "keep Palot's data directory on a local disk, not a network share",
                )
            # NORMAL is durable enough in WAL mode and much faster than FULL.
            conn.execute("PRAGMA synchronous = NORMAL")
            self._migrate(conn)
        except sqlite3.DatabaseError as exc:
            conn.close()
            self._conn = None
            raise StoreError(
                f"cannot use Palot's database at {self.path}: {exc}",
                "if the file is damaged, move it aside and Palot will start a fresh one",
            ) from exc
        except BaseException:
            conn.close()
            self._conn = None
            raise

    # -- plumbing -------------------------------------------------------------

    def _migrate(self, conn: sqlite3.Connection) -> None:
        current = conn.execute("PRAGMA user_version").fetchone()[0]
        if current > SCHEMA_VERSION:
            raise StoreError(
                f"Palot's database {self.path} has schema version {current}, "
                f"newer than this Palot understands ({SCHEMA_VERSION})",
                "upgrade Palot to the version that last wrote this database",
            )
        for target in range(current + 1, SCHEMA_VERSION + 1):
            # IMMEDIATE takes the write lock first, so two processes starting at
            # once cannot both apply the same migration; re-check under the lock.
            conn.execute("BEGIN IMMEDIATE")
            try:
                version = conn.execute("PRAGMA user_version").fetchone()[0]
                if version >= target:
                    conn.execute("ROLLBACK")
                    continue
                for statement in _split_statements(MIGRATIONS[target - 1]):
                    conn.execute(statement)
                conn.execute(f"PRAGMA user_version = {target}")
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise

    @contextmanager
    def _db(self, write: bool = False) -> Iterator[sqlite3.Connection]:
        """Hold the lock; for writes, run the block in one IMMEDIATE transaction."""
        with self._lock:
            conn = self._conn
            if conn is None:
                raise StoreError("the store is closed", "open a new Store")
            try:
                if not write:
                    yield conn
                    return
                conn.execute("BEGIN IMMEDIATE")
                try:
                    yield conn
                    conn.execute("COMMIT")
                    self._writes += 1
                except BaseException:
                    # Also covers a COMMIT that failed: never leave a transaction open.
                    if conn.in_transaction:
                        conn.execute("ROLLBACK")
                    raise
            except sqlite3.IntegrityError as exc:
                raise StoreError(f"database constraint failed: {exc}") from exc
            except sqlite3.OperationalError as exc:
                if "locked" in str(exc) or "busy" in str(exc):
                    raise StoreError(
                        f"Palot's database {self.path} stayed locked: {exc}",
                        "another Palot process is holding it; try again",
                    ) from exc
                raise StoreError(f"database error: {exc}") from exc
            except sqlite3.Error as exc:
                raise StoreError(f"database error: {exc}") from exc

    @property
    def schema_version(self) -> int:
        """The schema version recorded in the database file."""
        with self._db() as conn:
            return int(conn.execute("PRAGMA user_version").fetchone()[0])

    def close(self) -> None:
        """Close the connection. Safe to call twice; later calls raise StoreError."""
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- projects -------------------------------------------------------------

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

    # -- audit ----------------------------------------------------------------

    def audit(
        self,
        event: str,
        *,
        agent_id: str | None = None,
        project_id: str | None = None,
        **detail: Any,
    ) -> None:
        """Append a lifecycle event. ``detail`` must be JSON and free of secrets."""
        _check_no_secrets(detail)
        text = _to_json(detail, "audit detail")
        with self._db(write=True) as conn:
            conn.execute(
                "INSERT INTO audit (ts, agent_id, project_id, event, detail)"
                " VALUES (?, ?, ?, ?, ?)",
                (time.time(), agent_id, project_id, event, text),
            )

    def audit_log(self, *, agent_id: str | None = None, limit: int = 200) -> list[AuditEntry]:
        """The newest ``limit`` events (for one agent, if given), oldest first."""
        if limit < 0:
            raise StoreError(f"audit limit must not be negative (got {limit})")
        where = " WHERE agent_id = ?" if agent_id is not None else ""
        params: list[Any] = [agent_id] if agent_id is not None else []
        with self._db() as conn:
            # Order by id, not ts: ids follow commit order even across processes.
            rows = conn.execute(
                "SELECT id, ts, agent_id, project_id, event, detail FROM ("
                f"SELECT * FROM audit{where} ORDER BY id DESC LIMIT ?"
                ") ORDER BY id",
                [*params, limit],
            ).fetchall()
        return [
            AuditEntry(
                id=r[0], ts=r[1], agent_id=r[2], project_id=r[3], event=r[4],
                detail=json.loads(r[5]),
            )
            for r in rows
        ]

    # -- migrations -----------------------------------------------------------

    def add_migration(self, migration: MigrationRecord) -> None:
        """Record a new migration; the manifest must be free of secrets."""
        values = migration.model_dump()
        _check_no_secrets(values["manifest"], "migration manifest")
        values["manifest"] = _to_json(values["manifest"], "migration manifest")
        with self._db(write=True) as conn:
            conn.execute(
                f"INSERT INTO migrations ({', '.join(_MIGRATION_COLS)}) VALUES ({', '.join('?' for _ in _MIGRATION_COLS)})",
                [values[c] for c in _MIGRATION_COLS],
            )

    def get_migration(self, migration_id: str) -> MigrationRecord:
        with self._db() as conn:
            row = conn.execute(
                f"SELECT {', '.join(_MIGRATION_COLS)} FROM migrations WHERE id = ?", (migration_id,)
            ).fetchone()
        if row is None:
            raise StoreError(f"no migration with id {migration_id!r}", "see `palot agents show` for an agent's moves")
        return _migration(row)

    def list_migrations(self, *, state: str | list[str] | None = None, agent_id: str | None = None
                        ) -> list[MigrationRecord]:
        """Migrations, oldest first, optionally in some states or of one agent."""
        clauses: list[str] = []
        params: list[Any] = []
        if state is not None:
            states = [state] if isinstance(state, str) else list(state)
            clauses.append(f"state IN ({', '.join('?' for _ in states)})")
            params += states
        if agent_id is not None:
            clauses.append("agent_id = ?")
            params.append(agent_id)
        where = " WHERE " + " AND ".join(clauses) if clauses else ""
        with self._db() as conn:
            rows = conn.execute(
                f"SELECT {', '.join(_MIGRATION_COLS)} FROM migrations{where} ORDER BY created_at, id", params
            ).fetchall()
        return [_migration(r) for r in rows]

    def update_migration(self, migration_id: str, **fields: Any) -> MigrationRecord:
        _check_fields(fields, _MIGRATION_COLS, "migration")
        fields.setdefault("updated_at", time.time())
        if "manifest" in fields:
            _check_no_secrets(fields["manifest"], "migration manifest")
        with self._db(write=True) as conn:
            return self._update_migration(conn, migration_id, fields)

    def _update_migration(self, conn: sqlite3.Connection, migration_id: str, fields: dict[str, Any]
                          ) -> MigrationRecord:
        row = conn.execute(
            f"SELECT {', '.join(_MIGRATION_COLS)} FROM migrations WHERE id = ?", (migration_id,)
        ).fetchone()
        if row is None:
            raise StoreError(f"no migration with id {migration_id!r}")
        updated = _validated(MigrationRecord, _migration(row), fields)
        values = updated.model_dump(include=set(fields))
        if "manifest" in values:
            values["manifest"] = _to_json(values["manifest"], "migration manifest")
        _update_row(conn, "migrations", migration_id, values)
        return updated

    def journal(self, migration_id: str, step: str, phase: str, **detail: Any) -> None:
        """Append a journal line and note the step on the migration, in one transaction."""
        _check_no_secrets(detail)
        text = _to_json(detail, "journal detail")
        now = time.time()
        with self._db(write=True) as conn:
            conn.execute(
                "INSERT INTO migration_journal (migration_id, ts, step, phase, detail) VALUES (?, ?, ?, ?, ?)",
                (migration_id, now, step, phase, text),
            )
            conn.execute("UPDATE migrations SET step = ?, updated_at = ? WHERE id = ?", (step, now, migration_id))

    def migration_journal(self, migration_id: str) -> list[JournalEntry]:
        with self._db() as conn:
            rows = conn.execute(
                "SELECT migration_id, ts, step, phase, detail FROM migration_journal WHERE migration_id = ?"
                " ORDER BY id", (migration_id,)
            ).fetchall()
        return [JournalEntry(migration_id=r[0], ts=r[1], step=r[2], phase=r[3], detail=json.loads(r[4]))
                for r in rows]

    def commit_migration(self, migration_id: str, agent_id: str, target_env_id: str, source_env_id: str) -> None:
        """The migration's point of no return, atomically: the agent now lives in the target environment."""
        now = time.time()
        with self._db(write=True) as conn:
            conn.execute("UPDATE agents SET environment_id = ?, updated_at = ? WHERE id = ?",
                         (target_env_id, now, agent_id))
            conn.execute("UPDATE environments SET state = 'active' WHERE id = ?", (target_env_id,))
            conn.execute("UPDATE environments SET state = 'migrated' WHERE id = ?", (source_env_id,))
            self._update_migration(conn, migration_id, {"state": "committed", "updated_at": now})

    # -- spending -------------------------------------------------------------

    def add_spend(self, day: str, usd: float, tokens: int) -> tuple[float, int]:
        """Add to what the fleet spent on ``day`` (YYYY-MM-DD); returns the day's new totals."""
        with self._db(write=True) as conn:
            conn.execute(
                "INSERT INTO spend (day, usd, tokens) VALUES (?, ?, ?)"
                " ON CONFLICT(day) DO UPDATE SET usd = usd + excluded.usd, tokens = tokens + excluded.tokens",
                (day, usd, tokens),
            )
            row = conn.execute("SELECT usd, tokens FROM spend WHERE day = ?", (day,)).fetchone()
        return float(row[0]), int(row[1])

    def count_environment_cost(self, agent_id: str, env_id: str, usd: float, day: str
                               ) -> tuple[float, float, int] | None:
        """Count an environment's running cost, now estimated at ``usd`` in all, toward its agent and ``day``.

        Only the increase over what was counted before is added, in one transaction: to the environment's
        ``cost``, the agent's ``environment_cost`` and the day's spend. Returns the agent's new
        ``environment_cost`` and the day's totals, or None when there was nothing new to count.
        """
        with self._db(write=True) as conn:
            row = conn.execute("SELECT cost FROM environments WHERE id = ?", (env_id,)).fetchone()
            if row is None or usd <= float(row[0]):
                return None
            more = usd - float(row[0])
            conn.execute("UPDATE environments SET cost = ? WHERE id = ?", (usd, env_id))
            updated = conn.execute(
                "UPDATE agents SET environment_cost = environment_cost + ?, updated_at = ? WHERE id = ?"
                " RETURNING environment_cost", (more, time.time(), agent_id)).fetchone()
            if updated is None:
                raise AgentNotFound(f"no agent with id {agent_id!r}", _NOT_FOUND_FIX)
            conn.execute(
                "INSERT INTO spend (day, usd, tokens) VALUES (?, ?, 0)"
                " ON CONFLICT(day) DO UPDATE SET usd = usd + excluded.usd", (day, more))
            total = conn.execute("SELECT usd, tokens FROM spend WHERE day = ?", (day,)).fetchone()
        return float(updated[0]), float(total[0]), int(total[1])

    def spend(self, day: str) -> tuple[float, int]:
        """What the fleet spent on ``day``: (USD, tokens)."""
        with self._db() as conn:
            row = conn.execute("SELECT usd, tokens FROM spend WHERE day = ?", (day,)).fetchone()
        return (float(row[0]), int(row[1])) if row else (0.0, 0)

    # -- permission requests --------------------------------------------------

    def record_permission(self, request: PermissionRecord) -> PermissionRecord:
        """Remember a request when first seen; seen again (a restart), the first record stands and is returned."""
        with self._db(write=True) as conn:
            conn.execute(
                "INSERT OR IGNORE INTO permission_requests (id, agent_id, tool, patterns, asked_at)"
                " VALUES (?, ?, ?, ?, ?)",
                (request.id, request.agent_id, request.tool, json.dumps(request.patterns), request.asked_at),
            )
            row = conn.execute(f"SELECT {', '.join(_PERMISSION_COLS)} FROM permission_requests WHERE id = ?",
                               (request.id,)).fetchone()
        return _permission(row)

    def answer_permission(self, request_id: str, reply: str, answered_by: str) -> bool:
        """Mark a request answered; False when it already was (so nothing answers it twice)."""
        with self._db(write=True) as conn:
            cursor = conn.execute(
                "UPDATE permission_requests SET answered_at = ?, reply = ?, answered_by = ?"
                " WHERE id = ? AND answered_at IS NULL",
                (time.time(), reply, answered_by, request_id),
            )
        return cursor.rowcount == 1

    def get_permission(self, request_id: str) -> PermissionRecord | None:
        with self._db() as conn:
            row = conn.execute(f"SELECT {', '.join(_PERMISSION_COLS)} FROM permission_requests WHERE id = ?",
                               (request_id,)).fetchone()
        return _permission(row) if row else None

    def open_permissions(self) -> list[PermissionRecord]:
        """Requests not answered yet, oldest first."""
        with self._db() as conn:
            rows = conn.execute(f"SELECT {', '.join(_PERMISSION_COLS)} FROM permission_requests"
                                " WHERE answered_at IS NULL ORDER BY asked_at, id").fetchall()
        return [_permission(r) for r in rows]

    # -- templates ------------------------------------------------------------

    def put_template(self, template: TemplateRecord) -> tuple[TemplateRecord, bool]:
        """Add a template, or replace the one of its name and project (keeping its creation time);
        returns it as stored and whether it replaced one."""
        cols = ", ".join(_TEMPLATE_COLS)
        with self._db(write=True) as conn:
            old = conn.execute("SELECT created_at FROM templates WHERE project_path = ? AND name = ?",
                               (template.project_path, template.name)).fetchone()
            if old is not None:
                template = template.model_copy(update={"created_at": old[0]})
            marks = ", ".join("?" for _ in _TEMPLATE_COLS)
            conn.execute(f"INSERT OR REPLACE INTO templates ({cols}) VALUES ({marks})",
                         [getattr(template, c) for c in _TEMPLATE_COLS])
        return template, old is not None

    def get_template(self, project_path: str, name: str) -> TemplateRecord | None:
        """The template ``name`` of exactly this project ("" : of every project), or None."""
        with self._db() as conn:
            row = conn.execute(f"SELECT {', '.join(_TEMPLATE_COLS)} FROM templates"
                               " WHERE project_path = ? AND name = ?", (project_path, name)).fetchone()
        return TemplateRecord.model_validate(dict(zip(_TEMPLATE_COLS, row))) if row else None

    def list_templates(self, *, name: str | None = None) -> list[TemplateRecord]:
        """Every template (or every one called ``name``), by name, then project ("" first)."""
        where, params = (" WHERE name = ?", [name]) if name is not None else ("", [])
        with self._db() as conn:
            rows = conn.execute(f"SELECT {', '.join(_TEMPLATE_COLS)} FROM templates{where}"
                                " ORDER BY name, project_path", params).fetchall()
        return [TemplateRecord.model_validate(dict(zip(_TEMPLATE_COLS, r))) for r in rows]

    def delete_template(self, project_path: str, name: str) -> bool:
        """Remove a template; False when there was none."""
        with self._db(write=True) as conn:
            cursor = conn.execute("DELETE FROM templates WHERE project_path = ? AND name = ?", (project_path, name))
        return cursor.rowcount == 1


# --- helpers used by Store -------------------------------------------------


def _check_fields(fields: dict[str, Any], columns: Sequence[str], what: str) -> None:
    unknown = sorted(set(fields) - set(columns))
    if unknown:
        raise StoreError(
            f"unknown {what} field(s): {', '.join(unknown)}",
            f"valid fields are: {', '.join(c for c in columns if c != 'id')}",
        )
    if "id" in fields:
        raise StoreError(f"the {what} id cannot be changed", f"add a new {what} instead")


def _validated(model: type[BaseModel], current: BaseModel, fields: dict[str, Any]) -> Any:
    """``current`` with ``fields`` applied, type-checked by the model."""
    try:
        return model.model_validate({**current.model_dump(), **fields})
    except ValidationError as exc:
        raise StoreError(f"invalid {model.__name__} update: {exc}") from exc


def _update_row(conn: sqlite3.Connection, table: str, row_id: str, values: dict[str, Any]) -> None:
    # Column names come from the model's fields (checked above), never from callers' strings.
    assignments = ", ".join(f"{c} = ?" for c in values)
    conn.execute(f"UPDATE {table} SET {assignments} WHERE id = ?", [*values.values(), row_id])


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
