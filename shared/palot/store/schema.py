"""The database's schema: the ordered SQL scripts that build it (:data:`MIGRATIONS`), the version they
reach, and applying the missing ones to a connection, each in its own transaction.

The version lives in ``PRAGMA user_version``.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from palot.errors import StoreError

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


def migrate(conn: sqlite3.Connection, path: Path) -> None:
    """Bring the database on ``conn`` (the file at ``path``) to :data:`SCHEMA_VERSION`; safe when several
    processes start at once. Refuses a database newer than this Palot."""
    current = conn.execute("PRAGMA user_version").fetchone()[0]
    if current > SCHEMA_VERSION:
        raise StoreError(
            f"Palot's database {path} has schema version {current}, "
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
