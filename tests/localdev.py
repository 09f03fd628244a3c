"""Test scaffolding: Palot's cloud-tier Worker (``images/cloudflare``) run locally under ``wrangler dev``.

Tests and offline rehearsals need the real Worker and Container code without a Cloudflare
account. ``wrangler dev`` runs both in workerd on this machine and starts each environment's
container in the local Docker engine (``DOCKER_HOST``). Three things stand between that and a
machine without buildx or Docker Hub, all handled here:

- wrangler builds images with ``docker build --load --provenance=false`` (buildx only):
  ``images/cloudflare/dev/docker`` (WRANGLER_DOCKER_BIN) drops those flags when buildx is missing;
- workerd runs a networking sidecar image pulled from Docker Hub: Palot builds its own
  (``images/cloudflare/dev/sidecar``, named by MINIFLARE_CONTAINER_EGRESS_IMAGE), and the wrapper
  makes ``docker pull`` of an image already present a no-op. Like Cloudflare's, the sidecar enforces
  ``ENABLE_INTERNET=false`` (``enable_internet=False`` here);
- wrangler tries to reach Cloudflare (the ``Request.cf`` placeholder, update checks, metrics):
  harmless warnings in the log when offline; metrics are switched off.

workerd names containers ``workerd-<worker name>-AgentContainer-<object id>`` (plus ``-proxy`` for
the sidecar), and the object id derives from the environment id alone. Each LocalWorker therefore
runs under its own worker name, ``palot-<random>``, so several can share one engine, and ``stop()``
removes exactly its own containers (wrangler removes the app containers on exit, not the sidecars).

``serving_git`` serves bare repositories with ``git daemon`` where the environments can clone them (the
remote route of palot.cloud.route).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import secrets
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

import httpx
from palot.cloud.deploy import ensure_node_modules, worker_dir
from palot.errors import CloudWorkerError, EngineError, PalotError, ToolMissing
from palot.images import AGENT_IMAGE
from palot.install import Progress, quiet
from palot.paths import write_private

READY_TIMEOUT = 120.0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class LocalWorker:
    """The Worker under ``wrangler dev`` on 127.0.0.1, with containers in the local engine.

    ``workdir`` receives everything generated: the wrangler config, ``.dev.vars`` (the token, mode
    0600), the container's Dockerfile, wrangler's state (Durable Object storage) and
    ``wrangler.log``. The token is never printed.
    """

    def __init__(self, *, token: str, image: str = AGENT_IMAGE, docker_host: str | None = None,
                 port: int | None = None, sleep_after: str = "30m", save_every: str = "5m",
                 enable_internet: bool = True, workdir: Path) -> None:
        self.token = token
        self.image = image
        self.docker_host = docker_host or os.environ.get("DOCKER_HOST")
        self.port = port
        self.sleep_after = sleep_after
        self.save_every = save_every
        self.enable_internet = enable_internet
        self.workdir = Path(workdir)
        self.log_path = self.workdir / "wrangler.log"
        self.name = f"palot-{secrets.token_hex(3)}"  # the worker name: container names start with it
        self.container_prefix = f"workerd-{self.name}-"
        self._proc: subprocess.Popen[bytes] | None = None

    # --- public ---------------------------------------------------------------------------

    @property
    def url(self) -> str:
        if self.port is None or self._proc is None:
            raise CloudWorkerError("the local Worker is not running", "call LocalWorker.start() first")
        return f"http://127.0.0.1:{self.port}"

    def start(self, progress: Progress = quiet) -> None:
        """Build what is missing, start ``wrangler dev``, and wait until the Worker answers /health."""
        ensure_node_modules(progress)
        self._docker("image", "inspect", self.image, error=(
            f"the image {self.image} is not in the container engine",
            "build it with `palot images build` (offline), or `docker build -t palot-agent images/agent`"))
        sidecar = self._sidecar_image(progress)
        config = self._write_config()
        self.port = self.port or _free_port()
        env = {
            **os.environ,
            "WRANGLER_DOCKER_BIN": str(worker_dir() / "dev" / "docker"),
            "MINIFLARE_CONTAINER_EGRESS_IMAGE": sidecar,
            "WRANGLER_SEND_METRICS": "false",
            "CLOUDFLARE_CF_FETCH_ENABLED": "false",  # no Request.cf download: placeholder values
            "WRANGLER_LOG_PATH": str(self.workdir / "wrangler-logs"),
            "XDG_CONFIG_HOME": str(self.workdir / "config"),  # wrangler's own settings stay here
            "NO_COLOR": "1",
            "CI": "1",
        }
        if self.docker_host:
            env["DOCKER_HOST"] = self.docker_host
        progress(f"starting wrangler dev on 127.0.0.1:{self.port}")
        log = open(self.log_path, "ab")
        try:
            self._proc = subprocess.Popen(
                [str(worker_dir() / "node_modules" / ".bin" / "wrangler"), "dev", "-c", str(config),
                 "--ip", "127.0.0.1", "--port", str(self.port), "--show-interactive-dev-session=false",
                 "--log-level", "info"],
                cwd=self.workdir, env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                start_new_session=True,  # one process group: wrangler, workerd and docker children
            )
        finally:
            log.close()
        try:
            self._wait_ready()
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        """Stop wrangler (its whole process group) and remove every container it created."""
        proc, self._proc = self._proc, None
        if proc is not None and proc.poll() is None:
            self._signal_group(proc, signal.SIGTERM)  # wrangler removes its app containers on exit
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                self._signal_group(proc, signal.SIGKILL)
                proc.wait()
        if proc is not None:
            self._signal_group(proc, signal.SIGKILL)  # workerd children that outlived wrangler
        self._remove_containers()

    def containers(self) -> list[str]:
        """Names of the engine's containers made by this Worker (apps and their ``-proxy`` sidecars)."""
        out = self._docker("ps", "-a", "--filter", f"name=^{self.container_prefix}", "--format", "{{.Names}}")
        return [name for name in out.split() if name.startswith(self.container_prefix)]

    def saved_keys(self) -> set[str]:
        """The keys of the objects in the Worker's SAVES bucket, read from wrangler's local R2 state (SQLite)."""
        import sqlite3

        keys: set[str] = set()
        for db in (self.workdir / ".wrangler" / "state" / "v3" / "r2").glob("*/*.sqlite"):
            with contextlib.closing(sqlite3.connect(db)) as conn:
                if conn.execute("SELECT 1 FROM sqlite_master WHERE name = '_mf_objects'").fetchone():
                    keys |= {key for (key,) in conn.execute("SELECT key FROM _mf_objects")}
        return keys

    def __enter__(self) -> LocalWorker:
        self.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()

    # --- helpers --------------------------------------------------------------------------

    def _docker(self, *args: str, error: tuple[str, str] | None = None, timeout: float = 600) -> str:
        env = {**os.environ, **({"DOCKER_HOST": self.docker_host} if self.docker_host else {})}
        try:
            out = subprocess.run(["docker", *args], capture_output=True, text=True, env=env, timeout=timeout,
                                 stdin=subprocess.DEVNULL)
        except FileNotFoundError as e:
            raise ToolMissing("the docker CLI is not installed (wrangler drives containers through it)",
                              "install it (`apt-get install docker.io`, or docker-ce-cli)") from e
        if out.returncode != 0:
            message, fix = error or (f"`docker {args[0]}` failed: {out.stderr.strip()[-600:]}",
                                     "check that the container engine at DOCKER_HOST is running")
            raise EngineError(message, fix)
        return out.stdout

    def _sidecar_image(self, progress: Progress) -> str:
        """``palot-cf-sidecar:<digest>``, built FROM the agent image (it has python3) when missing."""
        context = worker_dir() / "dev" / "sidecar"
        base_id = self._docker("image", "inspect", "--format", "{{.Id}}", self.image).strip()
        digest = hashlib.sha256(base_id.encode())
        for name in ("Dockerfile", "sidecar.py"):
            digest.update((context / name).read_bytes())
        tag = f"palot-cf-sidecar:{digest.hexdigest()[:16]}"
        try:
            self._docker("image", "inspect", tag)
        except PalotError:
            progress(f"building {tag}")
            self._docker("build", "-q", "-t", tag, "--build-arg", f"BASE={self.image}", str(context))
        return tag

    def _write_config(self) -> Path:
        """A copy of wrangler.toml whose code is the real ``src/`` and whose image is ``self.image``."""
        self.workdir.mkdir(parents=True, exist_ok=True)
        image_dir = self.workdir / "image"
        image_dir.mkdir(exist_ok=True)
        (image_dir / "Dockerfile").write_text(
            f"FROM {self.image}\nENV PALOT_DAEMON_PORT=8081\nEXPOSE 8080 8081\n")
        text = (worker_dir() / "wrangler.toml").read_text()
        replacements = {
            r'^main = ".*"$': f'main = "{worker_dir() / "src" / "index.ts"}"',
            r'^image = ".*"$': f'image = "{image_dir / "Dockerfile"}"',
            r'^SLEEP_AFTER = ".*"$': f'SLEEP_AFTER = "{self.sleep_after}"',
            r'^SAVE_EVERY = ".*"$': f'SAVE_EVERY = "{self.save_every}"',
            r'^ENABLE_INTERNET = ".*"$': f'ENABLE_INTERNET = "{str(self.enable_internet).lower()}"',
            r'^name = ".*"$': f'name = "{self.name}"',
        }
        for pattern, line in replacements.items():
            text, count = re.subn(pattern, line.replace("\\", "\\\\"), text, count=1, flags=re.MULTILINE)
            if count != 1:
                raise CloudWorkerError(f"{worker_dir() / 'wrangler.toml'} has no line matching {pattern}",
                                       "restore images/cloudflare/wrangler.toml from git")
        config = self.workdir / "wrangler.toml"
        config.write_text(text)
        dev_vars = self.workdir / ".dev.vars"
        write_private(dev_vars, f"PALOT_TOKEN={self.token}\n")
        return config

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + READY_TIMEOUT
        headers = {"authorization": f"Bearer {self.token}"}
        while True:
            assert self._proc is not None
            if self._proc.poll() is not None:
                raise CloudWorkerError(f"wrangler dev exited with {self._proc.returncode}:\n{self._log_tail()}",
                                       f"see {self.log_path}")
            try:
                if httpx.get(f"http://127.0.0.1:{self.port}/health", headers=headers, timeout=5).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise CloudWorkerError(f"the local Worker did not answer /health within {READY_TIMEOUT:.0f} s:\n"
                                       f"{self._log_tail()}", f"see {self.log_path}")
            time.sleep(0.5)

    def _log_tail(self, chars: int = 3000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except OSError:
            return "(no log)"

    def _remove_containers(self) -> None:
        names = self.containers()
        if names:
            self._docker("rm", "--force", "--volumes", *names)

    @staticmethod
    def _signal_group(proc: subprocess.Popen[bytes], sig: signal.Signals) -> None:
        try:
            os.killpg(proc.pid, sig)
        except (ProcessLookupError, PermissionError):
            pass


@dataclass(frozen=True)
class GitServer:
    """``git daemon`` serving the bare repositories in ``root`` as ``git://<host>:<port>/<name>``."""

    root: Path
    host: str
    port: int

    def url(self, name: str) -> str:
        return f"git://{self.host}:{self.port}/{name}"


@contextlib.contextmanager
def serving_git(docker_host: str, root: Path) -> Iterator[GitServer]:
    """``git daemon`` serving ``root`` (made if missing) on the bridge gateway of the engine at ``docker_host``,
    where the environments' containers reach this machine (loopback would be a container's own). Test only:
    binding that one address, not every address, keeps the server off other networks."""
    root.mkdir(parents=True, exist_ok=True)
    gateway = subprocess.run(
        ["docker", "-H", docker_host, "network", "inspect", "bridge", "--format",
         "{{(index .IPAM.Config 0).Gateway}}"], capture_output=True, text=True, check=True).stdout.strip()
    with socket.socket() as s:
        s.bind((gateway, 0))
        port = s.getsockname()[1]
    daemon = subprocess.Popen(
        ["git", "daemon", "--reuseaddr", "--export-all", "--informative-errors", f"--base-path={root}",
         f"--listen={gateway}", f"--port={port}", str(root)],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 20
        while True:
            with contextlib.suppress(OSError), socket.create_connection((gateway, port), 1):
                break
            assert time.monotonic() < deadline, "git daemon did not start"
            time.sleep(0.2)
        yield GitServer(root, gateway, port)
    finally:
        daemon.terminate()
        daemon.wait(10)
