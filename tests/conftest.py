"""Shared fixtures: the real OpenCode binary, isolated Palot homes, sample git repositories.

The scripted model is the only stand-in: every test that needs a server
starts a real ``opencode serve`` (isolated HOME/XDG dirs, generated password).
"""

from __future__ import annotations

import contextlib
import os
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

import workers
from loop_blocks import no_loop_held_by_palot  # noqa: F401 - autouse: a test fails when Palot's code held a loop
from palot import Palot, PalotPaths
from palot.install import ensure_opencode, install_ripgrep

SCRIPTS = Path(__file__).parent / "scripts"
CORE_SCRIPT = SCRIPTS / "core.json"


def pytest_itemcollected(item: pytest.Item) -> None:
    if "container_engine" in getattr(item, "fixturenames", ()):
        item.add_marker(pytest.mark.engine)


# `make test` runs on xdist workers, grouped by tests/workers.py (one worker for every engine test, and each
# other module whole on one worker).
pytest_configure = workers.configure
pytest_unconfigure = workers.unconfigure
pytest_collection_modifyitems = workers.collected
pytest_xdist_make_scheduler = workers.make_scheduler


@pytest.fixture(scope="session")
def opencode_bin() -> Path:
    """The pinned OpenCode where `make setup` put it, shared by every Palot home (installed if missing, so a test
    never skips for lack of it). Nothing is exported: subprocesses find it the way a user's would."""
    binary = ensure_opencode()
    install_ripgrep()
    return binary


def git(cwd: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True).stdout


def make_repo(path: Path, files: dict[str, str] | None = None) -> Path:
    """A git repository with one commit on ``main``."""
    path.mkdir(parents=True, exist_ok=True)
    git(path, "init", "-q", "-b", "main")
    git(path, "config", "user.email", "test@example.com")
    git(path, "config", "user.name", "Test")
    for name, content in (files or {"README.md": "# sample project\n"}).items():
        (path / name).parent.mkdir(parents=True, exist_ok=True)
        (path / name).write_text(content)
    git(path, "add", "-A")
    git(path, "commit", "-q", "-m", "initial")
    return path


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    return make_repo(tmp_path / "project")


@pytest.fixture
def paths(tmp_path: Path) -> PalotPaths:
    return PalotPaths(tmp_path / "palot-home")


async def stop_started_service(home: Path) -> None:
    """Stop the service a command of the test (the CLI, a front end) started for ``home``, if any: it would
    outlive the test."""
    from palot.client import PalotClient

    client = PalotClient(home, autostart=False)
    try:
        await client.stop_service()
    finally:
        await client.close()


@contextlib.asynccontextmanager
async def running_palot(home: Path, opencode_bin: Path, script: Path = CORE_SCRIPT) -> AsyncIterator[Palot]:
    """A started Palot on its own shared server with the scripted model; closed and stopped after."""
    p = Palot(PalotPaths(home), isolated=True, scripted=str(script), opencode_bin=opencode_bin)
    await p.start()
    try:
        yield p
    finally:
        await stop_started_service(home)
        await p.close()
        await p.stop_server()


@pytest.fixture
async def palot(paths: PalotPaths, opencode_bin: Path) -> AsyncIterator[Palot]:
    """A started Palot on its own shared server with the scripted model."""
    async with running_palot(paths.home, opencode_bin) as p:
        yield p


# --- container engine ---------------------------------------------------------

REPO_ROOT = Path(__file__).resolve().parent.parent


class Engine:
    """A private dockerd for the test session (data kept in .cache/engine, so images survive runs)."""

    def __init__(self) -> None:
        self.run_dir = Path(f"/tmp/palot-test-engine-{os.getuid()}")  # short: unix socket paths are limited
        self.data_root = REPO_ROOT / ".cache" / "engine"
        self.host = f"unix://{self.run_dir}/docker.sock"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        import shutil
        import time

        dockerd = shutil.which("dockerd")
        if dockerd is None:
            pytest.fail("dockerd is not installed: run `make test` (it installs docker.io) or apt-get install docker.io")
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.data_root.mkdir(parents=True, exist_ok=True)
        self._stop_stale()
        log = open(self.run_dir / "dockerd.log", "ab")
        self.proc = subprocess.Popen(
            [dockerd, "--host", self.host, "--data-root", str(self.data_root), "--exec-root",
             str(self.run_dir / "exec"), "--pidfile", str(self.run_dir / "dockerd.pid")],
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True,
        )
        deadline = time.monotonic() + 60
        while not self.reachable():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"dockerd did not start: {(self.run_dir / 'dockerd.log').read_text()[-2000:]}")
            time.sleep(0.2)

    def _stop_stale(self) -> None:
        """End the dockerd an interrupted run left on this socket: the tests would talk to it (another
        checkout's data, its leftover containers) and could never stop it."""
        import signal
        import time

        pidfile = self.run_dir / "dockerd.pid"
        try:
            pid = int(pidfile.read_text().strip())
            os.kill(pid, signal.SIGTERM)
        except (OSError, ValueError):
            return
        deadline = time.monotonic() + 60  # it stops its containers first
        while time.monotonic() < deadline:
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                return
            time.sleep(0.2)
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)

    def reachable(self) -> bool:
        out = subprocess.run(["docker", "-H", self.host, "version", "--format", "{{.Server.Version}}"],
                             capture_output=True, text=True)
        return out.returncode == 0

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None


@pytest.fixture(scope="session")
def container_engine(opencode_bin: Path):
    """A private Docker engine with the agent image built (offline, from the cached base)."""
    from palot.images import build_agent_image
    from palot.paths import cache_dir

    engine = Engine()
    engine.start()
    os.environ["DOCKER_HOST"] = engine.host
    try:
        build_agent_image(PalotPaths.default(), cache=cache_dir())
        yield engine
    finally:
        engine.stop()


@pytest.fixture
async def service(paths: PalotPaths, opencode_bin: Path):
    """A real ``palot serve`` process for a fresh Palot home, with the scripted model; yields a connected client."""
    from service_support import running_service

    async with running_service(paths.home) as client:
        yield client
