"""The container tier: an agent in its own container, with its own OpenCode server inside.

Workspace choice: each environment gets a **dedicated clone** of the project
(under ``$PALOT_HOME/environments/<id>/workspace``) bind-mounted read-write at
``/workspace``. The container never sees the user's checkout, so the agent
cannot modify it; git inside the container works normally (a worktree's
``.git`` file would point at the user's repository, which is not mounted);
and Palot diffs and applies with plain git on the host, exactly as for
worktree agents. Archiving fetches the agent's branch into the user's
repository, so the work is kept there after the clone is removed.

Palot reaches the OpenCode server inside over a port published on 127.0.0.1,
or, for environments with no network at all, through a unix socket relayed
by ``palot-envd`` into a host-mounted directory.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import secrets
import shutil
import time
from pathlib import Path
from typing import Any

from ... import git, procscan
from ...errors import (
    EnvironmentGone,
    InvalidState,
    PalotError,
    SetupScriptFailed,
)
from ...events import EventHub
from ...images import require_image
from ...opencode import EventStream, OpenCodeClient
from ...paths import PalotPaths, write_private
from ...servers import ServerManager
from ...store import EnvironmentRecord
from ..base import SETUP_TIMEOUT, EnvironmentSpec, ProcessInfo, clone_project
from ..pool import Key, Slot, WarmPool
from .engine import DockerEngine, usage
from .options import ContainerOptions
from .start import AGENT_UID, ContainerStarter, new_id, own, run_dir, secret_file, write_agent_env


class ContainerBackend:
    """Environments as containers from the agent image, one OpenCode server each."""

    type = "container"

    def __init__(self, paths: PalotPaths, hub: EventHub, server: ServerManager) -> None:
        self.paths = paths
        self.hub = hub
        self.server = server
        self._clients: dict[str, OpenCodeClient] = {}
        self._oom_seen: dict[str, int] = {}  # OOM kills already reported, per environment
        self.pool = WarmPool(self._start_slot, self._remove)
        # An engine that went away took the warm containers with it.
        self.engine = DockerEngine(on_lost=self.pool.forget)
        self.starter = ContainerStarter(paths, server, self.engine, self.client_for, self._remove)
        self._reserved: dict[str, Slot] = {}  # warm containers a move journaled as its target

    # --- provisioning -------------------------------------------------------

    async def provision(self, spec: EnvironmentSpec) -> EnvironmentRecord:
        options = ContainerOptions.from_dict(spec.options)
        key = options.key()
        slot = None
        if spec.env_id is not None:
            slot = self._reserved.pop(spec.env_id, None)
        elif key is not None:
            slot = self.pool.take(key)
        if slot is not None and not await self._alive(slot):
            await self._remove(slot.env_id)
            slot = None
        if slot is not None:
            return await self._assign(slot, spec, options, warm=True)
        # Cold: started for this agent (its project label, ports and variables from the start), then made its
        # own the way a warm one is.
        record = await self._assign(await self.starter.start(spec.env_id or new_id(), options, spec), spec, options)
        if key is not None:
            self.pool.want(key)  # the next spawn like this one finds a warm container
        return record

    def _record(self, env_id: str, spec: EnvironmentSpec, options: ContainerOptions, workspace: Path,
                container: str, port: int | None, published: dict[int, int]) -> EnvironmentRecord:
        return EnvironmentRecord(
            id=env_id, type=self.type, directory="/workspace", branch=spec.branch,
            base_commit=spec.base_commit, server_url=f"http://127.0.0.1:{port}" if port else None,
            state="active", created_at=time.time(),
            data={"project_path": str(spec.project_path), "workspace": str(workspace),
                  "container": container, "network": options.network, "port": port,
                  "ports": {str(k): v for k, v in published.items()}, "memory": options.memory,
                  "cpus": options.cpus, "pids": options.pids,
                  **({"dev_ports": spec.dev_ports.as_data()} if spec.dev_ports else {})},
        )

    # --- warm containers ----------------------------------------------------

    async def _start_slot(self, key: Key) -> Slot:
        """A container for ``key``'s limits with OpenCode listening and an empty workspace (see :mod:`..pool`)."""
        env_id = new_id()
        self.pool.starting(env_id)
        try:
            return await self.starter.start(env_id, ContainerOptions.of_key(key), None)
        finally:
            self.pool.started(env_id)

    async def _alive(self, slot: Slot) -> bool:
        """Still there and answering (the engine may have restarted since it was started)."""
        try:
            await asyncio.to_thread(slot.container.reload)
            if slot.container.status != "running":
                return False
            await self._clients[slot.env_id].health(timeout=2)
        except Exception:
            return False
        return True

    async def _assign(self, slot: Slot, spec: EnvironmentSpec, options: ContainerOptions, *,
                      warm: bool = False) -> EnvironmentRecord:
        """Make a started container the agent's: its code in the workspace, its variables in BASH_ENV's file."""
        envdir = self.paths.environments / slot.env_id
        workspace, rundir = envdir / "workspace", run_dir(slot.env_id)
        try:
            await clone_project(spec, workspace)
            write_agent_env(rundir, spec)
            await asyncio.to_thread(own, workspace)
            record = self._record(slot.env_id, spec, options, workspace, slot.container.name, slot.port,
                                  slot.published)
            if warm:
                record.data["warm"] = True
            if spec.setup_script:
                await self._setup(record, spec.setup_script)
        except BaseException:
            with contextlib.suppress(Exception):
                await self._remove(slot.env_id)
            raise
        self._attach(record)
        return record

    def reserve(self, options: dict[str, Any] | None) -> str | None:
        """A warm container's environment id for a move to journal as its target (None: none is ready).
        ``provision`` with that id then takes it; ``discard`` of that id removes it."""
        key = ContainerOptions.from_dict(options).key()
        slot = self.pool.take(key) if key is not None else None
        if slot is None:
            return None
        self._reserved[slot.env_id] = slot
        return slot.env_id

    def warm_ids(self) -> set[str]:
        """Environments that exist for the pool, not (yet) for an agent: live to ``palot gc``."""
        return self.pool.ids() | set(self._reserved)

    async def close(self) -> None:
        """Remove the warm containers (the agents' own keep running)."""
        await self.pool.close()
        reserved, self._reserved = list(self._reserved), {}
        for env_id in reserved:
            await self._remove(env_id)

    async def _setup(self, env: EnvironmentRecord, script: str) -> None:
        # coreutils' timeout inside: a hung script must not hold the spawn (or a move) forever.
        result = await self.engine.exec_run(env, ["timeout", f"{SETUP_TIMEOUT:.0f}", "bash", "-c", script], demux=False)
        if result.exit_code == 124:
            raise SetupScriptFailed(f"the setup script ran longer than {SETUP_TIMEOUT:.0f} s and was stopped",
                                    "make it faster, or run the slow part from the agent's prompt")
        if result.exit_code != 0:
            output = (result.output or b"").decode(errors="replace").strip()[-800:]
            raise SetupScriptFailed(f"the setup script failed with exit code {result.exit_code}: {output}",
                                    "fix the script (it runs with bash in /workspace inside the container)")

    # --- reaching the server inside -----------------------------------------

    def _password(self, env: EnvironmentRecord) -> str:
        try:
            data = json.loads(secret_file(self.paths.environments / env.id).read_text())
            return str(data["password"])
        except (OSError, ValueError, KeyError, TypeError) as e:
            # Archiving or destroying removes the credentials with the container: there is no server to reach.
            state = "was archived" if env.state == "archived" else "is gone" if env.state != "active" else \
                "has lost its credentials"
            raise InvalidState(
                f"the container of environment {env.id} {state}, so its OpenCode server cannot be reached",
                f"the agent's work is on branch {env.branch}; spawn a new agent with --base-branch {env.branch}",
            ) from e

    def _socket(self, env: EnvironmentRecord) -> str | None:
        if env.data.get("network") == "none":
            return str(run_dir(env.id) / "opencode.sock")
        return None

    def client_for(self, env: EnvironmentRecord) -> OpenCodeClient:
        client = self._clients.get(env.id)
        if client is None:
            url = env.server_url or "http://palot-environment"
            client = OpenCodeClient(url, self._password(env), uds=self._socket(env))
            self._clients[env.id] = client
        return client

    def _attach(self, env: EnvironmentRecord) -> None:
        client = self.client_for(env)
        url = client.base_url
        uds = self._socket(env)
        self.hub.add_source(env.id, lambda: EventStream(lambda: url, client.auth, uds=uds))

    async def resume(self, env: EnvironmentRecord) -> None:
        """Reconnect to an environment after Palot restarts."""
        git.trust(Path(env.data["workspace"]))
        self._attach(env)

    def host_path(self, env: EnvironmentRecord) -> Path:
        return Path(env.data.get("workspace") or self.paths.environments / env.id / "workspace")

    def options_of(self, env: EnvironmentRecord) -> dict[str, Any] | None:
        # Read back from what provision recorded, so environments made before retries existed count too.
        data = env.data
        options = {key: data[key] for key in ("memory", "cpus", "pids", "network") if key in data}
        if data.get("ports"):
            options["ports"] = sorted(int(inner) for inner in data["ports"])
        return options

    async def sync(self, env: EnvironmentRecord) -> Path:
        return self.host_path(env)  # the workspace is bind-mounted from this machine

    # --- lifecycle ----------------------------------------------------------

    async def publish_branch(self, env: EnvironmentRecord, message: str) -> None:
        workspace = self.host_path(env)
        if not workspace.is_dir():
            return
        await git.checkpoint(workspace, message)
        assert env.branch
        # The clone's branch is fetched into the user's repository (never forced: a diverged branch is an
        # error). git drops config from the environment for the local upload-pack, so the clone (owned by
        # the container's user) is named safe on that command line.
        upload_pack = f"git -c safe.directory={workspace.resolve() / '.git'} upload-pack"
        await git.run_git("fetch", "--quiet", f"--upload-pack={upload_pack}", str(workspace),
                          f"{env.branch}:{env.branch}", cwd=Path(env.data["project_path"]))

    async def archive(self, env: EnvironmentRecord) -> None:
        # Keep the agent's branch in the user's repository before the clone goes.
        await self.publish_branch(env, "palot: archive checkpoint (uncommitted agent work)")
        await self._teardown(env)

    async def destroy(self, env: EnvironmentRecord) -> None:
        await self._teardown(env)
        if env.branch:
            await git.delete_branch(Path(env.data["project_path"]), env.branch, force=True)

    async def _teardown(self, env: EnvironmentRecord) -> None:
        await self._remove(env.id)

    async def _remove(self, env_id: str) -> None:
        """Detach from the environment and remove its container, home volume and files; missing parts are fine."""
        await self.hub.remove_source(env_id)
        client = self._clients.pop(env_id, None)
        if client is not None:
            await client.aclose()
        self._oom_seen.pop(env_id, None)
        try:
            await self.engine.remove(f"palot-{env_id}")
        finally:  # the files go even when the engine fails (gc finds a container left behind)
            await asyncio.to_thread(shutil.rmtree, self.paths.environments / env_id, True)
            await asyncio.to_thread(shutil.rmtree, run_dir(env_id), True)

    async def status(self, env: EnvironmentRecord) -> str:
        if env.state != "active":
            return "stopped"
        try:
            container = await self.engine.container(env)
        except EnvironmentGone:
            return "missing"
        except PalotError:
            return "engine unreachable"
        return "running" if container.status == "running" else str(container.status)

    async def resources(self, env: EnvironmentRecord) -> dict[str, Any] | None:
        try:
            container = await self.engine.container(env)
            stats = await asyncio.to_thread(container.stats, stream=False)
        except Exception:
            return None
        return {**usage(stats), "ports": {k: f"127.0.0.1:{v}" for k, v in (env.data.get("ports") or {}).items()}}

    # --- moving agents ------------------------------------------------------

    async def preflight(self, spec: EnvironmentSpec, head: str) -> None:
        ContainerOptions.from_dict(spec.options)
        client = await self.engine.client()  # EngineUnavailable names the fix
        await asyncio.to_thread(require_image, client)

    async def export_code(self, env: EnvironmentRecord, bundle: Path, snapshot_ref: str) -> tuple[str, str]:
        workspace = self.host_path(env)
        git.trust(workspace)
        assert env.base_commit
        try:
            return await git.bundle_work(workspace, bundle, snapshot_ref, env.base_commit)
        finally:
            await asyncio.to_thread(own, workspace / ".git")

    async def import_code(self, env: EnvironmentRecord, bundle: Path, snapshot_ref: str) -> None:
        workspace = self.host_path(env)
        git.trust(workspace)
        assert env.branch
        try:
            await git.checkout_snapshot(workspace, bundle, snapshot_ref, env.branch)
        finally:
            await asyncio.to_thread(own, workspace)

    async def export_session(self, env: EnvironmentRecord, session_id: str) -> bytes:
        # Into a file in the host-mounted run directory, not a pipe: OpenCode 1.18 exits before a piped
        # stdout drains (cut at 384 KiB).
        name = f"export-{secrets.token_hex(4)}.json"
        path = run_dir(env.id) / name
        try:
            await self.engine.output(env, ["sh", "-c", 'umask 077 && opencode export "$1" > "$2"', "sh", session_id,
                                   f"/run/palot/{name}"], "`opencode export`")
            return await asyncio.to_thread(path.read_bytes)  # a long conversation is megabytes
        finally:
            path.unlink(missing_ok=True)

    async def import_session(self, env: EnvironmentRecord, data: bytes) -> None:
        # Through the host-mounted run directory, never the workspace (it would show in the agent's diff).
        name = f"import-{secrets.token_hex(4)}.json"
        path = run_dir(env.id) / name
        write_private(path, data)
        if os.getuid() == 0:
            os.chown(path, AGENT_UID, AGENT_UID)
        try:
            await self.engine.output(env, ["opencode", "import", f"/run/palot/{name}"], "`opencode import`")
        finally:
            path.unlink(missing_ok=True)

    async def run_setup(self, env: EnvironmentRecord, script: str) -> None:
        await self._setup(env, script)

    async def processes(self, env: EnvironmentRecord) -> list[ProcessInfo]:
        source = Path(procscan.__file__).read_text()
        out = await self.engine.output(env, ["python3", "-c", source, "/workspace"], "listing processes")
        return [ProcessInfo(command=p["command"], cwd=p["cwd"], ports=tuple(p["ports"]))
                for p in json.loads(out or b"[]")]

    async def start_process(self, env: EnvironmentRecord, process: ProcessInfo) -> None:
        await self.engine.exec_run(env, ["bash", "-c", process.command], workdir=str(Path("/workspace") / process.cwd),
                             detach=True)

    async def stop_processes(self, env: EnvironmentRecord, processes: list[ProcessInfo]) -> None:
        """Nothing to do: removing the container stops them."""

    async def discard(self, env_id: str, spec: EnvironmentSpec) -> None:
        self._reserved.pop(env_id, None)
        await self._remove(env_id)

    async def failure(self, env: EnvironmentRecord) -> str | None:
        """Why the environment failed the agent, if it did: the container died, or the OOM killer struck."""
        gone = "the environment's container is gone; destroy the agent or archive it to keep its branch"
        try:
            container = await self.engine.container(env)
        except EnvironmentGone:
            return gone
        except PalotError:
            return "the container engine is unreachable; start it again, then prompt the agent to continue"
        if container.status in ("removing", "dead"):  # `docker rm -f` caught in the act: it is not coming back
            return gone
        limit = env.data.get("memory")
        state = container.attrs.get("State", {})
        if state.get("OOMKilled"):
            return f"the environment ran out of memory (limit {limit}); spawn with a larger memory limit"
        if container.status != "running":
            return f"the environment's container stopped ({container.status}, exit {state.get('ExitCode')})"
        try:
            result = await asyncio.to_thread(
                container.exec_run, ["sh", "-c", "cat /sys/fs/cgroup/memory.events"
                                     " /sys/fs/cgroup/memory/memory.oom_control 2>/dev/null"])
        except Exception:  # it stopped meanwhile, or the engine went away: the next check says which
            return None
        for line in (result.output or b"").decode(errors="replace").splitlines():
            name, _, value = line.partition(" ")
            if name == "oom_kill" and value.strip().isdigit():
                kills, seen = int(value), self._oom_seen.get(env.id, 0)
                self._oom_seen[env.id] = kills
                if kills > seen:  # only new kills: an earlier one was already reported
                    return (f"a process in the environment was killed for exceeding its memory limit ({limit}); "
                            "spawn with a larger memory limit or make the command use less memory")
        return None

