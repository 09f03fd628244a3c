"""The worktree tier: a ``git worktree`` under Palot's data dir, served by the shared server."""

from __future__ import annotations

import asyncio
import os
import re
import secrets
import shutil
import time
from pathlib import Path
from typing import Any, Callable

from .. import git
from ..errors import PalotError
from ..opencode import OpenCodeClient
from ..store import EnvironmentRecord
from .base import EnvironmentSpec

#: Seconds a setup script may run before it is stopped.
SETUP_TIMEOUT = 600.0


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:40].strip("-") or "project"


class WorktreeBackend:
    """Environments as git worktrees on ``palot/<slug>`` branches."""

    type = "worktree"

    def __init__(self, root: Path, client: Callable[[], OpenCodeClient]) -> None:
        self.root = root
        self._client = client

    def worktree_path(self, spec: EnvironmentSpec) -> Path:
        project_dir = f"{_slug(spec.project_name)}-{spec.project_id[-6:]}"
        return self.root / project_dir / spec.branch.replace("/", "-")

    async def provision(self, spec: EnvironmentSpec) -> EnvironmentRecord:
        path = self.worktree_path(spec)
        await git.add_worktree(spec.project_path, path, spec.branch, spec.base_commit)
        if spec.setup_script:
            try:
                await run_setup(spec.setup_script, path, spec.project_path)
            except PalotError:
                await git.remove_worktree(spec.project_path, path, force=True)
                await git.delete_branch(spec.project_path, spec.branch, force=True)
                raise
        return EnvironmentRecord(
            id="env_" + secrets.token_hex(6), type=self.type, directory=str(path), branch=spec.branch,
            base_commit=spec.base_commit, server_url=None, state="active", created_at=time.time(),
            data={"project_path": str(spec.project_path)},
        )

    def client_for(self, env: EnvironmentRecord) -> OpenCodeClient:
        return self._client()

    def host_path(self, env: EnvironmentRecord) -> Path:
        return Path(env.directory)

    async def resume(self, env: EnvironmentRecord) -> None:
        """Nothing to do: the shared server's event stream already covers worktrees."""

    async def failure(self, env: EnvironmentRecord) -> str | None:
        return None

    async def publish_branch(self, env: EnvironmentRecord, message: str) -> None:
        # A worktree's branch already lives in the user's repository.
        if Path(env.directory).exists():
            await git.checkpoint(Path(env.directory), message)

    async def archive(self, env: EnvironmentRecord) -> None:
        # Commit whatever the agent left uncommitted, so removing the worktree loses nothing.
        await self.publish_branch(env, "palot: archive checkpoint (uncommitted agent work)")
        await git.remove_worktree(Path(env.data["project_path"]), Path(env.directory), force=True)

    async def destroy(self, env: EnvironmentRecord) -> None:
        project = Path(env.data["project_path"])
        await git.remove_worktree(project, Path(env.directory), force=True)
        if env.branch:
            await git.delete_branch(project, env.branch, force=True)

    async def status(self, env: EnvironmentRecord) -> str:
        if env.state != "active":
            return "stopped"
        return "running" if Path(env.directory).is_dir() else "missing"

    async def resources(self, env: EnvironmentRecord) -> dict[str, Any] | None:
        directory = Path(env.directory)
        if not directory.is_dir():
            return None
        size = await asyncio.to_thread(_tree_size, directory)
        return {"disk_bytes": size}


def _tree_size(root: Path) -> int:
    total = 0
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if d != ".git"]
        for name in filenames:
            try:
                total += os.lstat(os.path.join(dirpath, name)).st_size
            except OSError:
                pass
    return total


async def run_setup(script: str, cwd: Path, project_path: Path) -> str:
    """Run a setup script with bash in the new environment; a failure raises with its output.

    ``$PALOT_PROJECT`` names the user's checkout, so the common case of copying
    ``.env*`` files is ``cp "$PALOT_PROJECT"/.env* . 2>/dev/null || true``.
    """
    bash = shutil.which("bash") or "/bin/sh"
    env = {**os.environ, "PALOT_PROJECT": str(project_path), "PALOT_WORKTREE": str(cwd)}
    proc = await asyncio.create_subprocess_exec(
        bash, "-c", script, cwd=cwd, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT, start_new_session=True,
    )
    try:
        out, _ = await asyncio.wait_for(proc.communicate(), SETUP_TIMEOUT)
    except asyncio.TimeoutError:
        proc.kill()
        raise PalotError(f"the setup script ran longer than {SETUP_TIMEOUT:.0f} s and was stopped",
                         "make it faster, or run the slow part from the agent's prompt")
    text = out.decode(errors="replace")
    if proc.returncode != 0:
        raise PalotError(f"the setup script failed with exit code {proc.returncode}: {text.strip()[-800:]}",
                         "fix the script (it runs with bash in the new worktree, $PALOT_PROJECT is your checkout)")
    return text
