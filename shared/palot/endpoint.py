"""Where a Palot home's service listens and keeps its files — known to the service and to every client.

Nothing here imports the core: ``palot.client`` uses it to find (or start) the service.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .paths import PalotPaths

# AF_UNIX paths are limited to 108 bytes on Linux (104 on macOS); keep a margin.
_MAX_SOCKET_PATH = 100


@dataclass(frozen=True)
class Endpoint:
    """The service's files for one ``PALOT_HOME``."""

    paths: PalotPaths

    @property
    def dir(self) -> Path:
        return self.paths.home / "service"

    @property
    def socket(self) -> Path:
        """``$PALOT_HOME/service/palot.sock``, or a short per-user path when that is too long for a socket."""
        path = self.dir / "palot.sock"
        if len(str(path)) <= _MAX_SOCKET_PATH:
            return path
        digest = hashlib.sha256(str(self.paths.home).encode()).hexdigest()[:16]
        return Path(tempfile.gettempdir()) / f"palot-{os.getuid()}" / f"{digest}.sock"

    @property
    def state_file(self) -> Path:
        return self.dir / "service.json"

    @property
    def lock_file(self) -> Path:
        return self.dir / "lock"

    @property
    def log_file(self) -> Path:
        return self.dir / "service.log"

    @property
    def token_file(self) -> Path:
        """The loopback TCP listener's token (0600), when the listener is on."""
        return self.dir / "tcp-token"

    def read_state(self) -> dict[str, Any] | None:
        try:
            data = json.loads(self.state_file.read_text())
        except (OSError, ValueError):
            return None
        return data if isinstance(data, dict) else None

    @classmethod
    def default(cls) -> "Endpoint":
        return cls(PalotPaths.default())
