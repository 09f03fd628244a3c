"""Moves of agents between environments: the migration records, their journal, and the commit point that
hands the agent to its new environment in one transaction.
"""

from __future__ import annotations

import json
import sqlite3
import time
from typing import Any

from palot.errors import StoreError

from .database import Database, _check_fields, _update_row, _validated
from .keys import _check_no_secrets, _to_json
from .records import _MIGRATION_COLS, JournalEntry, MigrationRecord, _migration


class MoveTables(Database):
    """The ``migrations`` and ``migration_journal`` tables."""

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
