"""The worktree tier: a ``git worktree`` under Palot's data dir, served by the shared server."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import secrets
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

from .. import git, procscan
from ..errors import BranchExists, InvalidInput, OpenCodeCommandFailed, PalotError, SetupScriptFailed
from ..opencode import OpenCodeClient
from ..ports import PortRange
from ..store import EnvironmentRecord
from .base import SETUP_TIMEOUT, EnvironmentSpec, ProcessInfo


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:40].strip("-") or "project"


class WorktreeBackend:
    """Environments as git worktrees on ``palot/<slug>`` branches."""

    type = "worktree"

    def __init__(self, root: Path, client: Callable[[], OpenCodeClient],
                 opencode: Callable[[], tuple[Path, dict[str, str]]] | None = None,
                 logs: Path | None = None) -> None:
        self.root = root
        self._client = client
        self._opencode = opencode  # the shared server's binary and environment, for `opencode export/import`
        self._logs = logs or root.parent / "process-logs"

    def worktree_path(self, spec: EnvironmentSpec) -> Path:
        project_dir = f"{_slug(spec.project_name)}-{spec.project_id[-6:]}"
        return self.root / project_dir / spec.branch.replace("/", "-")

    async def provision(self, spec: EnvironmentSpec) -> EnvironmentRecord:
        path = self.worktree_path(spec)
        if spec.branch_from_bundle:
            # A move: the branch comes with the agent's code (import_code); start detached.
            path.parent.mkdir(parents=True, exist_ok=True)
            async with git.worktree_lock(spec.project_path):
                await git.run_git("worktree", "add", "--quiet", "--detach", "--", str(path.absolute()),
                                  spec.base_commit, cwd=spec.project_path)
        else:
            await git.add_worktree(spec.project_path, path, spec.branch, spec.base_commit)
        data: dict[str, Any] = {"project_path": str(spec.project_path)}
        if spec.dev_ports is not None:
            data["dev_ports"] = spec.dev_ports.as_data()
        if spec.setup_script:
            try:
                await run_setup(spec.setup_script, path, spec.project_path, _agent_env(data))
            except PalotError:
                await git.remove_worktree(spec.project_path, path, force=True)
                await git.delete_branch(spec.project_path, spec.branch, force=True)
                raise
        return EnvironmentRecord(
            id=spec.env_id or "env_" + secrets.token_hex(6), type=self.type, directory=str(path), branch=spec.branch,
            base_commit=spec.base_commit, server_url=None, state="active", created_at=time.time(), data=data,
        )

    def client_for(self, env: EnvironmentRecord) -> OpenCodeClient:
        return self._client()

    def host_path(self, env: EnvironmentRecord) -> Path:
        return Path(env.directory)

    def options_of(self, env: EnvironmentRecord) -> dict[str, Any] | None:
        return None

    async def sync(self, env: EnvironmentRecord) -> Path:
        return self.host_path(env)

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


    # --- moving agents ------------------------------------------------------

    async def preflight(self, spec: EnvironmentSpec, head: str) -> None:
        if spec.options:
            raise InvalidInput("environment options (memory, cpus, network, ports …) apply to containers only",
                               "drop them when moving to a worktree")
        path = self.worktree_path(spec)
        if path.exists() and (not path.is_dir() or any(path.iterdir())):
            raise InvalidInput(f"the worktree location {path} is already taken",
                               "remove what is there, or archive the agent that uses it")
        if await git.branch_exists(spec.project_path, spec.branch):
            current = await git.resolve_commit(spec.project_path, spec.branch)
            # The agent's own branch (kept when it left this repository) may only move forward.
            if current != head and not await git.is_ancestor(spec.project_path, current, head):
                raise BranchExists(
                    f"branch '{spec.branch}' already exists in {spec.project_path} with other commits",
                    f"rename or delete that branch (`git -C {spec.project_path} branch -m {spec.branch} NEW`), "
                    "then move the agent again")
            if spec.branch in await _checked_out_branches(spec.project_path):
                raise BranchExists(f"branch '{spec.branch}' is checked out in {spec.project_path}",
                                   "switch that checkout to another branch, then move the agent again")

    async def export_code(self, env: EnvironmentRecord, bundle: Path, snapshot_ref: str) -> tuple[str, str]:
        assert env.base_commit
        return await git.bundle_work(Path(env.directory), bundle, snapshot_ref, env.base_commit)

    async def import_code(self, env: EnvironmentRecord, bundle: Path, snapshot_ref: str) -> None:
        project, directory = Path(env.data["project_path"]), Path(env.directory)
        assert env.branch
        await git.fetch_bundle(project, bundle, [f"+{snapshot_ref}:{snapshot_ref}"])
        # The snapshot's parent is the agent's branch head. Into the user's repository the branch only ever
        # fast-forwards (preflight checked it; update-ref re-checks the old value).
        head = await git.resolve_commit(project, f"{snapshot_ref}^")
        if await git.branch_exists(project, env.branch):
            old = await git.resolve_commit(project, env.branch)
            if not await git.is_ancestor(project, old, head):
                raise BranchExists(f"branch '{env.branch}' in {project} moved on while the agent was moving",
                                   "rename that branch, then move the agent again")
            await git.run_git("update-ref", f"refs/heads/{env.branch}", head, old, cwd=project)
        else:
            await git.run_git("update-ref", f"refs/heads/{env.branch}", head, "0" * 40, cwd=project)
        await git.run_git("checkout", "--quiet", env.branch, cwd=directory)
        await git.restore_snapshot(directory, snapshot_ref)
        await git.delete_ref(project, snapshot_ref)

    async def _opencode_cli(self) -> tuple[Path, dict[str, str]]:
        if self._opencode is None:
            raise OpenCodeCommandFailed("this Palot cannot run the OpenCode command line", "start Palot with its server")
        return await asyncio.to_thread(self._opencode)  # checks the binary's version: a process, the first time

    async def export_session(self, env: EnvironmentRecord, session_id: str) -> bytes:
        binary, cli_env = await self._opencode_cli()
        # Into a file, not a pipe: OpenCode 1.18 exits before a piped stdout drains (cut at 384 KiB).
        with tempfile.TemporaryFile() as out:
            await _run_opencode([str(binary), "export", session_id], Path(env.directory), cli_env, stdout=out)
            out.seek(0)
            return await asyncio.to_thread(out.read)  # a long conversation is megabytes

    async def import_session(self, env: EnvironmentRecord, data: bytes) -> None:
        binary, cli_env = await self._opencode_cli()
        fd, name = tempfile.mkstemp(prefix="palot-session-", suffix=".json")
        try:
            await asyncio.to_thread(_write_all, fd, data)  # a long conversation is megabytes
            await _run_opencode([str(binary), "import", name], Path(env.directory), cli_env)
        finally:
            os.unlink(name)

    async def run_setup(self, env: EnvironmentRecord, script: str) -> None:
        await run_setup(script, Path(env.directory), Path(env.data["project_path"]), _agent_env(env.data))

    async def processes(self, env: EnvironmentRecord) -> list[ProcessInfo]:
        found = await asyncio.to_thread(procscan.scan, env.directory)
        return [ProcessInfo(command=p["command"], cwd=p["cwd"], ports=tuple(p["ports"])) for p in found]

    async def start_process(self, env: EnvironmentRecord, process: ProcessInfo) -> None:
        self._logs.mkdir(parents=True, exist_ok=True)
        log_path = self._logs / f"{env.id}.log"
        with open(log_path, "ab") as out:
            await asyncio.to_thread(
                subprocess.Popen, ["bash", "-c", process.command], cwd=Path(env.directory) / process.cwd,
                env={**os.environ, **_agent_env(env.data)},
                stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)

    async def stop_processes(self, env: EnvironmentRecord, processes: list[ProcessInfo]) -> None:
        commands = {p.command for p in processes}
        for p in await asyncio.to_thread(procscan.scan, env.directory):
            if p["command"] in commands:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(p["pid"], signal.SIGTERM)

    def reserve(self, options: dict[str, Any] | None) -> str | None:
        return None  # nothing is made ahead of need in this tier

    async def discard(self, env_id: str, spec: EnvironmentSpec) -> None:
        # The branch stays: it holds the agent's work, and may have existed before the move.
        await git.remove_worktree(spec.project_path, self.worktree_path(spec), force=True)
        await asyncio.to_thread(shutil.rmtree, self.worktree_path(spec), ignore_errors=True)


async def _checked_out_branches(repo: Path) -> set[str]:
    out = (await git.run_git("worktree", "list", "--porcelain", cwd=repo)).stdout
    return {line.split(" ", 1)[1].removeprefix("refs/heads/") for line in out.splitlines()
            if line.startswith("branch ")}


async def _run_opencode(args: list[str], cwd: Path, env: dict[str, str], timeout: float = 120.0,
                        stdout: Any = asyncio.subprocess.PIPE) -> bytes:
    proc = await asyncio.create_subprocess_exec(*args, cwd=cwd, env=env, stdin=asyncio.subprocess.DEVNULL,
                                                stdout=stdout, stderr=asyncio.subprocess.PIPE)
    try:
        out, err = await asyncio.wait_for(proc.communicate(), timeout)
    except asyncio.TimeoutError:
        proc.kill()
        raise OpenCodeCommandFailed(f"`opencode {args[1]}` took longer than {timeout:.0f} s", "see the OpenCode server's log")
    if proc.returncode != 0:
        raise OpenCodeCommandFailed(f"`opencode {args[1]}` failed (exit {proc.returncode}): "
                                    f"{err.decode(errors='replace').strip()[-600:]}",
                                    "check that the session exists (`palot agents show`) and see the OpenCode log")
    return out or b""


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


def _agent_env(data: dict[str, Any]) -> dict[str, str]:
    """The agent's own variables (its dev-server ports), from its environment record's data."""
    ports = PortRange.from_data(data)
    return ports.env() if ports is not None else {}


async def run_setup(script: str, cwd: Path, project_path: Path, extra: dict[str, str] | None = None) -> str:
    """Run a setup script with bash in the new environment; a failure raises with its output.

    ``$PALOT_PROJECT`` names the user's checkout, so the common case of copying
    ``.env*`` files is ``cp "$PALOT_PROJECT"/.env* . 2>/dev/null || true``; ``extra`` are the agent's
    own variables (``$PALOT_PORT``, ``$PALOT_PORTS``).
    """
    bash = shutil.which("bash") or "/bin/sh"
    env = {**os.environ, "PALOT_PROJECT": str(project_path), "PALOT_WORKTREE": str(cwd), **(extra or {})}
    proc = await asyncio.create_subprocess_exec(
        bash, "-c", script, cwd=cwd, env=env, stdin=asyncio.subprocess.DEVNULL,  # never the protocol's stdin
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT, start_new_session=True,
    )
    try:
        out, _ = await asyncio.wait_for(proc.communicate(), SETUP_TIMEOUT)
    except asyncio.TimeoutError:
        proc.kill()
        raise SetupScriptFailed(f"the setup script ran longer than {SETUP_TIMEOUT:.0f} s and was stopped",
                                "make it faster, or run the slow part from the agent's prompt")
    text = out.decode(errors="replace")
    if proc.returncode != 0:
        raise SetupScriptFailed(f"the setup script failed with exit code {proc.returncode}: {text.strip()[-800:]}",
                                "fix the script (it runs with bash in the new worktree, $PALOT_PROJECT is your checkout)")
    return text


def _write_all(fd: int, data: bytes) -> None:
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
