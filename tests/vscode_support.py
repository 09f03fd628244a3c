"""Helpers for the VS Code extension's tests: its node tests, and a real VS Code (code-server) to install it in.

Not a test module. `make test-deps` builds ``palot_lsp/vscode/palot.vsix`` and installs Node 24 and
code-server under ``.cache/vscode``; without them these tests fail, saying so. code-server runs headless on
loopback (a free port, ``--auth none``) as its own process group, stopped by that id at the end.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
from jupyter_support import free_port

ROOT = Path(__file__).resolve().parents[1]
EXTENSION = ROOT / "palot_lsp" / "vscode"
VSIX = EXTENSION / "palot.vsix"
NODE24_BIN = ROOT / ".cache" / "vscode" / "node24" / "package" / "bin"
CODE_SERVER = ROOT / ".cache" / "vscode" / "code-server" / "node_modules" / ".bin" / "code-server"
#: The venv's palot-lsp. code-server gives extensions the PATH of a login shell (Debian's /etc/profile resets
#: it), so the extension is pointed at it with its setting, as a user would whose palot-lsp is not on that PATH.
PALOT_LSP = Path(sys.executable).with_name("palot-lsp")

#: What a person would turn off in a fresh VS Code to work undisturbed: trust prompts (a new folder would be in
#: Restricted Mode, without extensions), the welcome page, tips and update checks.
USER_SETTINGS = {
    "security.workspace.trust.enabled": False,
    "workbench.startupEditor": "none",
    "workbench.tips.enabled": False,
    "workbench.enableExperiments": False,
    "telemetry.telemetryLevel": "off",
    "extensions.autoCheckUpdates": False,
    "extensions.autoUpdate": False,
    "update.mode": "none",
    "git.enabled": False,
    "window.restoreWindows": "none",
    "chat.disableAIFeatures": True,
    "workbench.secondarySideBar.defaultVisibility": "hidden",
}
#: Settings of the machine code-server runs on (its "Remote" settings, where an extension host reads
#: machine-scoped settings such as a program's path).
MACHINE_SETTINGS = {"palot.server.path": str(PALOT_LSP)}


def require(path: Path, what: str) -> None:
    assert path.exists(), f"{what} is missing ({path}): run `make test-deps`, which builds and installs it"


@dataclass
class CodeServer:
    url: str
    proc: subprocess.Popen[bytes]
    log: Path

    def folder_url(self, folder: Path) -> str:
        return f"{self.url}/?folder={folder}"


def code_server_env(user: Path, palot_home: Path) -> dict[str, str]:
    """code-server's environment: Node 24 on PATH, ``PALOT_HOME`` of the test's service, and a home of its own
    (nothing of the machine's VS Code or code-server settings)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("XDG_", "VSCODE_", "PALOT_"))}
    home = user / "home"
    home.mkdir(parents=True, exist_ok=True)
    return {**env, "HOME": str(home), "XDG_CONFIG_HOME": str(home / ".config"),
            "XDG_DATA_HOME": str(home / ".local" / "share"), "PALOT_HOME": str(palot_home),
            "PATH": os.pathsep.join([str(NODE24_BIN), env.get("PATH", "")])}


def _args(user: Path) -> list[str]:
    return [str(CODE_SERVER), "--user-data-dir", str(user / "data"), "--extensions-dir", str(user / "extensions"),
            "--disable-telemetry", "--disable-update-check", "--disable-workspace-trust"]


def install_extension(user: Path, env: dict[str, str]) -> None:
    """``code-server --install-extension palot.vsix`` into the test's extensions folder."""
    out = subprocess.run([*_args(user), "--install-extension", str(VSIX)], env=env, capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0 and "successfully installed" in out.stdout, out.stdout + out.stderr
    installed = list((user / "extensions").glob("palot.palot-*"))
    assert installed, f"no palot extension in {user / 'extensions'}: {out.stdout}"


@contextlib.contextmanager
def code_server(user: Path, env: dict[str, str]) -> Iterator[CodeServer]:
    """code-server on a free loopback port with ``user``'s data and extensions; stopped (with its extension
    host and the palot-lsp it started) by its process group at the end."""
    settings = user / "data" / "User" / "settings.json"
    settings.parent.mkdir(parents=True, exist_ok=True)
    settings.write_text(json.dumps(USER_SETTINGS, indent=2))
    machine = user / "data" / "Machine" / "settings.json"
    machine.parent.mkdir(parents=True, exist_ok=True)
    machine.write_text(json.dumps(MACHINE_SETTINGS, indent=2))
    port = free_port()
    log = user / "code-server.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen([*_args(user), "--auth", "none", "--bind-addr", f"127.0.0.1:{port}"], env=env,
                                stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"code-server exited: {log.read_text(errors='replace')[-2000:]}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{url}/healthz", timeout=2).status_code == 200:
                    break
            if time.monotonic() > deadline:
                raise RuntimeError(f"code-server did not start: {log.read_text(errors='replace')[-2000:]}")
            time.sleep(0.2)
        yield CodeServer(url, proc, log)
    finally:
        _stop_group(proc)


def _stop_group(proc: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        pass
    with contextlib.suppress(ProcessLookupError):  # the extension host and palot-lsp, if they linger
        os.killpg(proc.pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(5)
