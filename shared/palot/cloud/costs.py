"""What a cloud environment costs: Cloudflare Containers' instance types and per-second rates.

Figures from Cloudflare's published limits and pricing pages (instance types; Workers Paid rates beyond
the monthly included usage). The estimate is an upper bound: it bills the instance's whole vCPU, memory and
disk for every second it ran, and ignores the included monthly allowance.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class InstanceType:
    name: str
    vcpu: float
    memory_gib: float
    disk_gb: float


INSTANCE_TYPES: dict[str, InstanceType] = {t.name: t for t in (
    InstanceType("lite", 1 / 16, 0.25, 2),
    InstanceType("basic", 1 / 4, 1, 4),
    InstanceType("standard-1", 1 / 2, 4, 8),
    InstanceType("standard-2", 1, 6, 12),
    InstanceType("standard-3", 2, 8, 16),
    InstanceType("standard-4", 4, 12, 20),
)}

USD_PER_VCPU_SECOND = 0.000020
USD_PER_GIB_SECOND = 0.0000025
USD_PER_GB_DISK_SECOND = 0.00000007


def usd_per_hour(instance_type: str) -> float | None:
    """The instance's hourly price at full use, or None for an instance type Palot does not know."""
    t = INSTANCE_TYPES.get(instance_type)
    if t is None:
        return None
    per_second = t.vcpu * USD_PER_VCPU_SECOND + t.memory_gib * USD_PER_GIB_SECOND + t.disk_gb * USD_PER_GB_DISK_SECOND
    return per_second * 3600


def estimate_usd(instance_type: str, running_seconds: float) -> float | None:
    """Upper-bound cost of ``running_seconds`` on ``instance_type`` (None when the type is unknown)."""
    hourly = usd_per_hour(instance_type)
    return None if hourly is None else round(hourly * running_seconds / 3600, 6)


def usage(instance_type: str, running_seconds: float) -> dict[str, Any]:
    """An environment's cost figures as Palot shows them (``palot agents env``, ``palot cloud status``)."""
    return {"instance_type": instance_type, "running_seconds": round(running_seconds, 1),
            "usd_per_hour": usd_per_hour(instance_type), "cost_usd_estimate": estimate_usd(instance_type, running_seconds)}
