"""Disk use (``palot du``): what each live agent's environment takes on this machine, summed per agent,
project and environment type.

Measured: a worktree's files (its git objects are the project's), a container's workspace clone and its
writable layer (from the engine), a cloud agent's local mirror, the work directories of moves in progress,
and the agent image. What cannot be measured (the engine unreachable) is said, not guessed.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import api
from .errors import PalotError
from .orphans import LIVE_STATES, tree_size

if TYPE_CHECKING:
    from .core import Palot


async def _bytes(path: Path) -> int:
    return await asyncio.to_thread(tree_size, path) if path.exists() else 0


async def disk_use(palot: "Palot") -> api.DiskUse:
    """Every live agent's disk use, and the totals."""
    items: list[api.DiskUseItem] = []
    unchecked: list[str] = []
    containers: dict[str, str] = {}  # container name -> agent id
    owners: dict[str, tuple[str, str, str]] = {}  # environment id -> (agent, project name, type)
    for rec, env, project in palot.store.list_agents_with_environments(include_archived=False):
        if env is None or env.state not in LIVE_STATES:
            continue
        owners[env.id] = (rec.id, project.name, env.type)

        def item(kind: str, name: str, size: int, env_type: str = env.type, agent: str = rec.id,
                 project_name: str = project.name) -> api.DiskUseItem:
            return api.DiskUseItem(kind=kind, name=name, bytes=size, agent_id=agent, project=project_name,
                                   environment=env_type)

        if env.type == "worktree":
            items.append(item("worktree", env.directory, await _bytes(Path(env.directory))))
        else:
            files = palot.paths.environments / env.id
            items.append(item("clone", str(files), await _bytes(files)))
            if env.type == "container" and env.data.get("container"):
                containers[str(env.data["container"])] = rec.id
    # A move's target environment is "migrating" and already counted; its work directory too.
    for mig in palot.store.list_migrations(state=["running", "committed"]):
        agent, project_name, env_type = owners.get(mig.source_env_id, (mig.agent_id, None, None))
        directory = palot.paths.migrations / mig.id
        items.append(api.DiskUseItem(kind="move", name=str(directory), bytes=await _bytes(directory),
                                     agent_id=agent, project=project_name, environment=env_type))
    engine_items, why = await _engine_use(containers, owners)
    items += engine_items
    if why:
        unchecked.append(why)
    use = api.DiskUse(items=items, unchecked=unchecked)
    for i in items:
        use.total += i.bytes
        if i.agent_id:
            use.by_agent[i.agent_id] = use.by_agent.get(i.agent_id, 0) + i.bytes
        if i.project:
            use.by_project[i.project] = use.by_project.get(i.project, 0) + i.bytes
        key = i.environment or ("images" if i.kind == "image" else "other")
        use.by_environment[key] = use.by_environment.get(key, 0) + i.bytes
    return use


async def _engine_use(containers: dict[str, str],
                      owners: dict[str, tuple[str, str, str]]) -> tuple[list[api.DiskUseItem], str | None]:
    """Containers' writable layers and the agent image, when an engine is there to ask."""
    if not containers:
        return [], None  # no container agent: the engine need not be running
    from .images import AGENT_IMAGE, engine

    try:
        client = await asyncio.to_thread(engine, 10)
        listed: list[dict[str, Any]] = await asyncio.to_thread(
            client.api.containers, all=True, size=True, filters={"label": "palot.environment"})
        images: list[dict[str, Any]] = await asyncio.to_thread(client.api.images, name=AGENT_IMAGE.split(":")[0])
    except PalotError as e:
        return [], f"container layers and images: {e.message}"
    except Exception as e:  # noqa: BLE001 - the SDK raises many types for "the engine went away"
        return [], f"container layers and images: the container engine failed ({type(e).__name__})"
    items: list[api.DiskUseItem] = []
    for c in listed:
        name = (c.get("Names") or ["/?"])[0].lstrip("/")
        env_id = (c.get("Labels") or {}).get("palot.environment", "")
        if name not in containers or env_id not in owners:
            continue
        agent, project_name, env_type = owners[env_id]
        items.append(api.DiskUseItem(kind="container_layer", name=name, bytes=int(c.get("SizeRw") or 0),
                                     agent_id=agent, project=project_name, environment=env_type))
    for image in images:
        tags = image.get("RepoTags") or [image.get("Id", "?")[:19]]
        items.append(api.DiskUseItem(kind="image", name=", ".join(tags), bytes=int(image.get("Size") or 0)))
    return items, None
