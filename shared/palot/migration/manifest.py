"""The migration manifest: everything a move carries, layer by layer, and never a secret.

It is stored with the migration (so a restart after a crash knows what to
undo or finish) and returned to front ends. Bulky payloads (the git bundle,
the session export) are files in the migration's directory; the manifest
names them.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

from ..api import STEPS, MigrationResult  # noqa: F401 - defined once in the API
from ..backends.base import ProcessInfo

class EnvironmentRef(BaseModel):
    type: str
    environment_id: str
    directory: str | None = None
    options: dict[str, Any] = Field(default_factory=dict)  # the target tier's options (container limits …)


class GitState(BaseModel):
    branch: str
    base_commit: str
    head_commit: str | None = None  # the branch head when the code was exported
    snapshot_commit: str | None = None  # HEAD plus uncommitted and untracked work, as a commit
    snapshot_ref: str
    bundle: str = "code.bundle"  # file in the migration's directory
    remote_url: str | None = None


class SessionState(BaseModel):
    id: str
    title: str | None = None
    message_count: int = 0
    export: str = "session.json"  # file in the migration's directory
    was_busy: bool = False  # the move stopped a turn: the agent is resumed with a note
    resumed: bool = False  # the resume note was sent
    last_prompt: str | None = None


class ProcessRecord(BaseModel):
    command: str
    cwd: str
    ports: list[int] = Field(default_factory=list)

    @classmethod
    def of(cls, process: ProcessInfo) -> ProcessRecord:
        return cls(command=process.command, cwd=process.cwd, ports=list(process.ports))

    def info(self) -> ProcessInfo:
        return ProcessInfo(command=self.command, cwd=self.cwd, ports=tuple(self.ports))


class EnvironmentState(BaseModel):
    setup_script: str | None = None
    processes: list[ProcessRecord] = Field(default_factory=list)


class MigrationManifest(BaseModel):
    """What moves with an agent from one environment to another."""

    version: Literal[1] = 1
    id: str
    agent_id: str
    created_at: float
    status_before: str
    source: EnvironmentRef
    target: EnvironmentRef
    git: GitState
    session: SessionState
    environment: EnvironmentState = Field(default_factory=EnvironmentState)
    resume_note: str | None = None


