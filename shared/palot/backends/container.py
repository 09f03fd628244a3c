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
import logging
import os
import re
import secrets
import shlex
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from .. import git, procscan
from ..errors import (
    EngineError,
    EngineUnavailable,
    EnvironmentCommandFailed,
    EnvironmentGone,
    EnvironmentNotReady,
    InvalidInput,
    InvalidState,
    PalotError,
    PortInUse,
    SetupScriptFailed,
)
from ..events import EventHub
from ..images import AGENT_IMAGE, engine, require_image
from ..opencode import EventStream, OpenCodeClient
from ..paths import PalotPaths, write_private
from ..servers import ServerManager, free_port
from ..store import EnvironmentRecord
from .base import SETUP_TIMEOUT, EnvironmentSpec, ProcessInfo, clone_project
from .pool import Key, Slot, WarmPool

log = logging.getLogger(__name__)
T = TypeVar("T")

AGENT_UID = 1000  # the image's non-root user
SCRIPTED_PORT = 4097  # the scripted model's port on the container's own loopback
NETWORKS = ("full", "none")
#: The agent's own variables (dev-server ports), in the run directory: every bash in the container (OpenCode's
#: bash tool, setup scripts, restarted dev servers) reads it through BASH_ENV, so a warm container started
#: before its agent was known gets them too.
AGENT_ENV_FILE = "agent-env.sh"


@dataclass(frozen=True)
class ContainerOptions:
    """Limits and networking of a container environment."""

    memory: str | None = "2g"  # docker syntax: 512m, 2g …
    cpus: float | None = 2.0
    pids: int | None = 1024
    network: str = "full"  # "full" or "none"
    ports: tuple[int, ...] = field(default_factory=tuple)  # container ports to publish on loopback

    @classmethod
    def from_dict(cls, options: dict[str, Any] | None) -> "ContainerOptions":
        options = dict(options or {})
        unknown = set(options) - {"memory", "cpus", "pids", "network", "ports"}
        if unknown:
            raise InvalidInput(f"unknown container option(s): {', '.join(sorted(unknown))}",
                               "use memory, cpus, pids, network (full|none) and ports")
        network = options.get("network", "full")
        if network not in NETWORKS:
            raise InvalidInput(f"unknown network '{network}'", "use full or none")
        try:
            ports = tuple(_number(p, int) for p in options.get("ports") or ())
            cpus = options.get("cpus", cls.cpus)
            cpus = None if cpus is None else _number(cpus, float)
            pids = options.get("pids", cls.pids)
            pids = None if pids is None else _number(pids, int)
        except (TypeError, ValueError):
            raise InvalidInput(f"container options must be numbers where numbers are expected, not {options}",
                               "e.g. cpus=1.5, pids=512, ports=[3000]") from None
        if any(not 0 < p < 65536 for p in ports):
            raise InvalidInput(f"invalid port in {list(ports)}", "ports are numbers from 1 to 65535")
        memory = options.get("memory", cls.memory)
        if memory is not None and not re.fullmatch(r"[0-9]+[bkmgBKMG]?", str(memory)):
            raise InvalidInput(f"invalid memory limit '{memory}'", "use a number with b, k, m or g, e.g. 2g")
        if network == "none" and ports:
            raise InvalidInput("ports cannot be published from an environment with network none",
                               "use network full to publish dev-server ports")
        if cpus is not None and cpus <= 0:
            raise InvalidInput(f"cpus must be positive, not {cpus}", "e.g. cpus=1.5")
        if pids is not None and pids <= 0:
            raise InvalidInput(f"pids must be positive, not {pids}", "e.g. pids=512")
        return cls(memory=memory, cpus=cpus, pids=pids, network=network, ports=ports)

    def key(self) -> Key | None:
        """What a warm container must match; None when it cannot be pooled (ports are fixed at start)."""
        return None if self.ports else (self.memory, self.cpus, self.pids, self.network)

    @classmethod
    def of_key(cls, key: Key) -> "ContainerOptions":
        memory, cpus, pids, network = key
        return cls(memory=memory, cpus=cpus, pids=pids, network=network)


def _number(value: Any, kind: type) -> Any:
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise TypeError(value)
    number = kind(value)
    if kind is int and number != float(value):
        raise ValueError(value)
    return number


def _secret_file(directory: Path) -> Path:
    return directory / "credentials.json"


class ContainerBackend:
    """Environments as containers from the agent image, one OpenCode server each."""

    type = "container"

    def __init__(self, paths: PalotPaths, hub: EventHub, server: ServerManager) -> None:
        self.paths = paths
        self.hub = hub
        self.server = server
        self._clients: dict[str, OpenCodeClient] = {}
        self._engine: Any | None = None
        self._oom_seen: dict[str, int] = {}  # OOM kills already reported, per environment
        self.pool = WarmPool(self._start_slot, self._remove)
        self._reserved: dict[str, Slot] = {}  # warm containers a move journaled as its target

    # --- engine -------------------------------------------------------------

    async def _docker(self) -> Any:
        if self._engine is None:
            self._engine = await asyncio.to_thread(engine)
        else:
            try:
                await asyncio.to_thread(self._engine.ping)
            except Exception:
                self._engine = None
                self.pool.forget()  # an engine that went away took the warm containers with it
                self._engine = await asyncio.to_thread(engine)
        return self._engine

    @staticmethod
    async def _engine_call(call: Callable[[], T], what: str) -> T:
        """``call`` (a docker SDK call) in a thread; the SDK's exceptions become :class:`EngineError`."""
        import docker.errors

        try:
            return await asyncio.to_thread(call)
        except docker.errors.DockerException as e:
            raise EngineError(f"the container engine failed {what}: {str(e)[:300]}",
                              "check that Docker is running (`docker info`), then try again") from e

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
        record = await self._assign(await self._start(spec.env_id or _new_id(), options, spec), spec, options)
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
        """A container for ``key``'s limits with OpenCode listening and an empty workspace (see :mod:`.pool`)."""
        env_id = _new_id()
        self.pool.starting(env_id)
        try:
            return await self._start(env_id, ContainerOptions.of_key(key), None)
        finally:
            self.pool.started(env_id)

    async def _start(self, env_id: str, options: ContainerOptions, spec: EnvironmentSpec | None) -> Slot:
        """The environment's container started with OpenCode answering and its workspace still empty; ``spec``
        when its agent is known already (a cold start), None for a warm one."""
        client = await self._docker()
        await asyncio.to_thread(require_image, client)
        envdir = self.paths.environments / env_id
        workspace, rundir = envdir / "workspace", run_dir(env_id)
        try:
            workspace.mkdir(parents=True)
            rundir.mkdir(parents=True)
            _write_agent_env(rundir, None)  # BASH_ENV names it from the start; _assign fills it
            if os.getuid() == 0:
                await asyncio.to_thread(_chown_tree, envdir, AGENT_UID)
                await asyncio.to_thread(_chown_tree, rundir, AGENT_UID)
            password = secrets.token_urlsafe(24)
            write_private(_secret_file(envdir), json.dumps({"password": password}))
            port = free_port() if options.network == "full" else None
            published = {p: free_port() for p in options.ports}
            extra = spec.dev_ports.env() if spec is not None and spec.dev_ports is not None else {}
            container = await asyncio.to_thread(
                self._run, client, env_id, str(spec.project_path) if spec is not None else None, options,
                workspace, rundir, password, port, published, extra)
            probe = EnvironmentRecord(id=env_id, type=self.type, directory="/workspace", branch=None,
                                      base_commit=None, server_url=f"http://127.0.0.1:{port}" if port else None,
                                      state="active", created_at=time.time(), data={"network": options.network})
            await self._wait_ready(probe, container)
        except BaseException:
            with contextlib.suppress(Exception):
                await self._remove(env_id)
            raise
        return Slot(env_id=env_id, key=options.key(), port=port, password=password, container=container,
                    started_at=time.time(), published=published)

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
            _write_agent_env(rundir, spec)
            if os.getuid() == 0:
                await asyncio.to_thread(_chown_tree, workspace, AGENT_UID)
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

    def _opencode_env(self, password: str) -> dict[str, str]:
        return {"OPENCODE_SERVER_PASSWORD": password,
                **self.server.environment_env(SCRIPTED_PORT, "/opt/palot/script.json")}

    def _volumes(self, workspace: Path, rundir: Path, home_volume: str) -> dict[str, dict[str, str]]:
        volumes = {
            str(workspace): {"bind": "/workspace", "mode": "rw"},
            str(rundir): {"bind": "/run/palot", "mode": "rw"},
            home_volume: {"bind": "/home/agent", "mode": "rw"},
        }
        if self.server.scripted:
            # Offline rehearsals: the scripted model runs inside, from Palot's own (read-only) code.
            import pydantic

            volumes[str(Path(__file__).resolve().parents[2])] = {"bind": "/opt/palot/src", "mode": "ro"}
            volumes[str(Path(pydantic.__file__).resolve().parents[1])] = {"bind": "/opt/palot/site", "mode": "ro"}
            if self.server.scripted != "demo":
                volumes[str(self.server.scripted)] = {"bind": "/opt/palot/script.json", "mode": "ro"}
        elif not self.server.isolated:
            # The user's own OpenCode config and provider credentials, read-only.
            home = Path.home()
            for host, inside in ((home / ".config" / "opencode", "/home/agent/.config/opencode"),
                                 (home / ".local" / "share" / "opencode" / "auth.json",
                                  "/home/agent/.local/share/opencode/auth.json")):
                if host.exists():
                    volumes[str(host)] = {"bind": inside, "mode": "ro"}
        return volumes

    def _run(self, client: Any, env_id: str, project: str | None, options: ContainerOptions, workspace: Path,
             rundir: Path, password: str, port: int | None, published: dict[int, int],
             extra_env: dict[str, str]) -> Any:
        import docker.errors

        env = self._opencode_env(password)
        # The agent's own dev-server ports (also in BASH_ENV's file), inside only: publishing them could collide
        # with its old environment's dev server during a move (publish with --port when the host needs them).
        env.update(extra_env)
        env.update({"BASH_ENV": f"/run/palot/{AGENT_ENV_FILE}", "SHELL": "/bin/bash"})
        ports: dict[str, tuple[str, int]] = {}
        if options.network == "none":
            env["PALOT_RELAY_SOCKET"] = "/run/palot/opencode.sock"
        else:
            assert port is not None
            ports["8080/tcp"] = ("127.0.0.1", port)
            ports.update({f"{inner}/tcp": ("127.0.0.1", outer) for inner, outer in published.items()})
        home_volume = f"palot-{env_id}-home"
        labels = {"palot.environment": env_id, "palot.home": str(self.paths.home),
                  **({"palot.project": project} if project else {"palot.warm": "1"})}
        # Labelled, so `palot gc` can tell Palot's volumes from everyone else's.
        try:
            client.volumes.create(name=home_volume, labels=labels)
        except docker.errors.DockerException as e:
            raise EngineError(f"the container engine could not create the volume {home_volume}: {str(e)[:300]}",
                              "check `docker info` and the engine's log") from e
        kwargs: dict[str, Any] = dict(
            detach=True, name=f"palot-{env_id}", init=True, environment=env, ports=ports,
            volumes=self._volumes(workspace, rundir, home_volume),
            labels=labels,
            mem_limit=options.memory, pids_limit=options.pids,
            nano_cpus=int(options.cpus * 1e9) if options.cpus else None,
        )
        if options.network == "none":
            kwargs["network_mode"] = "none"
        try:
            return client.containers.run(AGENT_IMAGE, **kwargs)
        except docker.errors.DockerException as e:
            text = str(e)
            if "port is already allocated" in text or "address already in use" in text:
                raise PortInUse(f"a port for the environment is already in use: {text[:300]}",
                                "free the port, or choose other --port values") from e
            raise EngineError(f"the container engine refused to start the environment: {text[:500]}",
                              "check `docker info` and the engine's log") from e

    async def _wait_ready(self, record: EnvironmentRecord, container: Any, timeout: float = 90.0) -> None:
        client = self.client_for(record)
        deadline = time.monotonic() + timeout
        while True:
            try:
                await client.health(timeout=2)
                return
            except PalotError:
                pass
            await self._engine_call(container.reload, f"about {container.name}")
            if container.status in ("exited", "dead") or time.monotonic() > deadline:
                logs = (await self._engine_call(lambda: container.logs(tail=30), f"about {container.name}")
                        ).decode(errors="replace")
                raise EnvironmentNotReady(f"the environment's OpenCode server did not start ({container.status}): {logs}",
                                          "check the agent image (`palot images status`) and the engine's resources")
            await asyncio.sleep(0.2)

    async def _container(self, env: EnvironmentRecord) -> Any:
        """The environment's container; :class:`EnvironmentGone` if it was removed, :class:`EngineUnavailable`
        if the engine cannot be asked (the SDK's own exceptions never reach a user)."""
        import docker.errors

        client = await self._docker()
        name = env.data.get("container") or f"palot-{env.id}"
        try:
            return await asyncio.to_thread(client.containers.get, name)
        except docker.errors.NotFound as e:
            raise EnvironmentGone(
                f"the container {name} of environment {env.id} no longer exists (it was removed outside Palot)",
                f"archive the agent to keep its branch {env.branch}, or destroy it with --force",
            ) from e
        except docker.errors.DockerException as e:
            raise EngineUnavailable(f"the container engine did not answer about {name}: {str(e)[:300]}",
                                    "check that Docker is running (`docker info`), then try again") from e

    async def _exec_run(self, env: EnvironmentRecord, cmd: list[str], **kwargs: Any) -> Any:
        """``exec_run`` in the environment's container, with the engine's errors said plainly."""
        import docker.errors

        container = await self._container(env)
        try:
            return await asyncio.to_thread(container.exec_run, cmd, workdir=kwargs.pop("workdir", "/workspace"),
                                           user="agent", **kwargs)
        except docker.errors.DockerException as e:
            raise EngineError(f"the container of environment {env.id} could not run a command: {str(e)[:300]}",
                              "check the environment with `palot agents env`; if it stopped, archive the agent") from e

    async def _exec(self, env: EnvironmentRecord, cmd: list[str], what: str) -> bytes:
        result = await self._exec_run(env, cmd, demux=True)
        out, err = result.output or (None, None)
        if result.exit_code != 0:
            text = (err or out or b"").decode(errors="replace").strip()[-600:]
            raise EnvironmentCommandFailed(f"{what} failed in the container (exit {result.exit_code}): {text}",
                                           "check the environment with `palot agents env`, and the container's log")
        return out or b""

    async def _setup(self, env: EnvironmentRecord, script: str) -> None:
        # coreutils' timeout inside: a hung script must not hold the spawn (or a move) forever.
        result = await self._exec_run(env, ["timeout", f"{SETUP_TIMEOUT:.0f}", "bash", "-c", script], demux=False)
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
            data = json.loads(_secret_file(self.paths.environments / env.id).read_text())
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
            try:
                engine_client = await self._docker()
            except PalotError:  # no engine to ask: nothing of it can be removed now
                engine_client = None
            if engine_client is not None:
                await self._engine_call(lambda: self._remove_container(engine_client, f"palot-{env_id}"),
                                        f"removing palot-{env_id}")
        finally:  # the files go even when the engine fails (gc finds a container left behind)
            await asyncio.to_thread(shutil.rmtree, self.paths.environments / env_id, True)
            await asyncio.to_thread(shutil.rmtree, run_dir(env_id), True)

    @staticmethod
    def _remove_container(client: Any, name: str) -> None:
        import docker.errors

        with contextlib.suppress(docker.errors.NotFound):
            container = client.containers.get(name)
            container.remove(force=True, v=True)
        with contextlib.suppress(docker.errors.NotFound):
            client.volumes.get(f"{name}-home").remove(force=True)

    async def status(self, env: EnvironmentRecord) -> str:
        if env.state != "active":
            return "stopped"
        try:
            container = await self._container(env)
        except EnvironmentGone:
            return "missing"
        except PalotError:
            return "engine unreachable"
        return "running" if container.status == "running" else str(container.status)

    async def resources(self, env: EnvironmentRecord) -> dict[str, Any] | None:
        try:
            container = await self._container(env)
            stats = await asyncio.to_thread(container.stats, stream=False)
        except Exception:
            return None
        mem = stats.get("memory_stats") or {}
        cpu, pre = stats.get("cpu_stats") or {}, stats.get("precpu_stats") or {}
        delta = (cpu.get("cpu_usage", {}).get("total_usage", 0) - pre.get("cpu_usage", {}).get("total_usage", 0))
        system = cpu.get("system_cpu_usage", 0) - pre.get("system_cpu_usage", 0)
        online = cpu.get("online_cpus") or 1
        return {
            "memory_bytes": int(mem.get("usage", 0)), "memory_limit_bytes": int(mem.get("limit", 0)),
            "cpu_percent": round(delta / system * online * 100, 1) if system > 0 else 0.0,
            "pids": int((stats.get("pids_stats") or {}).get("current", 0)),
            "ports": {k: f"127.0.0.1:{v}" for k, v in (env.data.get("ports") or {}).items()},
        }

    # --- moving agents ------------------------------------------------------

    async def preflight(self, spec: EnvironmentSpec, head: str) -> None:
        ContainerOptions.from_dict(spec.options)
        client = await self._docker()  # EngineUnavailable names the fix
        await asyncio.to_thread(require_image, client)

    def _own(self, workspace: Path) -> None:
        # Host-side git runs as this user; the agent inside must still be able to write its repository.
        if os.getuid() == 0:
            _chown_tree(workspace, AGENT_UID)

    async def export_code(self, env: EnvironmentRecord, bundle: Path, snapshot_ref: str) -> tuple[str, str]:
        workspace = self.host_path(env)
        git.trust(workspace)
        assert env.base_commit
        try:
            return await git.bundle_work(workspace, bundle, snapshot_ref, env.base_commit)
        finally:
            await asyncio.to_thread(self._own, workspace / ".git")

    async def import_code(self, env: EnvironmentRecord, bundle: Path, snapshot_ref: str) -> None:
        workspace = self.host_path(env)
        git.trust(workspace)
        assert env.branch
        try:
            await git.checkout_snapshot(workspace, bundle, snapshot_ref, env.branch)
        finally:
            await asyncio.to_thread(self._own, workspace)

    async def export_session(self, env: EnvironmentRecord, session_id: str) -> bytes:
        # Into a file in the host-mounted run directory, not a pipe: OpenCode 1.18 exits before a piped
        # stdout drains (cut at 384 KiB).
        name = f"export-{secrets.token_hex(4)}.json"
        path = run_dir(env.id) / name
        try:
            await self._exec(env, ["sh", "-c", 'umask 077 && opencode export "$1" > "$2"', "sh", session_id,
                                   f"/run/palot/{name}"], "`opencode export`")
            return path.read_bytes()
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
            await self._exec(env, ["opencode", "import", f"/run/palot/{name}"], "`opencode import`")
        finally:
            path.unlink(missing_ok=True)

    async def run_setup(self, env: EnvironmentRecord, script: str) -> None:
        await self._setup(env, script)

    async def processes(self, env: EnvironmentRecord) -> list[ProcessInfo]:
        source = Path(procscan.__file__).read_text()
        out = await self._exec(env, ["python3", "-c", source, "/workspace"], "listing processes")
        return [ProcessInfo(command=p["command"], cwd=p["cwd"], ports=tuple(p["ports"]))
                for p in json.loads(out or b"[]")]

    async def start_process(self, env: EnvironmentRecord, process: ProcessInfo) -> None:
        await self._exec_run(env, ["bash", "-c", process.command], workdir=str(Path("/workspace") / process.cwd),
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
            container = await self._container(env)
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


def _new_id() -> str:
    return "env_" + secrets.token_hex(6)


def _write_agent_env(rundir: Path, spec: EnvironmentSpec | None) -> None:
    """The file BASH_ENV names: the agent's variables as exports (empty until a warm container is taken)."""
    variables = spec.dev_ports.env() if spec is not None and spec.dev_ports is not None else {}
    path = rundir / AGENT_ENV_FILE
    tmp = path.with_suffix(".tmp")
    tmp.write_text("".join(f"export {k}={shlex.quote(v)}\n" for k, v in sorted(variables.items())))
    tmp.chmod(0o644)  # read by the container's user; dev-server ports are no secret
    if os.getuid() == 0:
        os.chown(tmp, AGENT_UID, AGENT_UID)
    os.replace(tmp, path)


def run_dir(env_id: str) -> Path:
    """The environment's relay-socket directory: short, because unix socket paths are limited to 107 bytes."""
    base = Path(tempfile.gettempdir()) / f"palot-{os.getuid()}"
    base.mkdir(mode=0o700, exist_ok=True)
    return base / env_id


def _chown_tree(root: Path, uid: int) -> None:
    for dirpath, dirnames, filenames in os.walk(root):
        os.chown(dirpath, uid, uid)
        for name in filenames:
            with contextlib.suppress(FileNotFoundError):
                os.lchown(os.path.join(dirpath, name), uid, uid)

