"""The service and what it knows beyond single agents: its status, the projects, today's spend, the settings
in use, the audit log and the models agents can use."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from .words import _Request

class Project(BaseModel):
    id: str
    name: str
    path: str
    created_at: float | None = None


class AuditEntry(BaseModel):
    id: int
    ts: float
    agent_id: str | None = None
    project_id: str | None = None
    event: str
    detail: dict[str, Any] = Field(default_factory=dict)


class Spend(BaseModel):
    """What the fleet spent today (local calendar day): every agent's cost and tokens, cloud running time."""

    day: str  # YYYY-MM-DD
    usd: float = 0.0
    tokens: int = 0
    budget_usd: float | None = None  # the day's limit across all agents, when set
    budget_tokens: int | None = None


class SettingsView(BaseModel):
    """The settings the service runs with, and whether the file on disk could be read."""

    path: str
    loaded_at: float | None = None  # when the settings in use were read (None: defaults, no file)
    error: str | None = None  # the problem of the file on disk, when it has one (the last good settings hold)
    settings: dict[str, Any] = Field(default_factory=dict)


class ServiceStatus(BaseModel):
    """How the Palot service is doing (``palot service status``, ``palot doctor``)."""

    palot_version: str
    api_version: int
    pid: int
    home: str
    started_at: float
    opencode_url: str | None = None
    opencode_pid: int | None = None
    opencode_connected: bool
    opencode_restarts: int
    agents: int
    clients: int  # event-stream clients attached now
    upstream_subscriptions: int  # event streams the service holds open to OpenCode servers
    tcp: str | None = None  # the optional loopback listener, when on
    spend: Spend | None = None  # today's spending across the fleet
    inbox: int = 0  # permission requests waiting for a person
    settings_error: str | None = None  # settings.toml has a mistake (the last good settings hold)
    warm_containers: int = 0  # container environments started ahead of need, ready for a spawn or a move


class AuditRequest(_Request):
    agent: str | None = Field(None, description="only this agent's events")
    limit: int = Field(200, ge=0, le=10000)


class ModelsRequest(_Request):
    project: str | None = Field(None, description="the project whose OpenCode config counts")
