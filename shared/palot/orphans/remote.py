"""Orphans outside this machine's files: containers and home volumes with Palot's labels, and cloud
environments the Worker still runs, that no agent owns. Each scan also says what could not be checked."""

from __future__ import annotations

import asyncio
import contextlib
from .. import api
from ..backends.cloud import CloudBackend
from ..errors import PalotError
from .found import Found, Scope


async def containers_and_volumes(scope: Scope) -> tuple[list[Found], str | None]:
    from ..images import engine

    try:
        client = await asyncio.to_thread(engine, 10)
    except PalotError as e:
        return [], f"containers and volumes: {e.message}"
    try:
        containers = await asyncio.to_thread(
            client.api.containers, all=True, size=True, filters={"label": "palot.environment"})
        volumes = await asyncio.to_thread(client.api.volumes, filters={"label": "palot.environment"})
    except Exception as e:  # the SDK raises many types for "the engine went away"
        return [], f"containers and volumes: the container engine failed ({type(e).__name__}: {str(e)[:200]})"
    found: list[Found] = []
    for c in containers:
        labels = c.get("Labels") or {}
        env_id = labels.get("palot.environment", "")
        if env_id in scope.live or not scope.ours(labels) or scope.new(float(c.get("Created") or 0)):
            continue
        name = (c.get("Names") or [c["Id"][:12]])[0].lstrip("/")

        async def rm_container(cid: str = c["Id"]) -> None:
            await asyncio.to_thread(lambda: client.api.remove_container(cid, force=True))

        found.append(Found(api.Orphan(
            kind="container", name=name, project=labels.get("palot.project"), size=int(c.get("SizeRw") or 0),
            why=f"a Palot container ({c.get('State', '?')}) of environment {env_id}, which no agent owns "
                "(the agent's code lives in its branch and workspace, not in the container)",
            safe=True), rm_container))
    sizes: dict[str, int] = {}
    if any(scope.ours(v.get("Labels") or {}) for v in (volumes.get("Volumes") or [])):
        with contextlib.suppress(Exception):
            df = await asyncio.to_thread(client.df)
            sizes = {v["Name"]: int((v.get("UsageData") or {}).get("Size") or 0) for v in df.get("Volumes") or []}
    for v in volumes.get("Volumes") or []:
        labels = v.get("Labels") or {}
        env_id = labels.get("palot.environment", "")
        if env_id in scope.live or not scope.ours(labels) or scope.busy:
            continue  # (a volume has no creation time the API gives reliably: not during a spawn)

        async def rm_volume(name: str = v["Name"]) -> None:
            await asyncio.to_thread(lambda: client.api.remove_volume(name, force=True))

        found.append(Found(api.Orphan(
            kind="volume", name=v["Name"], project=labels.get("palot.project"), size=sizes.get(v["Name"]),
            why=f"the home volume of environment {env_id} (OpenCode's data inside it), which no agent owns",
            safe=True), rm_volume))
    return found, None


async def cloud(scope: Scope, backend: CloudBackend) -> tuple[list[Found], str | None]:
    """Cloud environments of this home the Worker runs and no agent owns (``backend``: the cloud tier's)."""
    from ..cloud import config as cloud_config

    try:
        cloud_config.load(scope.paths)
    except PalotError:
        return [], None  # the cloud tier is not set up: nothing there
    try:
        listed = await backend.worker().list_envs()
    except PalotError as e:
        return [], f"cloud environments: {e.message}"
    found: list[Found] = []
    for item in listed:
        env_id = str(item.get("id", ""))
        if env_id not in scope.known or env_id in scope.live:
            continue  # another home's (the Worker may serve several), or in use

        async def rm(i: str = env_id) -> None:
            await backend.remove(i)

        found.append(Found(api.Orphan(
            kind="cloud", name=env_id, size=None,
            why=f"cloud environment {env_id} is still running, and no agent owns it (its work was kept on "
                "the agent's branch when it was archived or moved)", safe=True), rm))
    return found, None
