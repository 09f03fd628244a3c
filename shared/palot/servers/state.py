"""``server.json`` and the lock beside it: who runs the shared OpenCode server, on which port, with which
password and settings (mode 0600), and the lock that serialises deciding to start, attach or restart."""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import json
import os
from collections.abc import AsyncIterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any


@dataclass
class ServerState:
    """What ``server.json`` records about the running shared server."""

    pid: int
    port: int
    password: str
    version: str
    started_at: float
    profile: dict[str, Any]
    scripted_pid: int | None = None
    scripted_port: int | None = None
    owner: str = "palot"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


class StateFile:
    """The server directory's ``server.json`` and ``lock``."""

    def __init__(self, server_dir: Path) -> None:
        self.dir = server_dir
        self.path = server_dir / "server.json"

    def load(self) -> ServerState | None:
        """What the file says, whoever wrote it; None when it is missing or unreadable."""
        try:
            return ServerState(**json.loads(self.path.read_text()))
        except (OSError, ValueError, TypeError):
            return None

    def read(self) -> ServerState | None:
        """The state of a server Palot started (not another owner's)."""
        state = self.load()
        if state is None or state.owner != "palot":
            return None
        return state

    def write(self, state: ServerState) -> None:
        tmp = self.path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            json.dump(asdict(state), fh)
        os.replace(tmp, self.path)

    def remove(self) -> None:
        self.path.unlink(missing_ok=True)

    @contextlib.asynccontextmanager
    async def lock(self) -> AsyncIterator[None]:
        """Held only while deciding to start/attach/restart, never for the server's life. Another process
        may hold it while its OpenCode starts (up to a minute): polled, so this loop keeps serving."""
        self.dir.mkdir(parents=True, exist_ok=True)
        with open(self.dir / "lock", "w") as fh:
            while True:
                try:
                    fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    await asyncio.sleep(0.05)
            try:
                yield
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)
