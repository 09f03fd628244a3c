"""The one shared OpenCode server that serves every local project: starting, attaching, supervising.

``ServerManager`` starts ``opencode serve`` on loopback with a generated
password, or attaches to the one another Palot process already runs (a lock
file serialises the decision; ``server.json``, mode 0600, says who owns what).
A supervisor task health-checks the server and restarts it, on the same port
and password, if it dies, or if it stopped answering at the kernel's limit of
memory mappings (it never recovers: limits.py); clients and the event stream carry on.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from ..errors import InvalidState, OpenCodeVersionMismatch, PalotError, ServerUnavailable
from ..install import OPENCODE_VERSION, Progress, ensure_opencode, require_opencode
from ..opencode import Health, OpenCodeClient
from ..paths import PalotPaths
from . import limits
from .process import child_pythonpath, end, free_port, pid_alive, wait_port
from .settings import ServerSettings
from .state import ServerState, StateFile

log = logging.getLogger(__name__)
#: How long a live server is silent before the supervisor looks whether it is stuck (limits.py).
STUCK_CHECK_AFTER = 5.0


class ServerManager:
    """Runs (or attaches to) the one shared, password-protected OpenCode server.

    With ``attach_any`` a running Palot server is used whatever its settings
    (CLI commands other than ``palot up`` do this). ``isolated`` gives OpenCode its own HOME and XDG dirs under Palot's data dir
    and the offline environment (demo, tests); otherwise it uses the user's own
    OpenCode config and providers. ``scripted`` ("demo" or a script file) starts
    Palot's scripted model and configures it as OpenCode's provider.
    """

    def __init__(
        self,
        paths: PalotPaths,
        *,
        opencode_bin: Path | None = None,
        isolated: bool = False,
        scripted: str | None = None,
        config: dict[str, Any] | None = None,
        port: int | None = None,
        supervise: bool = True,
        health_interval: float = 1.0,
        attach_any: bool = False,
        busy_timeout: float = 180.0,
        progress: Progress | None = None,
    ) -> None:
        self.paths = paths
        self.opencode_bin = opencode_bin
        self.settings = ServerSettings(
            isolated=isolated, config=config or {},
            scripted=str(Path(scripted).resolve()) if scripted and scripted != "demo" else scripted)
        self.states = StateFile(paths.server_dir)
        self.port = port
        self.supervise = supervise
        self.health_interval = health_interval
        self.attach_any = attach_any
        self.busy_timeout = busy_timeout
        # Progress goes to stderr by default: stdout may be a protocol stream (MCP, LSP over stdio).
        self.progress: Progress = progress or _to_stderr
        self.state: ServerState | None = None
        self.client: OpenCodeClient | None = None
        self.restarts = 0
        self.attached = False
        self._proc: subprocess.Popen[bytes] | None = None
        self._scripted_proc: subprocess.Popen[bytes] | None = None
        self._supervisor: asyncio.Task[None] | None = None
        self.map_limit: int | None = None  # the kernel's vm.max_map_count unless set (tests set a low one)

    # --- public -------------------------------------------------------------

    @property
    def url(self) -> str:
        if self.state is None:
            raise ServerUnavailable("the shared OpenCode server is not started", "call ServerManager.start()")
        return self.state.url

    @property
    def isolated(self) -> bool:
        return self.settings.isolated

    @property
    def scripted(self) -> str | None:
        return self.settings.scripted

    @property
    def config(self) -> dict[str, Any]:
        return self.settings.config

    @property
    def profile(self) -> dict[str, Any]:
        """The settings a running server must match for this manager to attach to it."""
        return self.settings.profile

    async def start(self) -> ServerState:
        """Attach to the running Palot server or start one; then supervise it.

        A server whose process is alive is never replaced, however slowly it answers (a busy server misses
        health checks): Palot waits for it, saying so through ``progress``.
        """
        self.paths.ensure()
        deadline = time.monotonic() + self.busy_timeout
        while True:
            async with self.states.lock():
                state = self.states.read()
                if state is not None and await self._healthy(state):
                    self._attach(state)
                    break
                if state is None or not self._owns_live_process(state):
                    if state is not None:
                        await self._kill_stale(state)  # only the scripted model can be left of a dead server
                    state = await self._spawn(port=self.port or free_port(), password=secrets.token_urlsafe(24))
                    break
            if await self._replace_if_stuck(state):
                continue
            # Alive but silent: wait outside the lock, so the server's other clients are not held up.
            if time.monotonic() > deadline:
                raise ServerUnavailable(
                    f"the shared OpenCode server (pid {state.pid}) is running but has not answered for "
                    f"{self.busy_timeout:.0f} s",
                    "wait for its agents to finish and try again, or run `palot down` to stop it",
                )
            self.progress(f"the shared OpenCode server (pid {state.pid}) is busy; waiting for it to answer …")
            await self._wait_healthy(state, min(10.0, max(0.1, deadline - time.monotonic())))
        self._adopt(state)
        if self.supervise:
            self._supervisor = asyncio.create_task(self._supervise(), name="palot-server-supervisor")
        return state

    def _attach(self, state: ServerState) -> None:
        if self.attach_any:
            # Adopt the running server's settings, so a restart keeps them.
            self.settings = ServerSettings.of_profile(state.profile)
        elif state.profile != self.profile:
            raise InvalidState(
                f"a Palot server is already running (pid {state.pid}) with other settings "
                f"({state.profile}) than asked ({self.profile})",
                "run `palot down` to stop it first, or start with the same options",
            )
        self.attached = True

    @staticmethod
    def _owns_live_process(state: ServerState) -> bool:
        return pid_alive(state.pid, must_contain="serve")

    async def _wait_healthy(self, state: ServerState, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if await self._healthy(state):
                return True
            if not self._owns_live_process(state):
                return False
            await asyncio.sleep(0.2)
        return False

    async def close(self) -> None:
        """Stop supervising and close the client; the server keeps running for other processes."""
        if self._supervisor:
            self._supervisor.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._supervisor
            self._supervisor = None
        if self.client:
            await self.client.aclose()
            self.client = None

    async def stop(self) -> None:
        """Stop the shared server (whoever started it) and the scripted model, and forget them."""
        await self.close()
        async with self.states.lock():
            state = self.states.read() or self.state
            if state is not None:
                await self._kill_stale(state)
            self.states.remove()
        for proc in (self._proc, self._scripted_proc):
            if proc is not None:
                with contextlib.suppress(subprocess.TimeoutExpired):
                    await asyncio.to_thread(proc.wait, timeout=5)
        self.state = None

    async def __aenter__(self) -> "ServerManager":
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    @staticmethod
    def read_running(paths: PalotPaths) -> ServerState | None:
        """The state of a running Palot server, if ``server.json`` names a live one."""
        state = StateFile(paths.server_dir).load()
        if state and pid_alive(state.pid, must_contain="serve"):
            return state
        return None

    # --- spawning -----------------------------------------------------------

    async def _kill_stale(self, state: ServerState) -> None:
        for pid, marker in ((state.pid, "serve"), (state.scripted_pid, "palot.scripted")):
            if pid is not None and pid_alive(pid, must_contain=marker):
                await end(pid)

    def cli(self) -> tuple[Path, dict[str, str]]:
        """The OpenCode binary and the environment to run its command line (export, import) on the
        shared server's data."""
        if self.state is None:
            raise ServerUnavailable("the shared OpenCode server is not started", "call ServerManager.start()")
        return (require_opencode(self.paths, self.opencode_bin),
                self.settings.server_env(self.paths, self.state.password, self.state.scripted_port))

    def environment_env(self, scripted_port: int, script_path: str) -> dict[str, str]:
        """See :meth:`.ServerSettings.environment_env`."""
        return self.settings.environment_env(scripted_port, script_path)

    def _start_scripted(self, port: int) -> subprocess.Popen[bytes]:
        log_path = self.paths.server_dir / "scripted.log"
        cmd = [sys.executable, "-m", "palot.scripted", "--script", self.scripted or "demo",
               "--host", "127.0.0.1", "--port", str(port)]
        with open(log_path, "ab") as out:
            return subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                    start_new_session=True, env={**os.environ, "PYTHONPATH": child_pythonpath()})

    def _start_opencode(self, binary: Path, port: int, password: str, scripted_port: int | None,
                        log_path: Path) -> subprocess.Popen[bytes]:
        env = self.settings.server_env(self.paths, password, scripted_port)
        with open(log_path, "ab") as out:
            # A new session: the server outlives this Palot process (`palot up`), and
            # Ctrl-C in the terminal does not reach it.
            return subprocess.Popen(
                [str(binary), "serve", "--hostname", "127.0.0.1", "--port", str(port)],
                stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                cwd=self.paths.home, env=env, start_new_session=True,
            )

    async def _spawn(
        self, *, port: int, password: str, reuse_scripted: tuple[int, int] | None = None
    ) -> ServerState:
        """Start the server (and the scripted model, unless a live one is reused as (pid, port))."""
        binary = await asyncio.to_thread(ensure_opencode, self.paths, self.opencode_bin, self.progress)
        scripted_pid = scripted_port = None
        starting_model: subprocess.Popen[bytes] | None = None
        started: list[int] = []  # what this start launched: ended if the start fails or is cancelled
        try:
            if self.scripted and reuse_scripted:
                scripted_pid, scripted_port = reuse_scripted
            elif self.scripted:
                scripted_port = free_port()
                self._scripted_proc = starting_model = await asyncio.to_thread(self._start_scripted, scripted_port)
                scripted_pid = starting_model.pid
                started.append(scripted_pid)
            log_path = self.paths.server_dir / "opencode.log"
            # In a thread: forking and writing the server's files take a while. OpenCode starts alongside the
            # scripted model (it asks the model nothing until a prompt): both take a second or more.
            self._proc = await asyncio.to_thread(self._start_opencode, binary, port, password, scripted_port, log_path)
            started.append(self._proc.pid)
            if starting_model is not None and scripted_port is not None:
                await wait_port(scripted_port, 15.0, starting_model, self.paths.server_dir / "scripted.log")
            state = ServerState(pid=self._proc.pid, port=port, password=password, version=OPENCODE_VERSION,
                                started_at=time.time(), profile=self.profile,
                                scripted_pid=scripted_pid, scripted_port=scripted_port)
            await self._until_healthy(state, log_path)
        except BaseException:  # failed, or cancelled (the service stops mid-restart): leave nothing running
            for pid in reversed(started):
                await end(pid)
            raise
        self.states.write(state)
        log.info("started OpenCode %s on %s (pid %s)", OPENCODE_VERSION, state.url, state.pid)
        return state

    async def _until_healthy(self, state: ServerState, log_path: Path) -> None:
        assert self._proc is not None
        deadline = time.monotonic() + 60
        # Short probes: one sent just before OpenCode serves is never answered (it cost 2 s a start); longer
        # after each that timed out, for a loaded machine.
        probe = 0.25
        while True:
            asked = time.monotonic()
            if await self._healthy(state, probe):
                break
            if time.monotonic() - asked >= probe:
                probe = min(probe * 2, 2.0)
            if self._proc.poll() is not None or time.monotonic() > deadline:
                tail = log_path.read_text(errors="replace")[-1500:]
                raise ServerUnavailable(
                    f"OpenCode did not start on 127.0.0.1:{state.port}; its log says:\n{tail}",
                    f"see {log_path}; if the port is taken, run `palot down` or pick another with --port",
                )
            await asyncio.sleep(0.1)
        health = await self._health(state)
        if health is not None and health.version != OPENCODE_VERSION:
            raise OpenCodeVersionMismatch(
                f"the server reports OpenCode {health.version}, Palot needs {OPENCODE_VERSION}",
                "run `palot doctor --fix`",
            )

    def _adopt(self, state: ServerState) -> None:
        self.state = state
        if self.client is None:
            self.client = OpenCodeClient(state.url, state.password)
        else:
            self.client.rebase(state.url)

    async def _health(self, state: ServerState, timeout: float = 2.0) -> Health | None:
        client = OpenCodeClient(state.url, state.password, timeout=timeout)
        try:
            return await client.health()
        except PalotError:
            return None
        finally:
            await client.aclose()

    async def _client_healthy(self) -> bool:
        # The supervisor reuses the manager's client: a new httpx client per check costs the loop ~50 ms.
        if self.client is None:
            return False
        try:
            return (await self.client.health(timeout=2.0)).healthy
        except PalotError:
            return False

    async def _healthy(self, state: ServerState, timeout: float = 2.0) -> bool:
        health = await self._health(state, timeout)
        return bool(health and health.healthy)

    # --- supervision --------------------------------------------------------

    def _server_alive(self) -> bool:
        state = self.state
        if state is None:
            return False
        if self._proc is not None and self._proc.pid == state.pid:
            return self._proc.poll() is None  # also reaps a dead child
        return pid_alive(state.pid, must_contain="serve")

    async def _supervise(self) -> None:
        silent_since: float | None = None
        warned = False
        while True:
            await asyncio.sleep(self.health_interval)
            assert self.state is not None
            if not self._server_alive():
                silent_since, warned = None, False
                await self._restart_logged()
                continue
            # A live server is never restarted: a busy one misses health checks, and killing it would end
            # every agent's turn on it. Say so once if it stays silent.
            if await self._client_healthy():
                silent_since, warned = None, False
                continue
            silent_since = silent_since or time.monotonic()
            if time.monotonic() - silent_since >= STUCK_CHECK_AFTER and await self._replace_if_stuck(self.state):
                silent_since, warned = None, False
                await self._restart_logged()
                continue
            if not warned and time.monotonic() - silent_since > 30:
                log.warning("the OpenCode server (pid %s) has not answered for 30 s; it is left running",
                            self.state.pid)
                warned = True

    async def _restart_logged(self) -> None:
        try:
            await self.restart()
        except PalotError as e:  # the supervisor goes on: it tries again at the next check
            log.error("could not restart the OpenCode server: %s", e)

    async def _replace_if_stuck(self, state: ServerState) -> bool:
        """End a silent server stuck at the kernel's memory-mapping limit (limits.py); True if it did."""
        return await limits.end_if_stuck(state.pid, self.map_limit, log)

    async def restart(self) -> ServerState:
        """Restart the dead server on the same port and password (or adopt another process's restart)."""
        old = self.state
        assert old is not None
        async with self.states.lock():
            current = self.states.read()
            if current is not None and current.pid != old.pid and self._owns_live_process(current):
                self._adopt(current)  # another Palot process got there first (busy or not, it is the server)
                return current
            reuse = None
            if old.scripted_pid and old.scripted_port and pid_alive(old.scripted_pid, must_contain="palot.scripted"):
                reuse = (old.scripted_pid, old.scripted_port)  # the model survived: only the server restarts
            if self._owns_live_process(old):
                return old  # never replace a live server
            try:
                state = await self._spawn(port=old.port, password=old.password, reuse_scripted=reuse)
            except ServerUnavailable:
                state = await self._spawn(port=free_port(), password=old.password, reuse_scripted=reuse)
        self.restarts += 1
        log.warning("OpenCode server restarted on %s (restart %d)", state.url, self.restarts)
        self._adopt(state)
        return state


def _to_stderr(message: str) -> None:
    print(f"palot: {message}", file=sys.stderr, flush=True)
