"""The cloud tier's Worker (``images/cloudflare``) end to end: ``wrangler dev`` (workerd with its
container support) against the private Docker engine, real HTTP, real containers from the agent image.

One Worker for the module and two long-lived environments (``alpha``, ``beta``); the lifecycle test
makes and destroys its own. What the Worker must guarantee: nothing passes without the bearer token,
an environment's requests reach only its own container, the per-environment password never leaves
the Worker, and the proxy streams (SSE) and upgrades (WebSocket) as the container answers.
"""

from __future__ import annotations

import base64
import hashlib
import http.client
import json
import os
import queue
import secrets
import socket
import struct
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
from conftest import Engine

from localdev import LocalWorker

OPENCODE_VERSION = "1.18.33"
RECORDED: list[str] = []  # every Worker API response (status, list, create, ...) seen by the module
PASSWORDS: dict[str, str] = {}  # env id -> its OpenCode/daemon password, read from the engine
STATUS_FIELDS = {"id", "status", "instance_type", "created_at", "started_at", "running_seconds", "credentials",
                 "durable", "saved_at", "save_error", "restored", "restored_from", "stopped_unexpectedly_at",
                 "exit_code", "lost"}


# --- fixtures and helpers -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def worker(container_engine: Engine, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalWorker]:
    with LocalWorker(token=secrets.token_urlsafe(32), docker_host=container_engine.host,
                     workdir=tmp_path_factory.mktemp("cf-worker")) as w:
        yield w
    assert w.containers() == [], "the local Worker left containers behind"


def _record(response: httpx.Response) -> None:
    if "/opencode/" not in response.url.path and "/daemon/" not in response.url.path:
        response.read()
        RECORDED.append(f"{dict(response.headers)}\n{response.text}")


@pytest.fixture(scope="module")
def api(worker: LocalWorker) -> Iterator[httpx.Client]:
    """A client with the Worker's bearer token (long timeout: creating an environment starts a container)."""
    with httpx.Client(base_url=worker.url, headers={"authorization": f"Bearer {worker.token}"}, timeout=120,
                      event_hooks={"response": [_record]}) as client:
        yield client


def containers_of(worker: LocalWorker, env_id: str) -> list[dict[str, Any]]:
    """The engine's containers (any state) that run environment ``env_id`` of this Worker."""
    import docker

    client = docker.DockerClient(base_url=worker.docker_host)
    found = []
    for container in client.containers.list(all=True, filters={"name": f"^{worker.container_prefix}"}):
        env = dict(item.split("=", 1) for item in container.attrs["Config"]["Env"] or [])
        if env.get("PALOT_ENV_ID") == env_id:
            found.append({"id": container.id, "status": container.status, "env": env})
    return found


def password_of(worker: LocalWorker, env_id: str) -> str:
    (container,) = [c for c in containers_of(worker, env_id) if c["status"] == "running"]
    password = container["env"]["OPENCODE_SERVER_PASSWORD"]
    PASSWORDS[env_id] = password
    return password


def create_env(api: httpx.Client, env_id: str, extra: dict[str, str] | None = None) -> dict[str, Any]:
    """Create an environment and wait until OpenCode and the daemon answer through the proxy."""
    started = time.monotonic()
    response = api.post("/envs", json={"id": env_id, "env": extra or {}})
    assert response.status_code == 201, response.text
    status = response.json()
    wait_healthy(api, env_id)
    print(f"\n{env_id}: created in {time.monotonic() - started:.1f} s (container start included)")
    return status


def wait_healthy(api: httpx.Client, env_id: str, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while True:
        opencode = api.get(f"/envs/{env_id}/opencode/global/health")
        daemon = api.get(f"/envs/{env_id}/daemon/health")
        if opencode.status_code == 200 and daemon.status_code == 200:
            assert opencode.json() == {"healthy": True, "version": OPENCODE_VERSION}
            assert daemon.json()["ok"] is True
            return
        assert time.monotonic() < deadline, f"{env_id} not healthy: {opencode.status_code} {daemon.status_code}"
        time.sleep(0.5)


@pytest.fixture(scope="module")
def envs(api: httpx.Client, worker: LocalWorker) -> dict[str, dict[str, Any]]:
    """Two environments for the module, created in parallel."""
    with ThreadPoolExecutor(2) as pool:
        statuses = dict(zip(("alpha", "beta"), pool.map(lambda i: create_env(api, i, {"PALOT_TEST": i}),
                                                         ("alpha", "beta"))))
    for env_id in statuses:
        password_of(worker, env_id)
    return statuses


def assert_error(response: httpx.Response | http.client.HTTPResponse, status: int, body: bytes | None = None) -> dict:
    code = response.status_code if isinstance(response, httpx.Response) else response.status
    text = response.text if isinstance(response, httpx.Response) else (body or b"").decode()
    assert code == status, text
    data = json.loads(text)
    assert set(data) == {"error", "fix"} and data["error"] and data["fix"], data
    return data


def raw_get(worker: LocalWorker, path: str) -> tuple[http.client.HTTPResponse, bytes]:
    """GET with the path sent exactly as written (httpx would resolve dot segments client-side)."""
    host, port = worker.url.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=60)
    conn.request("GET", path, headers={"Authorization": f"Bearer {worker.token}"})
    response = conn.getresponse()
    body = response.read()
    conn.close()
    return response, body


def session_ids(api: httpx.Client, env_id: str) -> set[str]:
    response = api.get(f"/envs/{env_id}/opencode/session", params={"directory": "/workspace"})
    assert response.status_code == 200, response.text
    return {s["id"] for s in response.json()}


# --- 1. authentication ----------------------------------------------------------------------------


def test_every_route_needs_the_bearer_token(worker: LocalWorker, api: httpx.Client, envs: dict) -> None:
    basic = base64.b64encode(f"opencode:{worker.token}".encode()).decode()
    bad_headers = {
        "none": {},
        "wrong token": {"authorization": f"Bearer {secrets.token_urlsafe(32)}"},
        "token prefix": {"authorization": f"Bearer {worker.token[:-1]}"},
        "basic instead of bearer": {"authorization": f"Basic {basic}"},
        "bare token": {"authorization": worker.token},
    }
    paths = ["/health", "/envs", "/envs/alpha", "/envs/alpha/opencode/global/health", "/envs/alpha/daemon/health",
             "/envs/nowhere", "/no/such/route"]
    with httpx.Client(base_url=worker.url, timeout=30) as anonymous:
        for label, headers in bad_headers.items():
            for path in paths:
                response = anonymous.get(path, headers=headers)
                assert_error(response, 401)
                assert response.headers["www-authenticate"].startswith("Bearer"), (label, path)
            # a write through the proxy with a bad token never reaches the container
            before = session_ids(api, "alpha")
            response = anonymous.post("/envs/alpha/opencode/session", params={"directory": "/workspace"},
                                      json={}, headers=headers)
            assert_error(response, 401)
            assert session_ids(api, "alpha") == before, label
            assert_error(anonymous.post("/envs", json={"id": "intruder"}, headers=headers), 401)
    assert api.get("/envs/intruder").status_code == 404

    health = api.get("/health")
    assert health.status_code == 200
    assert health.json() == {"ok": True, "worker": "palot", "version": 2, "instance_type": "standard-1",
                             "sleep_after": "30m", "enable_internet": True}


# --- 2. lifecycle ---------------------------------------------------------------------------------


def test_lifecycle_create_stop_wake_start_delete(worker: LocalWorker, api: httpx.Client, envs: dict) -> None:
    created = create_env(api, "life-1", {"GREETING": "hello"})
    assert created["id"] == "life-1" and created["status"] == "running"
    assert set(created) == STATUS_FIELDS
    assert created["instance_type"] == "standard-1"
    assert abs(created["created_at"] - time.time()) < 120
    (container,) = containers_of(worker, "life-1")
    assert container["env"]["GREETING"] == "hello" and container["env"]["PALOT_DAEMON_PORT"] == "8081"
    password = password_of(worker, "life-1")
    assert len(base64.urlsafe_b64decode(password + "==")) == 24

    status = api.get("/envs/life-1").json()
    assert status["status"] == "running"
    assert any(e["id"] == "life-1" for e in api.get("/envs").json()["envs"])

    stopped = api.post("/envs/life-1/stop")
    assert stopped.status_code == 200, stopped.text
    assert stopped.json()["status"] == "stopped" and stopped.json()["running_seconds"] > 0
    assert stopped.json()["stopped_unexpectedly_at"] is None  # asked for: no crash
    assert not [c for c in containers_of(worker, "life-1") if c["status"] == "running"]
    assert api.get("/envs/life-1").json()["status"] == "stopped"
    ran = stopped.json()["running_seconds"]
    time.sleep(1)
    assert api.get("/envs/life-1").json()["running_seconds"] == ran  # a stopped env accrues nothing

    # a proxied request wakes a stopped environment (same password: the record survived the stop)
    started = time.monotonic()
    woken = api.get("/envs/life-1/opencode/global/health")
    assert woken.status_code == 200 and woken.json()["healthy"] is True
    print(f"\nlife-1: woken by a proxied request in {time.monotonic() - started:.1f} s")
    assert api.get("/envs/life-1").json()["status"] == "running"
    assert password_of(worker, "life-1") == password

    assert api.post("/envs/life-1/stop").json()["status"] == "stopped"
    restarted = api.post("/envs/life-1/start")
    assert restarted.status_code == 200 and restarted.json()["status"] == "running"
    wait_healthy(api, "life-1")
    assert password_of(worker, "life-1") == password
    assert api.get("/envs/life-1").json()["running_seconds"] > ran

    deleted = api.delete("/envs/life-1")
    assert deleted.status_code == 200, deleted.text
    assert deleted.json()["id"] == "life-1" and deleted.json()["status"] == "destroyed"
    assert deleted.json()["running_seconds"] > ran
    assert_error(api.get("/envs/life-1"), 404)
    assert_error(api.get("/envs/life-1/opencode/global/health"), 404)
    assert_error(api.delete("/envs/life-1"), 404)
    assert_error(api.post("/envs/life-1/start"), 404)
    assert all(e["id"] != "life-1" for e in api.get("/envs").json()["envs"])
    assert containers_of(worker, "life-1") == []


def test_a_container_killed_behind_the_workers_back_is_noted_until_a_stop_is_asked_for(
        worker: LocalWorker, api: httpx.Client, envs: dict) -> None:
    import docker

    create_env(api, "crash-1")
    password = password_of(worker, "crash-1")
    (app,) = [c for c in containers_of(worker, "crash-1") if c["status"] == "running"]
    docker.DockerClient(base_url=worker.docker_host).containers.get(app["id"]).kill()
    deadline = time.monotonic() + 60
    while not (status := api.get("/envs/crash-1").json())["stopped_unexpectedly_at"]:
        assert time.monotonic() < deadline, f"the kill was not noticed: {status}"
        time.sleep(0.5)
    assert status["status"] == "stopped" and abs(status["stopped_unexpectedly_at"] - time.time()) < 60
    assert status["exit_code"] == 137
    assert status["lost"] == "everything"  # no save commands: the container's disk was all there was
    ran = status["running_seconds"]
    time.sleep(1)
    assert api.get("/envs/crash-1").json()["running_seconds"] == ran  # a dead container accrues nothing

    # The next request starts it again; the status still says what happened, until a stop is asked for.
    wait_healthy(api, "crash-1")
    assert password_of(worker, "crash-1") == password
    again = api.get("/envs/crash-1").json()
    assert again["status"] == "running" and again["stopped_unexpectedly_at"] == status["stopped_unexpectedly_at"]
    assert again["restored_from"] is None  # nothing to restore from
    stopped = api.post("/envs/crash-1/stop").json()
    assert stopped["status"] == "stopped" and stopped["stopped_unexpectedly_at"] is None and stopped["lost"] is None
    assert api.delete("/envs/crash-1").json()["status"] == "destroyed"


# --- 3. isolation and ids -------------------------------------------------------------------------


def test_environments_are_isolated(worker: LocalWorker, api: httpx.Client, envs: dict) -> None:
    made = api.post("/envs/alpha/opencode/session", params={"directory": "/workspace"}, json={})
    assert made.status_code == 200, made.text
    session = made.json()["id"]
    assert session in session_ids(api, "alpha")
    assert session not in session_ids(api, "beta")
    assert api.get(f"/envs/beta/opencode/session/{session}", params={"directory": "/workspace"}).status_code != 200
    # each environment got its own extra env and its own credential
    assert containers_of(worker, "alpha")[0]["env"]["PALOT_TEST"] == "alpha"
    assert containers_of(worker, "beta")[0]["env"]["PALOT_TEST"] == "beta"
    assert PASSWORDS["alpha"] != PASSWORDS["beta"]


def test_bad_ids_are_refused_and_unknown_ids_start_nothing(worker: LocalWorker, api: httpx.Client,
                                                            envs: dict) -> None:
    before = {e["id"] for e in api.get("/envs").json()["envs"]}
    containers_before = set(worker.containers())
    # the id is checked as the path arrives: never percent-decoded
    for path in ["/envs/A", "/envs/Alpha/opencode/session", "/envs/a%2Fb", "/envs/alpha%2F..%2Fbeta/opencode/session",
                 "/envs/..%2Fbeta", "/envs/..x", "/envs/.hidden", "/envs/a.b", "/envs/a%20b", "/envs/" + "a" * 64,
                 "/envs/-a"]:
        response, body = raw_get(worker, path)
        assert_error(response, 400, body)
    # dot segments are resolved by URL parsing before routing: what remains is validated like any path
    for path, status in [("/envs/A/../B", 400), ("/envs/alpha/..", 400), ("/envs/..", 404),
                         ("/envs/%2e%2e/beta", 404)]:
        response, body = raw_get(worker, path)
        assert_error(response, status, body)
    # an unknown id: 404, and no container is started for it
    for path in ["/envs/ghost", "/envs/ghost/opencode/global/health", "/envs/ghost/daemon/health"]:
        assert_error(api.get(path), 404)
    assert_error(api.post("/envs/ghost/stop"), 404)
    assert_error(api.post("/envs/ghost/start"), 404)
    assert_error(api.delete("/envs/ghost"), 404)
    assert_error(api.get("/envs/alpha/elsewhere/x"), 404)
    assert containers_of(worker, "ghost") == []
    assert set(worker.containers()) == containers_before
    assert {e["id"] for e in api.get("/envs").json()["envs"]} == before


# --- 5. SSE ---------------------------------------------------------------------------------------


def test_sse_is_streamed_unbuffered(worker: LocalWorker, api: httpx.Client, envs: dict) -> None:
    events: queue.Queue[tuple[float, dict]] = queue.Queue()
    done = threading.Event()
    opened = time.monotonic()

    def read() -> None:
        try:
            with httpx.Client(base_url=worker.url, headers={"authorization": f"Bearer {worker.token}"},
                              timeout=httpx.Timeout(10, read=60)) as client:
                with client.stream("GET", "/envs/alpha/opencode/global/event") as stream:
                    events.put((time.monotonic(), {"status": stream.status_code,
                                                   "content-type": stream.headers.get("content-type", "")}))
                    for line in stream.iter_lines():
                        if done.is_set():
                            return
                        if line.startswith("data:"):
                            events.put((time.monotonic(), json.loads(line[5:])))
        except httpx.HTTPError as e:
            if not done.is_set():
                events.put((time.monotonic(), {"error": repr(e)}))

    threading.Thread(target=read, daemon=True).start()
    try:
        _sse_checks(api, events, opened)
    finally:
        done.set()


def _sse_checks(api: httpx.Client, events: queue.Queue[tuple[float, dict]], opened: float) -> None:
    _, head = events.get(timeout=30)
    assert head["status"] == 200 and head["content-type"].startswith("text/event-stream"), head
    at, first = events.get(timeout=30)
    assert first["payload"]["type"] == "server.connected"
    print(f"\nSSE: first event {1000 * (at - opened):.0f} ms after opening the stream")

    # OpenCode sends server.connected before its subscription to the bus is in place, so an event
    # caused at once may fall in that gap (seen once in CI): a trigger that went unseen is repeated.
    seen: list[str] = []
    for _attempt in range(3):
        triggered = time.monotonic()
        made = api.post("/envs/alpha/opencode/session", params={"directory": "/workspace"}, json={})
        assert made.status_code == 200
        session = made.json()["id"]
        kind, at = _wait_for_session_event(events, session, seen, deadline=triggered + 20)
        if kind:
            break
    assert kind, f"no event of three new sessions within 20 s each; the stream sent {seen}"
    print(f"SSE: {kind} arrived {1000 * (at - triggered):.0f} ms after the request that caused it")


def _wait_for_session_event(events: queue.Queue[tuple[float, dict]], session: str, seen: list[str],
                            deadline: float) -> tuple[str | None, float]:
    """The type and arrival of the first created/updated event naming `session` (None once `deadline` passes)."""
    while (left := deadline - time.monotonic()) > 0:
        try:
            at, event = events.get(timeout=left)  # the stream is still open: heartbeats keep arriving
        except queue.Empty:
            return None, 0.0
        kind = event.get("payload", {}).get("type")
        seen.append(str(kind or event))
        if kind in ("session.created", "session.updated") and session in json.dumps(event):
            return kind, at
    return None, 0.0


# --- 6. WebSocket ---------------------------------------------------------------------------------


class WebSocket:
    """Just enough of RFC 6455 for a test: the handshake, masked text frames out, frames in."""

    def __init__(self, url: str, path: str, headers: dict[str, str]) -> None:
        host, port = url.removeprefix("http://").split(":")
        self.sock = socket.create_connection((host, int(port)), timeout=30)
        self.key = base64.b64encode(os.urandom(16)).decode()
        lines = [f"GET {path} HTTP/1.1", f"Host: {host}:{port}", "Upgrade: websocket", "Connection: Upgrade",
                 f"Sec-WebSocket-Key: {self.key}", "Sec-WebSocket-Version: 13",
                 *[f"{k}: {v}" for k, v in headers.items()]]
        self.sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = self.sock.recv(4096)
            assert chunk, data
            data += chunk
        head, self.buffer = data.split(b"\r\n\r\n", 1)
        status_line, *header_lines = head.decode("latin-1").split("\r\n")
        self.status = int(status_line.split()[1])
        self.headers = {k.strip().lower(): v.strip() for k, _, v in (h.partition(":") for h in header_lines)}

    def accept_ok(self) -> bool:
        expected = base64.b64encode(hashlib.sha1((self.key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11").encode())
                                    .digest()).decode()
        return self.headers.get("sec-websocket-accept") == expected

    def send_text(self, text: str) -> None:
        data, mask = text.encode(), os.urandom(4)
        n = len(data)
        header = bytes([0x81]) + (bytes([0x80 | n]) if n < 126 else bytes([0x80 | 126]) + struct.pack(">H", n))
        self.sock.sendall(header + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(data)))

    def _read(self, n: int) -> bytes:
        while len(self.buffer) < n:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("closed")
            self.buffer += chunk
        out, self.buffer = self.buffer[:n], self.buffer[n:]
        return out

    def receive(self) -> tuple[int, bytes]:
        first, second = self._read(2)
        length = second & 0x7F
        if length == 126:
            length = struct.unpack(">H", self._read(2))[0]
        elif length == 127:
            length = struct.unpack(">Q", self._read(8))[0]
        return first & 0x0F, self._read(length)

    def close(self) -> None:
        self.sock.close()


def test_websocket_upgrades_pass_through(worker: LocalWorker, api: httpx.Client, envs: dict) -> None:
    pty = api.post("/envs/alpha/opencode/pty", params={"directory": "/workspace"},
                   json={"command": "/bin/sh", "args": ["-c", "read line; echo got:$line; sleep 5"]})
    assert pty.status_code == 200, pty.text
    path = f"/envs/alpha/opencode/pty/{pty.json()['id']}/connect?directory=/workspace"

    refused = WebSocket(worker.url, path, {"Authorization": f"Bearer {secrets.token_urlsafe(32)}"})
    assert refused.status == 401
    refused.close()

    ws = WebSocket(worker.url, path, {"Authorization": f"Bearer {worker.token}"})
    try:
        assert ws.status == 101 and ws.accept_ok(), ws.headers
        ws.send_text("ping-from-palot\n")
        received = b""
        deadline = time.monotonic() + 20
        while b"got:ping-from-palot" not in received:
            assert time.monotonic() < deadline, received
            opcode, data = ws.receive()
            assert opcode != 0x8, f"closed early: {received!r}"
            received += data
    finally:
        ws.close()


# --- 7. bad input ---------------------------------------------------------------------------------


def test_bad_create_requests_change_nothing(worker: LocalWorker, api: httpx.Client, envs: dict) -> None:
    before = {e["id"] for e in api.get("/envs").json()["envs"]}
    containers_before = set(worker.containers())
    bodies: list[str | dict | list] = [
        "{not json", "[]", '"alpha"', {}, {"id": 7}, {"id": "Bad"}, {"id": "bad/id"}, {"id": "bad-1", "extra": 1},
        {"id": "bad-2", "env": []}, {"id": "bad-3", "env": {"a b": "x"}}, {"id": "bad-4", "env": {"1ABC": "x"}},
        {"id": "bad-5", "env": {"A-B": "x"}}, {"id": "bad-6", "env": {"OK": 5}},
        {"id": "bad-7", "env": {"OPENCODE_SERVER_PASSWORD": "mine"}}, {"id": "bad-8", "env": {"PALOT_ENV_ID": "x"}},
        {"id": "bad-9", "env": {"PALOT_DAEMON_PORT": "1"}},
    ]
    for body in bodies:
        content = body if isinstance(body, str) else json.dumps(body)
        response = api.post("/envs", content=content, headers={"content-type": "application/json"})
        assert_error(response, 400)
    for n in range(1, 10):
        assert_error(api.get(f"/envs/bad-{n}"), 404)
    assert_error(api.put("/envs"), 405)

    alpha = containers_of(worker, "alpha")
    duplicate = api.post("/envs", json={"id": "alpha", "env": {"OTHER": "x"}})
    assert_error(duplicate, 409)
    assert containers_of(worker, "alpha") == alpha  # same container, same env, same password
    assert {e["id"] for e in api.get("/envs").json()["envs"]} == before
    assert set(worker.containers()) == containers_before


def test_saving_needs_palots_commands_and_bad_ones_change_nothing(worker: LocalWorker, api: httpx.Client,
                                                                  envs: dict) -> None:
    """An environment made without save commands cannot be saved or paused (409 naming the fix), and stays up."""
    assert api.get("/envs/alpha").json()["durable"] is False
    for action in ("save", "pause"):
        response = api.post(f"/envs/alpha/{action}")
        assert_error(response, 409)
        assert "no save commands" in response.json()["error"] and "/durable" in response.json()["fix"]
    assert api.get("/envs/alpha").json()["status"] == "running"
    for body in ({}, {"save": [], "restore": ["true"]}, {"save": "sh", "restore": ["true"]},
                 {"save": ["true"], "restore": [1]}, {"save": ["true"], "restore": ["true"], "other": 1}):
        assert_error(api.put("/envs/alpha/durable", json=body), 400)
    assert api.get("/envs/alpha").json()["durable"] is False
    for path in ("/envs/nowhere/pause", "/envs/nowhere/resume", "/envs/nowhere/save"):
        assert_error(api.post(path), 404)
    assert_error(api.put("/envs/nowhere/durable", json={"save": ["true"], "restore": ["true"]}), 404)
    assert_error(api.put("/envs/nowhere/base", content=b"bundle"), 404)
    assert_error(api.get("/envs/alpha/pause"), 405)
    assert api.get("/envs/nowhere").status_code == 404  # nothing was made for the unknown id


# --- 4. the password stays inside ---------------------------------------------------------------


def test_password_never_leaves_the_worker(worker: LocalWorker, api: httpx.Client, envs: dict) -> None:
    listed = api.get("/envs").json()["envs"]
    assert {"alpha", "beta"} <= {e["id"] for e in listed}
    for env in listed:
        assert set(env) == STATUS_FIELDS
    api.get("/envs/alpha")
    assert set(PASSWORDS) >= {"alpha", "beta", "life-1"}
    assert len(RECORDED) > 20
    logs = [worker.log_path.read_text(errors="replace")]
    logs += [p.read_text(errors="replace") for p in (worker.workdir / "wrangler-logs").glob("*")]
    for env_id, password in PASSWORDS.items():
        for text in RECORDED:
            assert password not in text, f"{env_id}'s password in a Worker response"
        for text in logs:
            assert password not in text, f"{env_id}'s password in wrangler's log"
    for text in [*RECORDED, *logs]:
        assert worker.token not in text
    assert oct(os.stat(worker.workdir / ".dev.vars").st_mode & 0o777) == "0o600"


def test_destroy_leaves_no_container(worker: LocalWorker, api: httpx.Client, envs: dict) -> None:
    for env_id in envs:
        assert api.delete(f"/envs/{env_id}").json()["status"] == "destroyed"
        assert containers_of(worker, env_id) == []
    assert api.get("/envs").json() == {"envs": []}
    assert worker.containers() == []  # sidecars included
    assert Path(worker.workdir / "wrangler.toml").exists()
