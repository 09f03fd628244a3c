"""``palot cloud status`` and ``destroy-all``: what runs in the cloud, what it costs, and the off switch."""

from __future__ import annotations

from typing import Any

from ..store import Store
from .config import CloudConfig
from .costs import usage
from .worker import WorkerClient


async def status(config: CloudConfig, store: Store) -> dict[str, Any]:
    """The Worker's settings and every environment it holds, with its agent, running time and cost."""
    worker = WorkerClient(config)
    try:
        health = await worker.health()
        envs = await worker.list_envs()
    finally:
        await worker.aclose()
    agents = {env.id: rec.id for rec, env, _ in store.list_agents_with_environments(include_archived=True)}
    rows = []
    for e in envs:
        rows.append({"id": e["id"], "status": e.get("status"), "agent_id": agents.get(e["id"]),
                     **usage(str(e.get("instance_type") or health.get("instance_type") or ""),
                             float(e.get("running_seconds") or 0))})
    total = sum(r["cost_usd_estimate"] or 0 for r in rows)
    return {"url": config.url, "worker": health, "environments": rows, "total_cost_usd_estimate": round(total, 6)}


async def destroy_all(config: CloudConfig, store: Store) -> list[str]:
    """Destroy every environment the Worker holds (agents keep their records; their environments are gone)."""
    worker = WorkerClient(config)
    destroyed = []
    try:
        for e in await worker.list_envs():
            await worker.destroy(e["id"])
            destroyed.append(e["id"])
    finally:
        await worker.aclose()
    for env in store.list_environments(state="active"):
        if env.type == "cloud" and env.id in destroyed:
            store.update_environment(env.id, state="destroyed")
            store.audit("cloud_destroyed", environment=env.id)
    return destroyed
