"""Where Palot keeps its state on disk.

Everything lives under one data directory: ``$PALOT_HOME`` when set,
otherwise the platform's user data dir (``~/.local/share/palot`` on Linux).
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path

import platformdirs

from .errors import InvalidInput


@dataclass(frozen=True)
class PalotPaths:
    """The files and folders under Palot's data directory."""

    home: Path

    @classmethod
    def default(cls) -> "PalotPaths":
        """Paths from ``$PALOT_HOME`` or the platform's data dir."""
        env = os.environ.get("PALOT_HOME")
        home = Path(env).expanduser() if env else Path(platformdirs.user_data_dir("palot", appauthor=False))
        return cls(home.resolve())

    @property
    def store(self) -> Path:
        return self.home / "palot.db"

    @property
    def legacy_opencode_prefix(self) -> Path:
        """Where Palot before 0.2 installed OpenCode, once per home (still looked at, never installed into)."""
        return self.home / "opencode"

    @property
    def worktrees(self) -> Path:
        return self.home / "worktrees"

    @property
    def server_dir(self) -> Path:
        """Runtime files of the shared server: lock, state (0600), logs."""
        return self.home / "server"

    @property
    def agent_env_map(self) -> Path:
        """Each worktree agent's own variables (dev-server ports) by directory, read by Palot's OpenCode plugin."""
        return self.server_dir / "agent-env.json"

    @property
    def agent_env_plugin(self) -> Path:
        """Palot's OpenCode plugin that adds an agent's own variables to its bash commands."""
        return self.server_dir / "palot-agent-env.js"

    @property
    def migrations(self) -> Path:
        """Work directories of moves in progress (bundles, exports), and the per-agent move locks."""
        return self.home / "migrations"

    @property
    def environments(self) -> Path:
        """Per-environment files of container agents: workspace clone, relay socket, credentials (0600)."""
        return self.home / "environments"

    @property
    def isolated_opencode_home(self) -> Path:
        """HOME/XDG root for OpenCode when Palot runs it isolated (demo, tests)."""
        return self.home / "opencode-home"

    def ensure(self) -> None:
        """Create the data directory, private to the user."""
        try:
            for d in (self.home, self.server_dir, self.worktrees):
                d.mkdir(parents=True, exist_ok=True)
            os.chmod(self.home, 0o700)
        except OSError as e:
            why = "it is a file" if self.home.is_file() else (e.strerror or str(e)).lower()
            raise InvalidInput(f"Palot cannot use {self.home} as its data directory ({why})",
                               "set PALOT_HOME to a folder you can write to, or unset it") from e


def tools_dirs() -> list[Path]:
    """Where the tools Palot runs (the pinned OpenCode) are installed once for every Palot home, whatever
    ``$PALOT_HOME`` says; the first is where ``palot doctor --fix`` installs.

    ``$PALOT_TOOLS`` when set; else beside this Palot's Python when it runs in a virtualenv (like ripgrep,
    so ``make setup`` serves every home, user and notebook kernel of the checkout), then the user data dir.
    """
    env = os.environ.get("PALOT_TOOLS")
    if env:
        return [Path(env).expanduser()]
    user = Path(platformdirs.user_data_dir("palot", appauthor=False)) / "tools"
    if sys.prefix != sys.base_prefix:
        return [Path(sys.prefix) / "share" / "palot", user]
    return [user]


def cache_dir() -> Path:
    """Palot's download/build cache (``$PALOT_CACHE`` or the platform cache dir), shared by every home."""
    env = os.environ.get("PALOT_CACHE")
    return Path(env).expanduser() if env else Path(platformdirs.user_cache_dir("palot", appauthor=False))


def write_private(path: Path, data: bytes | str) -> None:
    """Write ``data`` to ``path`` readable by this user only (0600, even if the file existed): secrets,
    conversation exports, credentials."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        os.fchmod(fh.fileno(), 0o600)
        fh.write(data.encode() if isinstance(data, str) else data)
