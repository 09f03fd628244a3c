"""Shared fixtures: the real OpenCode binary, isolated Palot homes, sample git repositories.

The scripted model is the only stand-in: every test that needs a server
starts a real ``opencode serve`` (isolated HOME/XDG dirs, generated password).
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from palot import Palot, PalotPaths
from palot.install import find_opencode, install_opencode, install_ripgrep

SCRIPTS = Path(__file__).parent / "scripts"
CORE_SCRIPT = SCRIPTS / "core.json"


@pytest.fixture(scope="session")
def opencode_bin() -> Path:
    """The pinned OpenCode; installed if missing (a test never skips for lack of it)."""
    paths = PalotPaths.default()
    binary = find_opencode(paths) or install_opencode(paths)
    install_ripgrep()
    os.environ["PALOT_OPENCODE_BIN"] = str(binary)
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


@pytest.fixture
async def palot(paths: PalotPaths, opencode_bin: Path) -> AsyncIterator[Palot]:
    """A started Palot on its own shared server with the scripted model."""
    p = Palot(paths, isolated=True, scripted=str(CORE_SCRIPT), opencode_bin=opencode_bin)
    await p.start()
    try:
        yield p
    finally:
        await p.close()
        await p.stop_server()
