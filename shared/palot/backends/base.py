"""The runtime backend protocol: where an agent's environment lives.

Every tier (worktree, container, cloud) provisions an environment with a
working directory on its own branch, tells which OpenCode server serves it,
and can archive (stop, keep the branch) or destroy it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from ..opencode import OpenCodeClient
from ..store import EnvironmentRecord


@dataclass(frozen=True)
class EnvironmentSpec:
    """What an agent's new environment should be."""

    project_path: Path
    project_id: str
    project_name: str
    branch: str
    base_commit: str
    setup_script: str | None = None
    options: dict[str, Any] | None = None  # tier-specific (container: memory, cpus, pids, network, ports)


class RuntimeBackend(Protocol):
    """One tier of environments."""

    type: str

    async def provision(self, spec: EnvironmentSpec) -> EnvironmentRecord:
        """Create the environment (branch, working directory, setup) and return its record."""
        ...

    def client_for(self, env: EnvironmentRecord) -> OpenCodeClient:
        """The client of the OpenCode server that serves this environment."""
        ...

    def host_path(self, env: EnvironmentRecord) -> Path:
        """Where the environment's files are on this machine (for git diff and apply)."""
        ...

    async def resume(self, env: EnvironmentRecord) -> None:
        """Reconnect to an active environment after Palot restarts."""
        ...

    async def failure(self, env: EnvironmentRecord) -> str | None:
        """Why the environment failed its agent (died, out of memory), or None."""
        ...

    async def publish_branch(self, env: EnvironmentRecord, message: str) -> None:
        """Commit the agent's uncommitted work and make its branch exist in the user's repository."""
        ...

    async def archive(self, env: EnvironmentRecord) -> None:
        """Stop the environment; keep every change on its branch."""
        ...

    async def destroy(self, env: EnvironmentRecord) -> None:
        """Remove the environment and its branch."""
        ...

    async def status(self, env: EnvironmentRecord) -> str:
        """``running``, ``stopped`` or ``missing``."""
        ...

    async def resources(self, env: EnvironmentRecord) -> dict[str, Any] | None:
        """CPU/memory/disk use where the tier can measure it."""
        ...
