"""Benchmarks of the cloud tier under ``wrangler dev``: OpenCode event latency through Palot's Worker proxy vs
straight to the container's OpenCode, and provisioning a project with a large history by bundle vs by its remote.

One cloud environment under ``wrangler dev``. Two identical bare SSE readers (http.client, one thread each)
read ``/global/event`` at the same time: one through the Worker (bearer token, routing, the Durable Object,
workerd's container port), one straight to the container's OpenCode through the networking sidecar's
CONNECT tunnel (the hop every path shares), with the environment's own password. Each event's latency is
its arrival time minus the time the request that caused it was sent.
"""

from __future__ import annotations

import asyncio
import base64
import http.client
import json
import logging
import os
import secrets
import socket
import statistics
import subprocess
import threading
import time
import urllib.parse
from pathlib import Path
from typing import Any

import docker
import httpx
import pytest
from benchlib import ratio, summary_ms

from palot.backends.base import EnvironmentSpec
from palot.cloud import config as cloud_config
from palot.cloud import route

from localdev import LocalWorker, serving_git
from rehearsal import build_rehearsal_image

EVENTS = 200
GOAL = "report (no goal set): proxy overhead per event"


def _reader(conn: http.client.HTTPConnection, headers: dict[str, str], arrivals: dict[str, float],
            ready: threading.Event, stop: threading.Event) -> None:
    conn.request("GET", "/global/event" if "Bearer" not in headers.get("Authorization", "")
                 else headers.pop("X-Path"), headers=headers)
    response = conn.getresponse()
    assert response.status == 200, response.status
    while not stop.is_set():
        line = response.readline()  # de-chunked
        if not line:
            return
        if not line.startswith(b"data:"):
            continue
        payload = json.loads(line[5:])
        event = payload.get("payload", payload)
        if event.get("type") == "server.connected":
            ready.set()
        if event.get("type") == "session.created":
            title = ((event.get("properties") or {}).get("info") or {}).get("title", "")
            arrivals.setdefault(title, time.perf_counter())


def _tunnel(proxy_port: int) -> socket.socket:
    """A TCP connection to the container's port 8080 through its networking sidecar (HTTP CONNECT)."""
    sock = socket.create_connection(("127.0.0.1", proxy_port), 10)
    sock.sendall(b"CONNECT 127.0.0.1:8080 HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nX-Dst-Addr: 127.0.0.1:8080\r\n\r\n")
    head = b""
    while b"\r\n\r\n" not in head:
        head += sock.recv(1)
    assert head.startswith(b"HTTP/1.1 200"), head
    sock.settimeout(None)
    return sock


@pytest.mark.bench
def test_bench_event_latency_through_the_worker_proxy_vs_direct(container_engine: Any, tmp_path: Any,
                                                               bench_results: Any) -> None:
    client = docker.DockerClient(base_url=container_engine.host)
    image = build_rehearsal_image(client)
    worker = LocalWorker(token=secrets.token_urlsafe(32), image=image, docker_host=container_engine.host,
                         workdir=tmp_path / "worker")
    worker.start()
    try:
        auth = {"Authorization": f"Bearer {worker.token}"}
        api = httpx.Client(base_url=worker.url, headers=auth, timeout=120)
        env_id = "bench"
        assert api.post("/envs", json={"id": env_id, "env": {}}).status_code == 201
        deadline = time.monotonic() + 180
        while True:
            r = api.get(f"/envs/{env_id}/daemon/health")
            if r.status_code == 200 and r.json().get("opencode"):
                break
            assert time.monotonic() < deadline, r.text
            time.sleep(0.5)
        app = next(c for c in client.containers.list() if c.name.startswith("workerd-palot-")
                   and not c.name.endswith("-proxy"))
        proxy = client.containers.get(app.name + "-proxy")
        proxy_port = int(proxy.attrs["NetworkSettings"]["Ports"]["39001/tcp"][0]["HostPort"])
        password = next(e.split("=", 1)[1] for e in app.attrs["Config"]["Env"]
                        if e.startswith("OPENCODE_SERVER_PASSWORD="))
        basic = base64.b64encode(f"opencode:{password}".encode()).decode()

        via_worker: dict[str, float] = {}
        direct: dict[str, float] = {}
        stop = threading.Event()
        ready_w, ready_d = threading.Event(), threading.Event()
        host = urllib.parse.urlparse(worker.url)
        worker_conn = http.client.HTTPConnection(host.hostname, host.port, timeout=None)
        direct_conn = http.client.HTTPConnection("127.0.0.1", 8080, timeout=None)
        direct_conn.sock = _tunnel(proxy_port)
        threads = [
            threading.Thread(target=_reader, args=(worker_conn, {**auth, "X-Path": f"/envs/{env_id}/opencode/global/event"},
                                                   via_worker, ready_w, stop), daemon=True),
            threading.Thread(target=_reader, args=(direct_conn, {"Authorization": f"Basic {basic}"}, direct,
                                                   ready_d, stop), daemon=True),
        ]
        for t in threads:
            t.start()
        assert ready_w.wait(60) and ready_d.wait(60)

        sent: dict[str, float] = {}
        creator = httpx.Client(base_url=worker.url, headers=auth, timeout=60)
        for i in range(EVENTS):
            title = f"bench-{i}"
            sent[title] = time.perf_counter()
            creator.post(f"/envs/{env_id}/opencode/session", params={"directory": "/workspace"},
                         json={"title": title}).raise_for_status()
            time.sleep(0.02)
        deadline = time.monotonic() + 30
        while (len(via_worker) < EVENTS or len(direct) < EVENTS) and time.monotonic() < deadline:
            time.sleep(0.1)
        stop.set()
        keys = [k for k in sent if k in via_worker and k in direct]
        assert len(keys) >= EVENTS * 0.95, (len(via_worker), len(direct))
        w = summary_ms(via_worker[k] - sent[k] for k in keys)
        d = summary_ms(direct[k] - sent[k] for k in keys)
        added = summary_ms(via_worker[k] - direct[k] for k in keys)
        bench_results.add(
            "Cloud event latency through the Worker proxy (wrangler dev) vs direct to the container's OpenCode",
            figure={"p50_ms": w["p50_ms"], "p99_ms": w["p99_ms"], "added_p50_ms": added["p50_ms"],
                    "added_p99_ms": added["p99_ms"]},
            baseline={"p50_ms": d["p50_ms"], "p99_ms": d["p99_ms"]},
            ratio=ratio(w["p50_ms"], d["p50_ms"]),
            goal=GOAL,
            met=None,
            events=len(keys),
        )
        api.delete(f"/envs/{env_id}")
    finally:
        worker.stop()


COMMITS, BLOB_BYTES = 2_000, 25 * 1024  # ~50 MB of incompressible file contents over the history


def _large_history(repo: Path) -> None:
    """``COMMITS`` commits, each rewriting one of 50 files with ``BLOB_BYTES`` random bytes (git fast-import)."""
    subprocess.run(["git", "init", "-q", "-b", "main", str(repo)], check=True)
    stream = bytearray()
    for i in range(COMMITS):
        data = os.urandom(BLOB_BYTES)
        message = f"commit {i}".encode()
        stream += (b"commit refs/heads/main\ncommitter Bench <bench@example.com> %d +0000\n" % (1_700_000_000 + i)
                   + b"data %d\n%s\n" % (len(message), message)
                   + b"M 100644 inline data/f%02d.bin\ndata %d\n%s\n" % (i % 50, len(data), data))
    subprocess.run(["git", "fast-import", "--quiet"], cwd=repo, input=bytes(stream), check=True)
    subprocess.run(["git", "checkout", "-q", "main"], cwd=repo, check=True)


@pytest.mark.bench
async def test_bench_cloud_provision_of_a_large_history_by_bundle_vs_by_remote(
        container_engine: Any, tmp_path: Path, start_palot: Any, bench_results: Any) -> None:
    client = docker.DockerClient(base_url=container_engine.host)
    image = build_rehearsal_image(client)
    worker = LocalWorker(token=secrets.token_urlsafe(32), image=image, docker_host=container_engine.host,
                         workdir=tmp_path / "worker")
    await asyncio.to_thread(worker.start)
    try:
        with serving_git(container_engine.host, tmp_path / "served") as server:
            repo = tmp_path / "project"
            await asyncio.to_thread(_large_history, repo)
            await asyncio.to_thread(subprocess.run, ["git", "clone", "-q", "--bare", str(repo),
                                                     str(server.root / "project.git")], check=True)
            subprocess.run(["git", "config", "uploadpack.allowFilter", "true"], cwd=server.root / "project.git",
                           check=True)
            subprocess.run(["git", "remote", "add", "origin", server.url("project.git")], cwd=repo, check=True)
            await asyncio.to_thread(subprocess.run, ["git", "fetch", "-q", "origin"], cwd=repo, check=True)
            base = subprocess.run(["git", "rev-parse", "HEAD"], cwd=repo, check=True, capture_output=True,
                                  text=True).stdout.strip()
            palot = await start_palot()
            cloud_config.save(palot.paths, worker.url, worker.token)
            backend = palot.backends["cloud"]
            # The route's own part of a provision: from Palot's log line that names the route (the container
            # is ready then) to the end; the container's start before it varies by seconds from run to run.
            marks: list[float] = []
            handler = logging.Handler()
            handler.emit = lambda record: marks.append(record.created)  # type: ignore[method-assign]
            handler.addFilter(lambda record: "the project's history is" in record.getMessage())
            logging.getLogger("palot.backends.cloud").addHandler(handler)
            logging.getLogger("palot.backends.cloud").setLevel(logging.INFO)
            times: dict[str, list[float]] = {"bundle": [], "remote": []}
            steps: dict[str, list[float]] = {"bundle": [], "remote": []}
            try:
                for i, way in enumerate(["bundle", "remote"] * 3):  # alternate: the engine warms up for both
                    subprocess.run(["git", "config", route.SETTING, "false" if way == "bundle" else "true"],
                                   cwd=repo, check=True)
                    spec = EnvironmentSpec(project_path=repo, project_id="bench", project_name="bench",
                                           branch=f"palot/bench-{i}", base_commit=base)
                    started = time.perf_counter()
                    env = await backend.provision(spec)
                    times[way].append(time.perf_counter() - started)
                    steps[way].append(time.time() - marks[-1])
                    assert env.data["code_route"] == way, env.data["code_route_why"]
                    await backend.remove(env.id)
            finally:
                logging.getLogger("palot.backends.cloud").removeHandler(handler)
        size = sum(f.stat().st_size for f in (server.root / "project.git").rglob("*") if f.is_file())
        bundle, remote = statistics.median(steps["bundle"]), statistics.median(steps["remote"])
        bench_results.add(
            f"Cloud provision of a project with {COMMITS:,} commits and ~{COMMITS * BLOB_BYTES // 2**20} MB of "
            "file contents in its history, the history's part: cloned from its remote (partial clone)",
            figure={"seconds": round(remote, 2)},
            baseline={"seconds": round(bundle, 2)},
            ratio=ratio(remote, bundle),
            goal="report (no goal set)",
            met=None,
            history_seconds={k: [round(t, 2) for t in v] for k, v in steps.items()},
            provision_seconds={k: [round(t, 2) for t in v] for k, v in times.items()},
            notes=f"baseline = the same with the history sent as a bundle (git config {route.SETTING} false): "
                  "made, uploaded to the container, fetched there and stored in R2; median of 3 each, "
                  "alternating; from Palot's log line naming the route (the container ready) to the end of the "
                  f"provision; the served repository is {size / 2**20:.0f} MB; the whole provisions (container "
                  "start included, which varies by seconds) are in provision_seconds",
        )
    finally:
        await asyncio.to_thread(worker.stop)
