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

The modules (see README.md): ``records`` (the row models), ``schema`` (the SQL scripts), ``keys`` (what
may be stored), ``database`` (the connection), and one per table group: ``agents``, ``moves``,
``activity``, ``templates``. :class:`Store` is all the groups on one connection.
"""

from __future__ import annotations

from .activity import ActivityTables
from .agents import AgentTables
from .moves import MoveTables
from .records import (
    AgentRecord,
    AuditEntry,
    EnvironmentRecord,
    JournalEntry,
    MigrationRecord,
    PermissionRecord,
    ProjectRecord,
    TemplateRecord,
)
from .schema import MIGRATIONS, SCHEMA_VERSION
from .templates import TemplateTables

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


class Store(AgentTables, MoveTables, ActivityTables, TemplateTables):
    """Palot's SQLite-backed state. Safe to share between threads and processes."""
