"""Helpers for the Jupyter tests: a Palot service per module (or notebook), stored widget state, JupyterLab.

Not a test module. Everything it starts is stopped: services through their API, the rest by PID.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import secrets
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio
from palot.client import PalotClient
from palot.servers import pid_alive, terminate
from palot_jupyter import Dashboard
from service_support import running_service, start_service, stop_service, wait_ready

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE_NOTEBOOK = ROOT / "jupyter_ext" / "examples" / "dashboard.ipynb"
ARTIFACTS = ROOT / "test-artifacts"
KERNEL_NAME = "python3"  # this venv's own (ipykernel installs it), as a user gets it
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-background-networking",
    "--disable-component-update", "--no-first-run", "--disable-sync",
]


def new_user_env(user_home: Path) -> dict[str, str]:
    """The environment of a person who has just run ``make setup`` and has nothing else: this machine's
    environment with ``user_home`` as HOME and none of Palot's, Jupyter's or the XDG variables (their defaults
    then live under that HOME), so nothing a test harness sets reaches the notebook."""
    user_home.mkdir(parents=True, exist_ok=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PALOT_", "XDG_", "JUPYTER", "DOCKER_"))}
    return {**env, "HOME": str(user_home)}


def notebook_home(user_home: Path) -> Path:
    """Where the example notebook keeps its Palot home for a user without ``$PALOT_HOME``."""
    return user_home / ".local" / "share" / "palot" / "notebook"


@contextlib.contextmanager
def notebook_service(user_home: Path) -> Iterator[Path]:
    """A Palot service on the demo's scripted model for the example notebook's home of a new user (what
    ``palot serve --scripted demo --isolated`` would run), started before the kernel and stopped after it;
    yields that home. The kernel's ``Dashboard()`` finds it there."""
    home = notebook_home(user_home)
    proc = start_service(home, "demo")

    async def ready() -> None:
        await (await wait_ready(home, proc)).close()

    try:
        asyncio.run(ready())
        yield home
    finally:
        asyncio.run(stop_service(home, proc))


# --- stored widget state -----------------------------------------------------------


@dataclass
class WidgetState:
    """The ``application/vnd.jupyter.widget-state+json`` a notebook stored: models by id."""

    models: dict[str, dict[str, Any]]

    @classmethod
    def of(cls, nb: Any) -> WidgetState:
        return cls(nb.metadata["widgets"]["application/vnd.jupyter.widget-state+json"]["state"])

    def state(self, model_id: str) -> dict[str, Any]:
        return self.models[model_id.removeprefix("IPY_MODEL_")]["state"]

    def with_class(self, cls: str) -> list[dict[str, Any]]:
        return [m["state"] for m in self.models.values() if cls in m["state"].get("_dom_classes", [])]

    def of_model(self, model_name: str) -> list[dict[str, Any]]:
        return [m["state"] for m in self.models.values() if m["model_name"] == model_name]

    def children(self, state: dict[str, Any]) -> list[dict[str, Any]]:
        return [self.state(c) for c in state.get("children", [])]

    def rows(self) -> list[dict[str, str]]:
        """The dashboard's agent rows: title, status and environment (from the row's classes)."""
        out = []
        for row in self.with_class("palot-row"):
            classes = row["_dom_classes"]
            cells = {next(c for c in cell["_dom_classes"] if c.startswith("palot-c-")).removeprefix("palot-c-"):
                     cell["description"] if cell["_model_name"] == "ButtonModel" else cell["value"]
                     for cell in self.children(row)}
            out.append({
                "title": cells["title"], "elapsed": cells["elapsed"], "tokens": cells["tokens"], "cost": cells["cost"],
                "status": next(c for c in classes if c.startswith("palot-st-")).removeprefix("palot-st-"),
                "environment": next(c for c in classes if c.startswith("palot-env-")).removeprefix("palot-env-"),
            })
        return out

    def html_containing(self, text: str) -> list[str]:
        return [m["value"] for m in self.of_model("HTMLModel") if text in m.get("value", "")]


# --- JupyterLab ------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _children(pid: int) -> list[int]:
    out = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        with contextlib.suppress(OSError, ValueError, IndexError):
            stat = Path(f"/proc/{entry}/stat").read_text()
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                out.append(int(entry))
    return out


@dataclass
class JupyterLab:
    url: str
    token: str
    proc: subprocess.Popen[bytes]
    log: Path

    def lab_url(self, path: str) -> str:
        return f"{self.url}/lab/tree/{path}?token={self.token}"


#: Start the notebook's kernel without asking, and never fetch news (offline, no dialogs).
_LAB_SETTINGS = {
    "@jupyterlab/notebook-extension:tracker": {"autoStartDefaultKernel": True},
    "@jupyterlab/apputils-extension:notification": {"fetchNews": "false", "checkForUpdates": False},
}


@contextlib.contextmanager
def jupyterlab(root: Path, user_home: Path) -> Iterator[JupyterLab]:
    """JupyterLab serving ``root``, run as a new user whose home is ``user_home`` (see :func:`new_user_env`).

    Stopped by PID at the end, with every kernel it started.
    """
    token = secrets.token_hex(16)
    port = free_port()
    env = new_user_env(user_home)
    # What a user sets in the settings editor, and the same as overrides (read before the first page loads).
    for plugin, values in _LAB_SETTINGS.items():
        path = user_home / ".jupyter" / "lab" / "user-settings" / f"{plugin.replace(':', '/')}.jupyterlab-settings"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(values))
    state = user_home / "lab-test"
    app_settings = state / "app-settings"
    app_settings.mkdir(parents=True, exist_ok=True)
    (app_settings / "overrides.json").write_text(json.dumps(_LAB_SETTINGS))
    log = state / "jupyterlab.log"
    cmd = [
        sys.executable, "-m", "jupyterlab", "--no-browser", "--allow-root", f"--port={port}", "--port-retries=0",
        "--ip=127.0.0.1", f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={root}",
        f"--LabServerApp.app_settings_dir={app_settings}",
    ]
    with open(log, "wb") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env,
                                cwd=root)
    url = f"http://127.0.0.1:{port}"
    kernels: set[int] = set()
    try:
        deadline = time.monotonic() + 60
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"JupyterLab exited: {log.read_text(errors='replace')[-2000:]}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{url}/api/status", params={"token": token}, timeout=2).status_code == 200:
                    break
            if time.monotonic() > deadline:
                raise RuntimeError(f"JupyterLab did not start: {log.read_text(errors='replace')[-2000:]}")
            time.sleep(0.2)
        lab = JupyterLab(url, token, proc, log)
        try:
            yield lab
        finally:
            kernels.update(_children(proc.pid))
    finally:
        terminate(proc.pid)
        for pid in kernels:
            if pid_alive(pid):
                terminate(pid)


# --- fixtures for the widget tests (each test module that imports them gets its own server) ---------


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def shared_service(tmp_path_factory: pytest.TempPathFactory, opencode_bin: Path
                         ) -> AsyncIterator[PalotClient]:
    """A real ``palot serve`` (scripted model) shared by the module's tests; a client of it."""
    async with running_service(tmp_path_factory.mktemp("jupyter") / "palot-home") as client:
        yield client


@pytest_asyncio.fixture(loop_scope="module")
async def dash(shared_service: PalotClient) -> AsyncIterator[Dashboard]:
    dashboard = Dashboard(shared_service)
    await dashboard.start()
    try:
        yield dashboard
    finally:
        await dashboard.aclose()


@contextlib.asynccontextmanager
async def dashboard_of_new_service(home: Path) -> AsyncIterator[Dashboard]:
    """A started dashboard on a service of its own for ``home`` (started with this process's environment)."""
    async with running_service(home) as client:
        dashboard = Dashboard(client)
        await dashboard.start()
        try:
            yield dashboard
        finally:
            await dashboard.aclose()


def press(button: Any) -> None:
    """Click ``button`` as a person would: only when it is enabled (``click()`` itself ignores ``disabled``,
    which once hid buttons the dashboard never enabled)."""
    assert not button.disabled, f"the '{button.description}' button is disabled"
    button.click()
