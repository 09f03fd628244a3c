"""However many clients watch the service's events, OpenCode sees one event subscription: the service's.

Counted twice: by the service (``ServiceStatus.upstream_subscriptions``) and, independently, by the kernel
(``ss``): the service's TCP connections to the OpenCode port that only ever sent their request and have been
quiet on our side for longer than any pooled request connection may idle, i.e. event streams.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlparse

from conftest import SCRIPTS, make_repo
from palot import api
from palot.client import PalotClient
from service_support import QUIET_MS, opencode_connections, opencode_event_streams, running_service

SCRIPT = SCRIPTS / "service.json"
CLIENTS = 4
async def _until(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"{what} did not happen within {timeout} s"
        await asyncio.sleep(0.25)


async def test_four_event_clients_share_the_services_one_opencode_subscription(
        tmp_path: Path, opencode_bin: Path) -> None:
    repo = make_repo(tmp_path / "project")
    async with running_service(tmp_path / "palot-home", SCRIPT) as palot:
        status = await palot.status()
        assert status.opencode_url and status.clients == 0 and status.upstream_subscriptions == 1
        pid, port = status.pid, urlparse(status.opencode_url).port
        assert port is not None
        await _until(lambda: len(opencode_event_streams(pid, port)) == 1, 30, "the service's one quiet event stream")
        streams_before = opencode_event_streams(pid, port)
        total_before = len(opencode_connections(pid, port))

        clients = [PalotClient(palot.paths.home, autostart=False) for _ in range(CLIENTS)]
        seen: list[list[api.Event]] = [[] for _ in clients]

        async def watch(client: PalotClient, into: list[api.Event]) -> None:
            async for event in client.events():
                into.append(event)

        attached_at = time.monotonic()
        watchers = [asyncio.create_task(watch(c, s)) for c, s in zip(clients, seen)]
        try:
            for _ in range(100):
                if (await palot.status()).clients == CLIENTS:
                    break
                await asyncio.sleep(0.1)
            attached = await palot.status()
            assert attached.clients == CLIENTS and attached.upstream_subscriptions == 1

            # Events flow to every client while the service keeps its one subscription.
            agent = await palot.spawn(repo, "write hello")
            agent = await palot.wait(agent.id, timeout=60)
            assert agent.status == api.AgentStatus.COMPLETED

            def everyone_saw_it() -> bool:
                return all(any(e.type == api.AGENT_UPDATED and e.agent and e.agent.id == agent.id
                               and e.agent.status == api.AgentStatus.COMPLETED for e in s) for s in seen)

            await _until(everyone_saw_it, 30, "every client seeing the agent complete")
            for events in seen:
                mine = [e.type for e in events if e.agent_id == agent.id]
                assert mine[0] == api.AGENT_CREATED and api.ACTIVITY in mine
            assert (await palot.status()).upstream_subscriptions == 1

            # Once request connections have idled out, the kernel sees what it saw before the clients came:
            # the same one stream (the same connection, not a new one) and nothing more.
            await _until(lambda: len(opencode_connections(pid, port)) <= total_before, 30, "request connections idling out")
            # A stream opened for the clients would by now have been quiet long enough to count.
            await asyncio.sleep(max(0.0, QUIET_MS / 1000 + 0.5 - (time.monotonic() - attached_at)))
            assert opencode_event_streams(pid, port) == streams_before
            assert len(opencode_connections(pid, port)) <= total_before
            final = await palot.status()
            assert final.clients == CLIENTS and final.upstream_subscriptions == 1
        finally:
            for task in watchers:
                task.cancel()
            await asyncio.gather(*watchers, return_exceptions=True)
            for client in clients:
                await client.close()
        for _ in range(50):
            if (await palot.status()).clients == 0:
                break
            await asyncio.sleep(0.1)
        assert (await palot.status()).clients == 0
