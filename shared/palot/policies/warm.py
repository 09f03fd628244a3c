"""Warm containers (``[containers] warm_pool``): the service keeps the container tier's pool filled while it
runs and empties it when it stops (see :mod:`palot.backends.pool`).

The pool warms the limits of the container agents alive when the service starts, then those of each
container spawn or move: a person who never uses containers never gets one started.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..backends.container import ContainerBackend, ContainerOptions
from ..errors import PalotError
from .settings import SettingsFile

if TYPE_CHECKING:
    from ..core import Palot


class WarmContainers:
    def __init__(self, palot: "Palot", settings: SettingsFile) -> None:
        self.palot = palot
        self.settings = settings
        backend = palot.backends.get("container")
        self.backend = backend if isinstance(backend, ContainerBackend) else None

    async def start(self) -> None:
        if self.backend is None:
            return
        pool = self.backend.pool
        pool.size = lambda: self.settings.current.containers.warm_pool
        for env in self.palot.store.list_environments(state="active"):
            if env.type != "container":
                continue
            try:
                key = ContainerOptions.from_dict(self.backend.options_of(env)).key()
            except PalotError:  # an old record's options no longer valid: nothing to warm for it
                continue
            if key is not None:
                pool.want(key)
        pool.start()

    def settings_changed(self) -> None:
        """The size may have changed: the pool grows or shrinks to it now."""
        if self.backend is not None:
            self.backend.pool.kick()

    def ready(self) -> int:
        return self.backend.pool.ready() if self.backend is not None else 0

    async def close(self) -> None:
        if self.backend is not None:
            await self.backend.close()
