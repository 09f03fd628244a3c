"""What happened and what it cost: the audit log of lifecycle events, the fleet's daily spend (and the
cloud running cost counted toward it), and permission requests from asked to answered.
"""

from __future__ import annotations

import json
import time
from typing import Any

from palot.errors import AgentNotFound, StoreError

from .agents import _NOT_FOUND_FIX
from .database import Database
from .keys import _check_no_secrets, _to_json
from .records import _PERMISSION_COLS, AuditEntry, PermissionRecord, _permission


class ActivityTables(Database):
    """The ``audit``, ``spend`` and ``permission_requests`` tables."""

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
