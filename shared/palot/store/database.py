"""The connection every table group shares: opening (and migrating) the file, one lock, transactions that
roll back on any error, and the checks every update makes.

Stdlib ``sqlite3`` in WAL mode so several Palot processes can share the file (readers never block the
writer); one connection per store, guarded by a ``threading.Lock``: every call is sub-millisecond, so async
code calls it directly instead of paying for a thread hop.
"""

from __future__ import annotations

import os
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from palot.errors import StoreError

from .schema import migrate

_BUSY_TIMEOUT_MS = 5000


class Database:
    """One SQLite file, opened and migrated; the table groups of :class:`~palot.store.Store` build on it."""

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
            migrate(conn, self.path)
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
