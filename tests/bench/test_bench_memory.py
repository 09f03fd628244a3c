"""Benchmark 4: memory of one shared OpenCode server serving 10 projects vs 10 servers, one per project.

Both set-ups use Palot's real ``ServerManager`` (isolated, offline, password
protected) and one scripted model, run in this process so it is in neither
sum. Every project gets one session and one prompt (write a file, then
answer); once all ten are done, the memory of each server process and its
children is summed from ``/proc/PID/status`` (``VmRSS``). PSS
(``/proc/PID/smaps_rollup``, shared pages split between the processes that
map them) is reported too: RSS counts the OpenCode binary's shared pages once
per server. The set-ups run one after the other; every server is stopped by
PID.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from pathlib import Path
from typing import Any

import pytest
from benchlib import BENCH_SCRIPT, make_repo, ratio, tree_memory_mb

from palot import PalotPaths
from palot.opencode import OpenCodeClient
from palot.scripted import Script, ScriptedModelServer, provider_config
from palot.servers import ServerManager

PROJECTS = 10
PROMPT = "bench write"
GOAL = "report only (MB and ratio)"


async def _work(client: OpenCodeClient, directory: Path) -> str:
    session = await client.create_session(str(directory), title="bench memory")
    await client.prompt_async(session.id, str(directory), PROMPT)
    return session.id


async def _wait_done(client: OpenCodeClient, sid: str, directory: Path, timeout: float = 120) -> None:
    """Until the session is idle and its last assistant message finished."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if sid not in await client.session_statuses(str(directory)):
            messages = await client.messages(sid, str(directory))
            last = next((m for m in reversed(messages) if m.info.role == "assistant"), None)
            if last is not None and last.info.finish == "stop" and last.info.time.completed:
                assert last.info.error is None, last.info.error
                return
        await asyncio.sleep(0.25)
    raise TimeoutError(f"session {sid} in {directory} did not finish")


async def _start(managers: list[ServerManager], registry: Any) -> None:
    try:
        await asyncio.gather(*(m.start() for m in managers))
    finally:
        for m in managers:
            registry.track(m)


async def _measure(managers: list[ServerManager], repos: list[Path]) -> dict[str, Any]:
    """One session and prompt per project (project i on server i % len(managers)); memory once all are done."""
    jobs = []
    for i, repo in enumerate(repos):
        client = managers[i % len(managers)].client
        assert client is not None
        jobs.append((client, repo))
    sids = await asyncio.gather(*(_work(c, r) for c, r in jobs))
    await asyncio.gather(*(_wait_done(c, sid, r) for (c, r), sid in zip(jobs, sids)))
    for _, repo in jobs:
        assert (repo / "bench.txt").read_text() == "written by the bench\n"
    await asyncio.sleep(2.0)  # let the servers settle after the work
    per_server = [tree_memory_mb(m.state.pid) for m in managers if m.state is not None]
    return {
        "servers": len(per_server),
        "rss_mb": round(sum(s["rss_mb"] for s in per_server), 1),
        "pss_mb": round(sum(s["pss_mb"] for s in per_server), 1),
        "processes": sum(s["processes"] for s in per_server),
        "per_server": per_server,
    }


async def _stop(managers: list[ServerManager]) -> None:
    for m in managers:
        with contextlib.suppress(Exception):
            await m.stop()


@pytest.mark.bench
async def test_memory_shared_vs_per_project_servers(
    tmp_path: Path, opencode_bin: Path, server_registry: Any, bench_results: Any
) -> None:
    model = ScriptedModelServer(Script.load(BENCH_SCRIPT)).start()
    try:
        config = provider_config(model.base_url)

        def manager(name: str) -> ServerManager:
            return ServerManager(PalotPaths(tmp_path / name), opencode_bin=opencode_bin, isolated=True,
                                 config=config, supervise=False)

        shared = [manager("shared")]
        try:
            await _start(shared, server_registry)
            one = await _measure(shared, [make_repo(tmp_path / "shared-projects" / f"p{i}") for i in range(PROJECTS)])
        finally:
            await _stop(shared)

        separate = [manager(f"separate-{i}") for i in range(PROJECTS)]
        try:
            await _start(separate, server_registry)
            ten = await _measure(separate, [make_repo(tmp_path / "separate-projects" / f"p{i}")
                                            for i in range(PROJECTS)])
        finally:
            await _stop(separate)
    finally:
        model.stop()

    assert one["servers"] == 1 and ten["servers"] == PROJECTS
    bench_results.add(
        f"Memory: 1 shared server for {PROJECTS} projects vs {PROJECTS} servers",
        figure={"rss_mb": one["rss_mb"], "pss_mb": one["pss_mb"]},
        baseline={"rss_mb": ten["rss_mb"], "pss_mb": ten["pss_mb"]},
        ratio=ratio(one["rss_mb"], ten["rss_mb"]),
        goal=GOAL,
        met=None,
        pss_ratio=ratio(one["pss_mb"], ten["pss_mb"]),
        shared=one,
        one_server_per_project=ten,
        notes="figure = the shared server (and its children) after one prompt in each of 10 projects; "
              "baseline = the sum over 10 servers, one project each; ratio = shared RSS / summed RSS",
    )
