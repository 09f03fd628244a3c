"""Looking after the fleet: bulk actions on the agents a filter selects, ``gc`` (what no agent owns) and
``du`` (the disk each agent, project and environment type uses)."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel, Field, field_validator, model_validator

from .words import AgentStatus, _Request

#: What ``bulk`` can do to many agents at once.
BULK_OPERATIONS = ("archive", "abort", "destroy")
_AGE = r"(\d+(?:\.\d+)?)\s*([smhdw])"
_AGE_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def age_seconds(text: str) -> float:
    """``7d``, ``12h``, ``30m``, ``90s``, ``2w`` → seconds; ValueError naming the form otherwise."""
    found = re.fullmatch(_AGE, text.strip().lower())
    if found is None:
        raise ValueError(f"'{text}' is not an age: use a number and a unit, e.g. 7d, 12h, 30m, 90s or 2w")
    return float(found.group(1)) * _AGE_UNITS[found.group(2)]


class BulkItem(BaseModel):
    """One agent a bulk action selected, and what happened to it (or would, in a dry run)."""

    agent_id: str
    title: str
    status: AgentStatus  # as it was when selected
    project_name: str
    environment: str
    branch: str | None = None
    updated_at: float
    # would (a dry run's plan), done, skipped (the action does not apply to it), failed (its error in message)
    outcome: Literal["would", "done", "skipped", "failed"]
    message: str


class BulkResult(BaseModel):
    """The answer of ``bulk``: each selected agent with its outcome; a dry run changes nothing."""

    operation: str
    dry_run: bool
    items: list[BulkItem] = Field(default_factory=list)

    def count(self, outcome: str) -> int:
        return sum(1 for i in self.items if i.outcome == outcome)


class Orphan(BaseModel):
    """Something Palot made that no agent record owns any more (``palot gc``)."""

    kind: str  # worktree, branch, container, volume, relay_socket, environment_files, cloud, move, lock, record
    name: str  # a path, branch, container, volume or environment id, or an agent id (a record)
    project: str | None = None  # the project's path, when it belongs to one
    size: int | None = None  # bytes on disk; None when it cannot be measured
    why: str  # why it is an orphan
    safe: bool  # holds no unmerged, unapplied or uncommitted work: `palot gc --yes` removes it
    work: str | None = None  # the work it holds, when not safe
    keep: str | None = None  # the command that keeps that work (then `palot gc --yes` can remove the rest)
    removed: bool = False
    error: str | None = None  # why removing it failed


class GcReport(BaseModel):
    """What ``palot gc`` found and, with ``yes``, did."""

    orphans: list[Orphan] = Field(default_factory=list)
    removing: bool = False  # yes was given: safe orphans (all, with force) were removed
    removed: int = 0
    freed: int = 0  # bytes removed
    unchecked: list[str] = Field(default_factory=list)  # what could not be looked at, and why


class DiskUseItem(BaseModel):
    """One thing on disk that belongs to an agent (or to Palot as a whole: the agent image)."""

    kind: str  # worktree, clone, container_layer, image, move
    name: str  # a path, container or image
    bytes: int
    agent_id: str | None = None
    project: str | None = None  # the project's name
    environment: str | None = None  # the environment type


class DiskUse(BaseModel):
    """Disk used per agent, project and environment type (``palot du``)."""

    items: list[DiskUseItem] = Field(default_factory=list)
    by_agent: dict[str, int] = Field(default_factory=dict)
    by_project: dict[str, int] = Field(default_factory=dict)
    by_environment: dict[str, int] = Field(default_factory=dict)
    total: int = 0
    unchecked: list[str] = Field(default_factory=list)  # what could not be measured, and why


class BulkRequest(_Request):
    operation: Literal["archive", "abort", "destroy"] = Field(description="what to do to each selected agent")
    status: list[AgentStatus] | None = Field(None, description="only agents in these statuses")
    project: str | None = Field(None, description="only this project's agents (path, name or id)")
    environment: Literal["worktree", "container", "cloud"] | None = Field(
        None, description="only agents in this environment type")
    older_than: str | None = Field(None, description="only agents unchanged for this long, e.g. 7d, 12h, 30m")
    title: str | None = Field(None, description="only agents whose title contains this (any case)")
    agents: list[str] | None = Field(None, description="only these agents (ids), e.g. those a dry run listed")
    force: bool = Field(False, description="destroy: also agents with work neither applied nor merged (lost)")
    dry_run: bool = Field(True, description="only list what would happen (the default); false to do it")

    @field_validator("older_than")
    @classmethod
    def _age(cls, v: str | None) -> str | None:
        if v is not None:
            age_seconds(v)
        return v

    @model_validator(mode="after")
    def _selected(self) -> "BulkRequest":
        if not (self.status or self.project or self.environment or self.older_than or self.title or self.agents):
            raise ValueError("say which agents: status, project, environment, older_than, title and/or agents "
                             "(a bulk action never applies to every agent unasked)")
        return self


class GcRequest(_Request):
    yes: bool = Field(False, description="remove the orphans that hold no unmerged or uncommitted work")
    force: bool = Field(False, description="with yes: remove the others too (their work is lost)")

    @model_validator(mode="after")
    def _force_needs_yes(self) -> "GcRequest":
        if self.force and not self.yes:
            raise ValueError("force only applies with yes: add yes (`palot gc --yes --force`), or drop force to look")
        return self
