"""The container engine's edge: the Docker SDK client, connected lazily and again after the engine restarts,
and every SDK call made in a thread with the SDK's exceptions turned into Palot's (none reaches a user)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import Any, TypeVar

from ...errors import (
    EngineError,
    EngineUnavailable,
    EnvironmentCommandFailed,
    EnvironmentGone,
    PalotError,
    PortInUse,
)
from ...images import engine
from ...store import EnvironmentRecord

T = TypeVar("T")

CHECK_DOCKER = "check that Docker is running (`docker info`), then try again"


class DockerEngine:
    """One connection to the container engine; ``on_lost`` runs when a connection that worked went away
    (the engine restarted: what it ran is gone with it)."""

    def __init__(self, on_lost: Callable[[], None] = lambda: None) -> None:
        self._client: Any | None = None
        self._on_lost = on_lost

    async def client(self) -> Any:
        """The SDK client, checked to answer; :class:`EngineUnavailable` (with its fix) when no engine does."""
        if self._client is None:
            self._client = await asyncio.to_thread(engine)
        else:
            try:
                await asyncio.to_thread(self._client.ping)
            except Exception:
                self._client = None
                self._on_lost()
                self._client = await asyncio.to_thread(engine)
        return self._client

    def forget(self) -> None:
        """Drop the connection: the next call connects again (to ``$DOCKER_HOST`` as it is then)."""
        self._client = None

    @staticmethod
    async def call(call: Callable[[], T], what: str) -> T:
        """``call`` (a docker SDK call) in a thread; the SDK's exceptions become :class:`EngineError`."""
        import docker.errors

        try:
            return await asyncio.to_thread(call)
        except docker.errors.DockerException as e:
            raise EngineError(f"the container engine failed {what}: {str(e)[:300]}", CHECK_DOCKER) from e

    async def container(self, env: EnvironmentRecord) -> Any:
        """The environment's container; :class:`EnvironmentGone` if it was removed, :class:`EngineUnavailable`
        if the engine cannot be asked."""
        import docker.errors

        client = await self.client()
        name = env.data.get("container") or f"palot-{env.id}"
        try:
            return await asyncio.to_thread(client.containers.get, name)
        except docker.errors.NotFound as e:
            raise EnvironmentGone(
                f"the container {name} of environment {env.id} no longer exists (it was removed outside Palot)",
                f"archive the agent to keep its branch {env.branch}, or destroy it with --force",
            ) from e
        except docker.errors.DockerException as e:
            raise EngineUnavailable(f"the container engine did not answer about {name}: {str(e)[:300]}",
                                    CHECK_DOCKER) from e

    async def exec_run(self, env: EnvironmentRecord, cmd: list[str], **kwargs: Any) -> Any:
        """``exec_run`` as the agent's user in the environment's container (in ``/workspace`` unless
        ``workdir`` says otherwise)."""
        import docker.errors

        container = await self.container(env)
        try:
            return await asyncio.to_thread(container.exec_run, cmd, workdir=kwargs.pop("workdir", "/workspace"),
                                           user="agent", **kwargs)
        except docker.errors.DockerException as e:
            raise EngineError(f"the container of environment {env.id} could not run a command: {str(e)[:300]}",
                              "check the environment with `palot agents env`; if it stopped, archive the agent") from e

    async def output(self, env: EnvironmentRecord, cmd: list[str], what: str) -> bytes:
        """What ``cmd`` printed in the environment's container; a failure raises with its error output."""
        result = await self.exec_run(env, cmd, demux=True)
        out, err = result.output or (None, None)
        if result.exit_code != 0:
            text = (err or out or b"").decode(errors="replace").strip()[-600:]
            raise EnvironmentCommandFailed(f"{what} failed in the container (exit {result.exit_code}): {text}",
                                           "check the environment with `palot agents env`, and the container's log")
        return out or b""

    @staticmethod
    async def create_volume(client: Any, name: str, labels: dict[str, str]) -> None:
        import docker.errors

        try:
            await asyncio.to_thread(client.volumes.create, name=name, labels=labels)
        except docker.errors.DockerException as e:
            raise EngineError(f"the container engine could not create the volume {name}: {str(e)[:300]}",
                              "check `docker info` and the engine's log") from e

    @staticmethod
    async def run(client: Any, image: str, **kwargs: Any) -> Any:
        """A container started from ``image`` (``containers.run`` with ``kwargs``) by ``client`` (of
        :meth:`client`); a taken port is :class:`PortInUse`."""
        import docker.errors

        try:
            return await asyncio.to_thread(lambda: client.containers.run(image, **kwargs))
        except docker.errors.DockerException as e:
            text = str(e)
            if "port is already allocated" in text or "address already in use" in text:
                raise PortInUse(f"a port for the environment is already in use: {text[:300]}",
                                "free the port, or choose other --port values") from e
            raise EngineError(f"the container engine refused to start the environment: {text[:500]}",
                              "check `docker info` and the engine's log") from e

    async def remove(self, name: str) -> None:
        """Remove the container ``name`` and its home volume; missing ones are fine, and so is no engine
        (nothing of it can be removed now: ``palot gc`` finds what was left)."""
        try:
            client = await self.client()
        except PalotError:
            return
        await self.call(lambda: _remove_container(client, name), f"removing {name}")


def _remove_container(client: Any, name: str) -> None:
    import docker.errors

    with contextlib.suppress(docker.errors.NotFound):
        container = client.containers.get(name)
        container.remove(force=True, v=True)
    with contextlib.suppress(docker.errors.NotFound):
        client.volumes.get(f"{name}-home").remove(force=True)


def usage(stats: dict[str, Any]) -> dict[str, Any]:
    """Memory, CPU and process counts from one ``stats`` answer of the engine."""
    mem = stats.get("memory_stats") or {}
    cpu, pre = stats.get("cpu_stats") or {}, stats.get("precpu_stats") or {}
    delta = (cpu.get("cpu_usage", {}).get("total_usage", 0) - pre.get("cpu_usage", {}).get("total_usage", 0))
    system = cpu.get("system_cpu_usage", 0) - pre.get("system_cpu_usage", 0)
    online = cpu.get("online_cpus") or 1
    return {
        "memory_bytes": int(mem.get("usage", 0)), "memory_limit_bytes": int(mem.get("limit", 0)),
        "cpu_percent": round(delta / system * online * 100, 1) if system > 0 else 0.0,
        "pids": int((stats.get("pids_stats") or {}).get("current", 0)),
    }
