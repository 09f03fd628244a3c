"""The runtime backend protocol: where an agent's environment lives.

Every tier (worktree, container, cloud) provisions an environment with a
working directory on its own branch, tells which OpenCode server serves it,
and can archive (stop, keep the branch) or destroy it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from .. import git
from ..opencode import OpenCodeClient
from ..ports import PortRange
from ..store import EnvironmentRecord

#: Seconds a setup script may run, in any tier, before it is stopped.
SETUP_TIMEOUT = 600.0


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
    env_id: str | None = None  # chosen by the caller (a migration journals it first); generated when None
    # The branch arrives later through import_code (a migration): create the environment detached at
    # base_commit and leave the branch alone.
    branch_from_bundle: bool = False
    dev_ports: PortRange | None = None  # the agent's dev-server ports (PALOT_PORT, PALOT_PORTS)


@dataclass(frozen=True)
class ProcessInfo:
    """A process that was running in an environment: restarted in the target of a move, not moved live."""

    command: str
    cwd: str  # relative to the environment's working directory
    ports: tuple[int, ...] = ()


async def clone_project(spec: EnvironmentSpec, dest: Path) -> None:
    """A clone of the project at ``dest`` on the agent's new branch from its base commit (a container's
    workspace, a cloud environment's local mirror); detached at the base commit for a move, whose branch
    arrives with the agent's code."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    await git.run_git("clone", "--quiet", "--no-checkout", str(spec.project_path), str(dest), cwd=dest.parent)
    git.trust(dest)
    if spec.branch_from_bundle:
        await git.run_git("checkout", "--quiet", "--detach", spec.base_commit, cwd=dest)
    else:
        await git.run_git("checkout", "--quiet", "-b", spec.branch, spec.base_commit, cwd=dest)


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

    def options_of(self, env: EnvironmentRecord) -> dict[str, Any] | None:
        """The options the environment was made with, as a spawn takes them (None for a tier without any):
        a retry makes its new environment alike, whether the old one was spawned or moved there."""
        ...

    async def sync(self, env: EnvironmentRecord) -> Path:
        """Bring the environment's files up to date at :meth:`host_path` and return it (a no-op for tiers
        whose files already are on this machine; the cloud tier fetches them)."""
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

    # --- moving agents between environments --------------------------------

    async def preflight(self, spec: EnvironmentSpec, head: str) -> None:
        """Refuse, before anything changes, a move into this tier that cannot work (engine missing, branch
        taken, bad options). ``head`` is the agent's branch head."""
        ...

    async def export_code(self, env: EnvironmentRecord, bundle: Path, snapshot_ref: str) -> tuple[str, str]:
        """Bundle the agent's branch and a snapshot of its working tree; return (head, snapshot) commits."""
        ...

    async def import_code(self, env: EnvironmentRecord, bundle: Path, snapshot_ref: str) -> None:
        """Put the bundle's branch and working tree into a ``branch_from_bundle`` environment."""
        ...

    async def export_session(self, env: EnvironmentRecord, session_id: str) -> bytes:
        """``opencode export`` of the session, run where the session lives."""
        ...

    async def import_session(self, env: EnvironmentRecord, data: bytes) -> None:
        """``opencode import`` of an export, run in the environment's working directory."""
        ...

    async def run_setup(self, env: EnvironmentRecord, script: str) -> None:
        """Run a setup script in the environment; a failure raises with its output."""
        ...

    async def processes(self, env: EnvironmentRecord) -> list[ProcessInfo]:
        """What is running in the environment besides OpenCode (dev servers, watchers)."""
        ...

    async def start_process(self, env: EnvironmentRecord, process: ProcessInfo) -> None:
        """Start a recorded process again in this environment, in the background."""
        ...

    async def stop_processes(self, env: EnvironmentRecord, processes: list[ProcessInfo]) -> None:
        """Stop processes that were recorded (they were restarted in the target of a move)."""
        ...

    def reserve(self, options: dict[str, Any] | None) -> str | None:
        """An environment id already made ready (a warm container) for a move to journal as its target, or
        None; ``provision`` with that id uses it, ``discard`` removes it."""
        ...

    async def discard(self, env_id: str, spec: EnvironmentSpec) -> None:
        """Remove an environment a move created, even half made, keeping every branch (a rollback)."""
        ...
