"""Starting a container environment: its files on this machine (workspace, run directory, password), its home
volume, its container from the agent image, and its OpenCode server answering.

What is started is an environment with an empty workspace; :mod:`.backend` makes it an agent's (the clone,
the agent's variables), right away for a cold start or later for a warm one (see :mod:`..pool`).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import secrets
import shlex
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from ...errors import EnvironmentNotReady, PalotError
from ...images import AGENT_IMAGE, require_image
from ...opencode import OpenCodeClient
from ...paths import PalotPaths, write_private
from ...servers import ServerManager, free_port, package_root
from ...store import EnvironmentRecord
from ..base import EnvironmentSpec
from ..pool import Slot
from .engine import DockerEngine
from .options import ContainerOptions

AGENT_UID = 1000  # the image's non-root user
SCRIPTED_PORT = 4097  # the scripted model's port on the container's own loopback
SCRIPT_PATH = "/opt/palot/script.json"  # where an environment reads the scripted model's script
#: The agent's own variables (dev-server ports), in the run directory: every bash in the container (OpenCode's
#: bash tool, setup scripts, restarted dev servers) reads it through BASH_ENV, so a warm container started
#: before its agent was known gets them too.
AGENT_ENV_FILE = "agent-env.sh"


def new_id() -> str:
    return "env_" + secrets.token_hex(6)


def run_dir(env_id: str) -> Path:
    """The environment's relay-socket directory: short, because unix socket paths are limited to 107 bytes."""
    base = Path(tempfile.gettempdir()) / f"palot-{os.getuid()}"
    base.mkdir(mode=0o700, exist_ok=True)
    return base / env_id


def secret_file(envdir: Path) -> Path:
    """Where the environment's OpenCode password is kept (mode 0600)."""
    return envdir / "credentials.json"


def write_agent_env(rundir: Path, spec: EnvironmentSpec | None) -> None:
    """The file BASH_ENV names: the agent's variables as exports (empty until a warm container is taken)."""
    variables = spec.dev_ports.env() if spec is not None and spec.dev_ports is not None else {}
    path = rundir / AGENT_ENV_FILE
    tmp = path.with_suffix(".tmp")
    tmp.write_text("".join(f"export {k}={shlex.quote(v)}\n" for k, v in sorted(variables.items())))
    tmp.chmod(0o644)  # read by the container's user; dev-server ports are no secret
    if os.getuid() == 0:
        os.chown(tmp, AGENT_UID, AGENT_UID)
    os.replace(tmp, path)


def own(root: Path) -> None:
    """Give a tree to the container's user when Palot runs as root (host-side git and file writes are
    root's; the agent inside must still be able to write them)."""
    if os.getuid() != 0:
        return
    for dirpath, _dirnames, filenames in os.walk(root):
        os.chown(dirpath, AGENT_UID, AGENT_UID)
        for name in filenames:
            with contextlib.suppress(FileNotFoundError):
                os.lchown(os.path.join(dirpath, name), AGENT_UID, AGENT_UID)


class ContainerStarter:
    """Starts environments' containers for the container tier."""

    def __init__(self, paths: PalotPaths, server: ServerManager, engine: DockerEngine,
                 client_for: Callable[[EnvironmentRecord], OpenCodeClient],
                 remove: Callable[[str], Awaitable[None]]) -> None:
        self.paths = paths
        self.server = server
        self.engine = engine
        self._client_for = client_for  # the backend's client of the server inside (kept for the agent)
        self._remove = remove  # the backend's removal of an environment, whatever of it exists

    async def start(self, env_id: str, options: ContainerOptions, spec: EnvironmentSpec | None) -> Slot:
        """The environment's container started with OpenCode answering and its workspace still empty;
        ``spec`` when its agent is known already (a cold start), None for a warm one. Whatever a failed
        start made is removed."""
        client = await self.engine.client()
        await asyncio.to_thread(require_image, client)
        try:
            return await self._start(client, env_id, options, spec)
        except BaseException:
            with contextlib.suppress(Exception):
                await self._remove(env_id)
            raise

    async def _start(self, client: Any, env_id: str, options: ContainerOptions,
                     spec: EnvironmentSpec | None) -> Slot:
        envdir = self.paths.environments / env_id
        workspace, rundir = envdir / "workspace", run_dir(env_id)
        workspace.mkdir(parents=True)
        rundir.mkdir(parents=True)
        write_agent_env(rundir, None)  # BASH_ENV names it from the start; the assignment fills it
        await asyncio.to_thread(own, envdir)
        await asyncio.to_thread(own, rundir)
        password = secrets.token_urlsafe(24)
        write_private(secret_file(envdir), json.dumps({"password": password}))
        port = free_port() if options.network == "full" else None
        published = {p: free_port() for p in options.ports}
        extra = spec.dev_ports.env() if spec is not None and spec.dev_ports is not None else {}
        container = await self._run(client, env_id, str(spec.project_path) if spec is not None else None,
                                    options, workspace, rundir, password, port, published, extra)
        probe = EnvironmentRecord(id=env_id, type="container", directory="/workspace", branch=None,
                                  base_commit=None, server_url=f"http://127.0.0.1:{port}" if port else None,
                                  state="active", created_at=time.time(), data={"network": options.network})
        await self._wait_ready(self._client_for(probe), container)
        return Slot(env_id=env_id, key=options.key(), port=port, password=password, container=container,
                    started_at=time.time(), published=published)

    def _opencode_env(self, password: str) -> dict[str, str]:
        return {"OPENCODE_SERVER_PASSWORD": password,
                **self.server.environment_env(SCRIPTED_PORT, SCRIPT_PATH)}

    def _volumes(self, workspace: Path, rundir: Path, home_volume: str) -> dict[str, dict[str, str]]:
        volumes = {
            str(workspace): {"bind": "/workspace", "mode": "rw"},
            str(rundir): {"bind": "/run/palot", "mode": "rw"},
            home_volume: {"bind": "/home/agent", "mode": "rw"},
        }
        if self.server.scripted:
            # Offline rehearsals: the scripted model runs inside, from Palot's own (read-only) code.
            import pydantic

            volumes[str(package_root())] = {"bind": "/opt/palot/src", "mode": "ro"}
            volumes[str(Path(pydantic.__file__).resolve().parents[1])] = {"bind": "/opt/palot/site", "mode": "ro"}
            if self.server.scripted != "demo":
                volumes[str(self.server.scripted)] = {"bind": SCRIPT_PATH, "mode": "ro"}
        elif not self.server.isolated:
            # The user's own OpenCode config and provider credentials, read-only.
            home = Path.home()
            for host, inside in ((home / ".config" / "opencode", "/home/agent/.config/opencode"),
                                 (home / ".local" / "share" / "opencode" / "auth.json",
                                  "/home/agent/.local/share/opencode/auth.json")):
                if host.exists():
                    volumes[str(host)] = {"bind": inside, "mode": "ro"}
        return volumes

    async def _run(self, client: Any, env_id: str, project: str | None, options: ContainerOptions,
                   workspace: Path, rundir: Path, password: str, port: int | None, published: dict[int, int],
                   extra_env: dict[str, str]) -> Any:
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
        await self.engine.create_volume(client, home_volume, labels)
        kwargs: dict[str, Any] = dict(
            detach=True, name=f"palot-{env_id}", init=True, environment=env, ports=ports,
            volumes=self._volumes(workspace, rundir, home_volume),
            labels=labels,
            mem_limit=options.memory, pids_limit=options.pids,
            nano_cpus=int(options.cpus * 1e9) if options.cpus else None,
        )
        if options.network == "none":
            kwargs["network_mode"] = "none"
        return await self.engine.run(client, AGENT_IMAGE, **kwargs)

    async def _wait_ready(self, client: OpenCodeClient, container: Any, timeout: float = 90.0) -> None:
        deadline = time.monotonic() + timeout
        while True:
            try:
                await client.health(timeout=2)
                return
            except PalotError:
                pass
            await self.engine.call(container.reload, f"about {container.name}")
            if container.status in ("exited", "dead") or time.monotonic() > deadline:
                logs = (await self.engine.call(lambda: container.logs(tail=30), f"about {container.name}")
                        ).decode(errors="replace")
                raise EnvironmentNotReady(f"the environment's OpenCode server did not start ({container.status}): {logs}",
                                          "check the agent image (`palot images status`) and the engine's resources")
            await asyncio.sleep(0.2)
