"""The cloud tier: an agent in a Cloudflare Container, behind Palot's Worker (``images/cloudflare``).

Palot never execs into a cloud container. The Worker provisions, reports and destroys environments and
proxies ``/envs/<id>/opencode/…`` to the OpenCode server inside (the same typed client and event stream as
every tier, authenticated with the Worker's bearer token) and ``/envs/<id>/daemon/…`` to ``palot-envd``'s
daemon, which runs git, the setup script, ``opencode export``/``import`` and the process scan there and
moves files (git bundles, session exports) in and out.

The project's history up to the agent's base commit is cloned by the container from the project's remote
when it can reach it (a partial clone), else it arrives as a git bundle (:mod:`palot.cloud.route` decides);
the agent's own work travels as snapshot bundles (a move's import, the Worker's saves). A local *mirror* clone under
``$PALOT_HOME/environments/<id>/mirror`` is brought up to date from the environment (:meth:`sync`) before
Palot diffs or applies, so diff and apply are plain local git, as on the other tiers.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import secrets
import shutil
import time
from pathlib import Path
from typing import Any

from .. import git, procscan
from ..scratch import scratch_dir
from ..cloud import config as cloud_config
from ..cloud import crash
from ..cloud import credentials as cloud_credentials
from ..cloud import durable
from ..cloud import route as code_route
from ..cloud.costs import usage
from ..cloud.worker import CloudAuthFailed, CloudEnvironmentGone, CloudUnreachable, CloudWorkerError, WorkerClient
from ..errors import EnvironmentNotReady, InvalidInput, PalotError
from ..events import EventHub
from ..opencode import EventStream, OpenCodeClient
from ..paths import PalotPaths
from ..servers import ServerManager
from ..store import EnvironmentRecord
from .base import EnvironmentSpec, ProcessInfo, clone_project
from .container.start import SCRIPT_PATH, SCRIPTED_PORT  # the same image, so the same places

WORKSPACE = "/workspace"
TRANSFER = "/run/palot"  # files in flight; never the workspace (they would show in the agent's diff)
READY_TIMEOUT = 180.0

log = logging.getLogger(__name__)


class CloudBackend:
    """Environments as Cloudflare Containers, reached through Palot's Worker."""

    #: workerd sees a killed container's exit a while after its event stream ended (the tracker asks again).
    sees_stops_late = True

    type = "cloud"

    def __init__(self, paths: PalotPaths, hub: EventHub, server: ServerManager) -> None:
        self.paths = paths
        self.hub = hub
        self.server = server
        self._worker_client: WorkerClient | None = None
        self._worker_key: tuple[str, str] | None = None
        self._clients: dict[str, OpenCodeClient] = {}

    # --- the Worker -------------------------------------------------------------

    def worker(self) -> WorkerClient:
        """The client of the configured Worker (``palot cloud connect``/``deploy``), re-made if that changed."""
        config = cloud_config.load(self.paths)
        if self._worker_client is None or self._worker_key != (config.url, config.token):
            self._worker_client = WorkerClient(config)
            self._worker_key = (config.url, config.token)
            self._clients.clear()  # new token or URL: the old clients are stale (closed with the process)
        return self._worker_client

    async def _wait_ready(self, env_id: str, timeout: float = READY_TIMEOUT) -> None:
        """Until the environment's daemon answers and its OpenCode server accepts connections."""
        worker, deadline, last = self.worker(), time.monotonic() + timeout, "no answer yet"
        while True:
            try:
                health = await worker.daemon_health(env_id)
                if health.get("opencode"):
                    return
                last = "OpenCode is still starting"
            except (CloudUnreachable, CloudAuthFailed, CloudEnvironmentGone):
                raise
            except PalotError as exc:  # 5xx while the container boots
                last = exc.message
            if time.monotonic() > deadline:
                raise EnvironmentNotReady(f"cloud environment {env_id} did not become ready in {timeout:.0f} s ({last})",
                                          "check the Worker's log (`wrangler tail`) and the container's instance type")
            await asyncio.sleep(0.5)

    # --- provisioning -------------------------------------------------------------

    async def provision(self, spec: EnvironmentSpec) -> EnvironmentRecord:
        _refuse_options(spec)
        worker = self.worker()
        health = await _check_worker(worker)  # unreachable, a wrong token or an old Worker fail before anything is made
        env_id = spec.env_id or "env_" + secrets.token_hex(6)
        mirror = self.paths.environments / env_id / "mirror"
        created = False
        try:
            await clone_project(spec, mirror)
            # The agent's dev-server ports are in the environment's own variables, as in a container.
            # The user's provider credentials go separately: the Worker seals them, the daemon holds them.
            provider_keys = await asyncio.to_thread(cloud_credentials.for_environment, self.server, spec.project_path)
            chosen = await code_route.choose(spec.project_path, spec.base_commit,
                                             internet=health.get("enable_internet") is not False)
            await worker.create(env_id, {**self.server.environment_env(SCRIPTED_PORT, SCRIPT_PATH),
                                         **(spec.dev_ports.env() if spec.dev_ports else {})}, provider_keys)
            created = True
            await self._wait_ready(env_id)
            route, base = await self._put_history(env_id, spec.base_commit, mirror, chosen)
            checkout = (["--detach", spec.base_commit] if spec.branch_from_bundle
                        else ["-b", spec.branch, spec.base_commit])
            await worker.run(env_id, ["sh", "-c", 'set -e; git checkout --quiet "$@"; git update-ref -d refs/palot/base',
                                      "sh", *checkout], "putting the project's code in place", cwd=WORKSPACE)
            record = EnvironmentRecord(
                id=env_id, type=self.type, directory=WORKSPACE, branch=spec.branch, base_commit=spec.base_commit,
                server_url=worker.opencode_url(env_id), state="active", created_at=time.time(),
                data={"project_path": str(spec.project_path), "mirror": str(mirror), "worker_url": worker.url,
                      "instance_type": health.get("instance_type"), "code_route": route.name,
                      "code_route_why": route.why,
                      **({"dev_ports": spec.dev_ports.as_data()} if spec.dev_ports else {})},
            )
            if spec.setup_script:
                await self.run_setup(record, spec.setup_script)
            # From here the Worker saves the work (periodically, before sleeping, on pause) and restores it
            # at every start: the project's history (the base bundle, kept once, or the remote), then the
            # agent's own commits and files.
            if base is not None:
                await worker.put_base(env_id, base)
            await worker.set_durable(env_id, durable.commands(spec.branch, spec.base_commit, route.remote))
        except BaseException:
            if created:
                with contextlib.suppress(Exception):
                    await worker.destroy(env_id)
            await asyncio.to_thread(shutil.rmtree, self.paths.environments / env_id, ignore_errors=True)
            raise
        self._attach(record)
        return record

    async def _put_history(self, env_id: str, base_commit: str, mirror: Path,
                           route: code_route.Route) -> tuple[code_route.Route, bytes | None]:
        """The project's history up to ``base_commit`` into the new environment's workspace: cloned from the
        remote when ``route`` says so, else (or when that clone fails: never a failed spawn for it) sent as
        a bundle of the mirror. Returns the route taken and the bundle, when one was sent."""
        worker = self.worker()
        fetch = ["sh", "-c", code_route.FETCH_BASE_SCRIPT, "fetch_base.sh"]
        log.info("cloud environment %s: the project's history is %s", env_id, route.why)
        if route.remote is not None:
            cloned = await worker.exec(env_id, [*fetch, route.remote, base_commit], cwd=WORKSPACE)
            if cloned.code == 0:
                return route, None
            failure = (cloned.stderr or cloned.stdout).strip()[-300:] or f"exit {cloned.code}"
            route = code_route.Route(None, f"sent as a bundle: cloning {route.remote} in the environment failed "
                                           f"({failure})")
            log.warning("cloud environment %s: the project's history is %s", env_id, route.why)
        async with scratch_dir("palot-cloud-") as tmp:
            bundle = Path(tmp) / "base.bundle"
            await git.run_git("update-ref", "refs/palot/base", base_commit, cwd=mirror)
            await git.create_bundle(mirror, bundle, ["refs/palot/base"])
            await git.delete_ref(mirror, "refs/palot/base")
            base = await asyncio.to_thread(bundle.read_bytes)
        remote = f"{TRANSFER}/base.bundle"
        await worker.put_file(env_id, remote, base)
        try:
            await worker.run(env_id, [*fetch, remote, base_commit], "putting the project's history in place",
                             cwd=WORKSPACE)
        finally:
            with contextlib.suppress(PalotError):
                await worker.delete_file(env_id, remote)
        return route, base

    def client_for(self, env: EnvironmentRecord) -> OpenCodeClient:
        client = self._clients.get(env.id)
        if client is None:
            worker = self.worker()
            client = OpenCodeClient(worker.opencode_url(env.id), None, auth=worker.auth)
            self._clients[env.id] = client
        return client

    def _attach(self, env: EnvironmentRecord) -> None:
        client = self.client_for(env)
        url, auth = client.base_url, client.auth
        self.hub.add_source(env.id, lambda: EventStream(lambda: url, auth))

    async def resume(self, env: EnvironmentRecord) -> None:
        """Reconnect after Palot restarts (the environment kept running in the cloud; a paused one stays so)."""
        if env.data.get("paused"):
            return
        try:
            self._attach(env)
        except PalotError:
            pass  # not configured any more: status and failure say so when asked

    async def _detach(self, env_id: str) -> None:
        await self.hub.remove_source(env_id)
        client = self._clients.pop(env_id, None)
        if client is not None:
            await client.aclose()

    async def pause_environment(self, env: EnvironmentRecord) -> None:
        """Save the work (code and conversation) with the Worker, then stop the container: no running time
        accrues until :meth:`resume_environment`. A failed save leaves it running (and raises). The mirror is
        brought up to date first, so the agent's diff can be read and applied while it is paused."""
        await self.sync(env)
        await self._detach(env.id)  # first: the stream's end is no loss, and it would be refused until the resume
        try:
            await self.worker().pause(env.id)
        except BaseException:
            self._attach(env)
            raise

    async def resume_environment(self, env: EnvironmentRecord) -> None:
        """Start the container again; the Worker puts the newest save back before OpenCode gets a request."""
        await self.worker().resume(env.id)
        await self._wait_ready(env.id)
        self._attach(env)

    def host_path(self, env: EnvironmentRecord) -> Path:
        return Path(env.data.get("mirror") or self.paths.environments / env.id / "mirror")

    def options_of(self, env: EnvironmentRecord) -> dict[str, Any] | None:
        return None  # the instance type is the Worker's

    async def sync(self, env: EnvironmentRecord) -> Path:
        """Bring the mirror to the environment's branch and working tree (one snapshot bundle)."""
        mirror = self.host_path(env)
        if env.state != "active" or env.data.get("paused") or not mirror.is_dir():
            return mirror
        assert env.branch
        ref = f"refs/palot/sync-{secrets.token_hex(4)}"
        async with scratch_dir("palot-cloud-") as tmp:
            bundle = Path(tmp) / "sync.bundle"
            await self._export(env, bundle, ref)
            await git.checkout_snapshot(mirror, bundle, ref, env.branch)
        return mirror

    # --- lifecycle ----------------------------------------------------------------

    async def publish_branch(self, env: EnvironmentRecord, message: str) -> None:
        worker = self.worker()
        await worker.run(env.id, ["sh", "-c", git.CHECKPOINT_SCRIPT, "checkpoint.sh"], "committing the agent's work",
                         cwd=WORKSPACE, stdin=message.strip() or "Palot checkpoint")
        mirror = await self.sync(env)
        assert env.branch
        await git.run_git("fetch", "--quiet", str(mirror), f"{env.branch}:{env.branch}",
                          cwd=Path(env.data["project_path"]))

    async def archive(self, env: EnvironmentRecord) -> None:
        await self.publish_branch(env, "palot: archive checkpoint (uncommitted agent work)")
        await self.remove(env.id)

    async def destroy(self, env: EnvironmentRecord) -> None:
        await self.remove(env.id)
        if env.branch:
            await git.delete_branch(Path(env.data["project_path"]), env.branch, force=True)

    async def remove(self, env_id: str) -> None:
        """Detach, destroy the cloud environment (already gone is fine) and drop the mirror (also what
        ``palot gc`` does with one no agent owns)."""
        await self._detach(env_id)
        with contextlib.suppress(CloudEnvironmentGone):
            await self.worker().destroy(env_id)
        await asyncio.to_thread(shutil.rmtree, self.paths.environments / env_id, ignore_errors=True)

    async def status(self, env: EnvironmentRecord) -> str:
        if env.state != "active":
            return "stopped"
        try:
            return str((await self.worker().status(env.id))["status"])
        except CloudEnvironmentGone:
            return "missing"
        except PalotError:
            return "unreachable"

    async def resources(self, env: EnvironmentRecord) -> dict[str, Any] | None:
        try:
            status = await self.worker().status(env.id)
        except PalotError:
            return None
        return usage(str(status.get("instance_type") or env.data.get("instance_type") or ""),
                     float(status.get("running_seconds") or 0))

    async def failure(self, env: EnvironmentRecord) -> str | None:
        try:
            status = await self.worker().status(env.id)
        except CloudEnvironmentGone:
            return "the cloud environment is gone (destroyed outside Palot?); destroy the agent"
        except PalotError as exc:
            return f"{exc.message}; once the Worker is reachable again, prompt the agent to continue"
        if status.get("status") == "stopped" and status.get("stopped_unexpectedly_at"):
            return crash.notice(status)  # not started again yet: what the next prompt brings back
        return None

    async def notice(self, env: EnvironmentRecord) -> str | None:
        """What the user should know about the environment: that its container stopped unexpectedly, and what
        its restart restored and lost."""
        return crash.notice(await self.worker().status(env.id))

    # --- moving agents --------------------------------------------------------------

    async def preflight(self, spec: EnvironmentSpec, head: str) -> None:
        _refuse_options(spec)
        await _check_worker(self.worker())

    async def _export(self, env: EnvironmentRecord, bundle: Path, ref: str) -> tuple[str, str]:
        worker, remote = self.worker(), f"{TRANSFER}/export-{secrets.token_hex(4)}.bundle"
        assert env.base_commit
        try:
            # The same recipe as a local snapshot (palot.git's snapshot.sh), run by the environment's daemon.
            argv = ["sh", "-c", git.SNAPSHOT_SCRIPT, "snapshot.sh", ref, remote, env.base_commit]
            out = await worker.run(env.id, argv, "bundling the agent's work", cwd=WORKSPACE,
                                   stdin="palot: snapshot (uncommitted work)")
            bundle.parent.mkdir(parents=True, exist_ok=True)
            bundle.write_bytes(await worker.get_file(env.id, remote))
        finally:
            with contextlib.suppress(PalotError):
                await worker.delete_file(env.id, remote)
        head, commit = out.split()
        return head, commit

    async def export_code(self, env: EnvironmentRecord, bundle: Path, snapshot_ref: str) -> tuple[str, str]:
        return await self._export(env, bundle, snapshot_ref)

    async def import_code(self, env: EnvironmentRecord, bundle: Path, snapshot_ref: str) -> None:
        worker, remote = self.worker(), f"{TRANSFER}/import-{secrets.token_hex(4)}.bundle"
        assert env.branch
        await worker.put_file(env.id, remote, bundle.read_bytes())
        try:
            await worker.run(env.id, ["sh", "-c", git.RESTORE_SCRIPT, "restore.sh", remote, snapshot_ref, env.branch],
                             "putting the agent's code in place", cwd=WORKSPACE)
        finally:
            with contextlib.suppress(PalotError):
                await worker.delete_file(env.id, remote)
        await git.checkout_snapshot(self.host_path(env), bundle, snapshot_ref, env.branch)

    async def export_session(self, env: EnvironmentRecord, session_id: str) -> bytes:
        # Into a file, not a pipe: OpenCode 1.18 exits before a piped stdout drains (cut at 384 KiB).
        worker, remote = self.worker(), f"{TRANSFER}/export-{secrets.token_hex(4)}.json"
        try:
            await worker.run(env.id, ["sh", "-c", 'umask 077 && opencode export "$1" > "$2"', "sh", session_id,
                                      remote], "`opencode export`", cwd=WORKSPACE)
            return await worker.get_file(env.id, remote)
        finally:
            with contextlib.suppress(PalotError):
                await worker.delete_file(env.id, remote)

    async def import_session(self, env: EnvironmentRecord, data: bytes) -> None:
        worker, remote = self.worker(), f"{TRANSFER}/import-{secrets.token_hex(4)}.json"
        await worker.put_file(env.id, remote, data)
        try:
            await worker.run(env.id, ["opencode", "import", remote], "`opencode import`", cwd=WORKSPACE)
        finally:
            with contextlib.suppress(PalotError):
                await worker.delete_file(env.id, remote)

    async def run_setup(self, env: EnvironmentRecord, script: str) -> None:
        await self.worker().run(env.id, ["bash", "-c", script], "the setup script", cwd=WORKSPACE)

    async def processes(self, env: EnvironmentRecord) -> list[ProcessInfo]:
        source = Path(procscan.__file__).read_text()
        out = await self.worker().run(env.id, ["python3", "-c", source, WORKSPACE], "listing processes")
        return [ProcessInfo(command=p["command"], cwd=p["cwd"], ports=tuple(p["ports"])) for p in json.loads(out or "[]")]

    async def start_process(self, env: EnvironmentRecord, process: ProcessInfo) -> None:
        await self.worker().spawn(env.id, ["bash", "-c", process.command], cwd=str(Path(WORKSPACE) / process.cwd))

    async def stop_processes(self, env: EnvironmentRecord, processes: list[ProcessInfo]) -> None:
        """Nothing to do: destroying the environment stops them."""

    def reserve(self, options: dict[str, Any] | None) -> str | None:
        return None  # nothing is made ahead of need in this tier

    async def discard(self, env_id: str, spec: EnvironmentSpec) -> None:
        await self.remove(env_id)


#: The Worker API version this Palot needs (2: durable workspaces, pause and resume).
WORKER_VERSION = 2


async def _check_worker(worker: WorkerClient) -> dict[str, Any]:
    """The Worker's /health, refused when the Worker is older than this Palot."""
    health = await worker.health()
    if int(health.get("version") or 1) < WORKER_VERSION:
        raise CloudWorkerError(f"the Worker at {worker.url} is older than this Palot (API version "
                               f"{health.get('version')}, {WORKER_VERSION} needed: durable workspaces)",
                               "update it with `palot cloud deploy`")
    return health


def _refuse_options(spec: EnvironmentSpec) -> None:
    if spec.options:
        raise InvalidInput(f"cloud environments take no options ({', '.join(sorted(spec.options))})",
                           "the instance type is the Worker's (wrangler.toml); drop the options")
