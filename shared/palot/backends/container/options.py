"""A container environment's options: memory, cpus, pids, network and published ports, checked once."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from ...errors import InvalidInput
from ..pool import Key

NETWORKS = ("full", "none")


@dataclass(frozen=True)
class ContainerOptions:
    """Limits and networking of a container environment."""

    memory: str | None = "2g"  # docker syntax: 512m, 2g …
    cpus: float | None = 2.0
    pids: int | None = 1024
    network: str = "full"  # "full" or "none"
    ports: tuple[int, ...] = field(default_factory=tuple)  # container ports to publish on loopback

    @classmethod
    def from_dict(cls, options: dict[str, Any] | None) -> "ContainerOptions":
        options = dict(options or {})
        unknown = set(options) - {"memory", "cpus", "pids", "network", "ports"}
        if unknown:
            raise InvalidInput(f"unknown container option(s): {', '.join(sorted(unknown))}",
                               "use memory, cpus, pids, network (full|none) and ports")
        network = options.get("network", "full")
        if network not in NETWORKS:
            raise InvalidInput(f"unknown network '{network}'", "use full or none")
        try:
            ports = tuple(_number(p, int) for p in options.get("ports") or ())
            cpus = options.get("cpus", cls.cpus)
            cpus = None if cpus is None else _number(cpus, float)
            pids = options.get("pids", cls.pids)
            pids = None if pids is None else _number(pids, int)
        except (TypeError, ValueError):
            raise InvalidInput(f"container options must be numbers where numbers are expected, not {options}",
                               "e.g. cpus=1.5, pids=512, ports=[3000]") from None
        if any(not 0 < p < 65536 for p in ports):
            raise InvalidInput(f"invalid port in {list(ports)}", "ports are numbers from 1 to 65535")
        memory = options.get("memory", cls.memory)
        if memory is not None and not re.fullmatch(r"[0-9]+[bkmgBKMG]?", str(memory)):
            raise InvalidInput(f"invalid memory limit '{memory}'", "use a number with b, k, m or g, e.g. 2g")
        if network == "none" and ports:
            raise InvalidInput("ports cannot be published from an environment with network none",
                               "use network full to publish dev-server ports")
        if cpus is not None and cpus <= 0:
            raise InvalidInput(f"cpus must be positive, not {cpus}", "e.g. cpus=1.5")
        if pids is not None and pids <= 0:
            raise InvalidInput(f"pids must be positive, not {pids}", "e.g. pids=512")
        return cls(memory=memory, cpus=cpus, pids=pids, network=network, ports=ports)

    def key(self) -> Key | None:
        """What a warm container must match; None when it cannot be pooled (ports are fixed at start)."""
        return None if self.ports else (self.memory, self.cpus, self.pids, self.network)

    @classmethod
    def of_key(cls, key: Key) -> "ContainerOptions":
        memory, cpus, pids, network = key
        return cls(memory=memory, cpus=cpus, pids=pids, network=network)


def _number(value: Any, kind: type) -> Any:
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise TypeError(value)
    number = kind(value)
    if kind is int and number != float(value):
        raise ValueError(value)
    return number
