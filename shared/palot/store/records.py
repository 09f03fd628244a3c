"""The records Palot keeps: one pydantic model per table row, the columns each table stores, and the
conversion of a database row back into its record.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from pydantic import BaseModel


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


_PROJECT_COLS = ("id", "path", "name", "created_at")
_ENV_COLS = tuple(EnvironmentRecord.model_fields)
_AGENT_COLS = tuple(AgentRecord.model_fields)
_MIGRATION_COLS = tuple(MigrationRecord.model_fields)
_PERMISSION_COLS = tuple(PermissionRecord.model_fields)
_TEMPLATE_COLS = tuple(TemplateRecord.model_fields)


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
