#!/usr/bin/env python3
"""palot-envd: the environment daemon inside an agent container (stdlib only).

It runs `opencode serve` on 0.0.0.0:8080 and keeps it running. Optional, by environment:
- PALOT_RELAY_SOCKET: also serve OpenCode through this unix socket (a host-mounted directory),
  so Palot reaches an environment that has no network at all;
- PALOT_SCRIPTED_PORT + PALOT_SCRIPTED_SCRIPT: run Palot's scripted model on the container's
  loopback (the palot package is mounted read-only at PYTHONPATH) for offline rehearsals;
- PALOT_DAEMON_PORT: serve the environment daemon's HTTP API on that port, behind the same basic auth
  as OpenCode (user ``opencode``, password OPENCODE_SERVER_PASSWORD). Environments Palot cannot
  ``docker exec`` into (the cloud tier) are driven through it: health, running commands (git, the
  setup script, ``opencode export``/``import``, the process scan), file transfer (git bundles,
  session exports) and background processes;
- PALOT_CREDENTIALS=await: the environment has model-provider credentials that its owner (the cloud Worker)
  sends with ``PUT /credentials`` right after the start: OpenCode is started only once they are in (or after
  CREDENTIALS_WAIT seconds without them), so it never runs without the user's provider keys.

Credentials (``{"env": {NAME: value}}``, e.g. OPENCODE_AUTH_CONTENT and provider API-key variables) are held
in this process's memory only and given to OpenCode's environment; they are never written to disk, never
logged, never echoed, and commands run through ``/exec`` do not get them.
"""

import asyncio
import base64
import hmac
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

OPENCODE_PORT = 8080
# Where files may be read and written through the daemon: the agent's workspace and transfer areas.
FILE_ROOTS = ("/workspace", "/run/palot", "/tmp")
MAX_UPLOAD = 2 * 1024**3
MAX_CREDENTIALS = 256 * 1024
CREDENTIALS_WAIT = 120.0  # seconds OpenCode waits for credentials that were announced but never sent
OPENCODE_START_TIMEOUT = 60.0


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except (ConnectionError, OSError):
        pass
    finally:
        writer.close()


async def _relay_client(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", OPENCODE_PORT)
    except OSError:
        writer.close()
        return
    await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))


def _allowed(path: str) -> bool:
    real = os.path.realpath(path)
    return os.path.isabs(path) and any(real == root or real.startswith(root + "/") for root in FILE_ROOTS)


def _argv(spec: dict) -> list:
    argv = spec["argv"]
    if not isinstance(argv, list) or not argv or not all(isinstance(a, str) for a in argv):
        raise ValueError("argv must be a non-empty list of strings")
    return argv


class _Supervisor:
    """The environment's servers (OpenCode, the scripted model), kept running, and OpenCode's credentials."""

    def __init__(self) -> None:
        self.children: dict[str, tuple[list[str], dict[str, str] | None, subprocess.Popen | None]] = {}
        self.credentials: dict[str, str] | None = None  # None: none received (yet)
        self.awaiting = os.environ.get("PALOT_CREDENTIALS") == "await"
        self.since = time.monotonic()
        self.lock = threading.Lock()

    def add(self, name: str, cmd: list[str], *, start: bool = True) -> None:
        with self.lock:
            self.children[name] = (cmd, None, _start(cmd) if start else None)

    def opencode_env(self) -> dict[str, str]:
        return {**os.environ, **(self.credentials or {})}

    def tick(self) -> None:
        """Restart what exited; start OpenCode once its credentials are in (or were waited for long enough)."""
        with self.lock:
            if self.awaiting and self.credentials is None and time.monotonic() - self.since > CREDENTIALS_WAIT:
                print("palot-envd: announced credentials never arrived; starting OpenCode without them",
                      file=sys.stderr, flush=True)
                self.awaiting = False
            for name, (cmd, env, proc) in list(self.children.items()):
                if proc is None:
                    if name == "opencode" and self.awaiting and self.credentials is None:
                        continue
                    env = self.opencode_env() if name == "opencode" else None
                    self.children[name] = (cmd, env, _start(cmd, env))
                elif proc.poll() is not None:  # keep the environment's servers up
                    print(f"palot-envd: {name} exited with {proc.returncode}; restarting", file=sys.stderr, flush=True)
                    self.children[name] = (cmd, env, _start(cmd, env))

    def set_credentials(self, values: dict[str, str]) -> None:
        """Hold new credentials and (re)start OpenCode with them; returns once it accepts connections."""
        with self.lock:
            self.credentials = values
            cmd, _, proc = self.children["opencode"]
            if proc is not None and proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(10)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
            env = self.opencode_env()
            self.children["opencode"] = (cmd, env, _start(cmd, env))
        deadline = time.monotonic() + OPENCODE_START_TIMEOUT
        while not _opencode_answers():
            if time.monotonic() > deadline:
                raise TimeoutError(f"OpenCode did not accept connections within {OPENCODE_START_TIMEOUT:.0f} s")
            time.sleep(0.1)

    def credentials_state(self) -> str:
        if self.credentials is not None:
            return "set"
        return "awaited" if self.awaiting else "none"

    def stop(self) -> None:
        with self.lock:
            procs = [proc for _, _, proc in self.children.values() if proc is not None]
        for proc in procs:
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(5)
            except subprocess.TimeoutExpired:
                proc.kill()


SUPERVISOR = _Supervisor()


def _opencode_up() -> bool:
    try:
        socket.create_connection(("127.0.0.1", OPENCODE_PORT), 2).close()
        return True
    except OSError:
        return False


def _opencode_answers() -> bool:
    """OpenCode answers a request. Accepting connections is not enough: OpenCode 1.18 leaves a request that
    arrives in its first second unanswered for good, so the proxy must not let one through before this."""
    request = urllib.request.Request(f"http://127.0.0.1:{OPENCODE_PORT}/global/health",
                                     headers={"authorization": _Daemon.expected.decode()})
    try:
        urllib.request.urlopen(request, timeout=2).close()
        return True
    except (OSError, ValueError):
        return False


class _Daemon(BaseHTTPRequestHandler):
    server_version = "palot-envd/1"
    expected = b""  # the Authorization header value that is let in (set by _serve_daemon)

    def log_message(self, format: str, *args: object) -> None:  # requests carry file contents: not logged
        pass

    def _send(self, status: int, body: object) -> None:
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        self.send_response(status)
        self.send_header("content-type", "application/octet-stream" if isinstance(body, bytes) else "application/json")
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _error(self, status: int, error: str, fix: str) -> None:
        self._send(status, {"error": error, "fix": fix})

    def _body(self) -> bytes:
        length = int(self.headers.get("content-length") or 0)
        if length > MAX_UPLOAD:
            raise ValueError(f"body of {length} bytes is larger than {MAX_UPLOAD}")
        return self.rfile.read(length) if length else b""

    def _authorized(self) -> bool:
        given = (self.headers.get("authorization") or "").encode()
        if hmac.compare_digest(given, self.expected):
            return True
        self._error(401, "missing or wrong credentials", "use the environment's OpenCode credentials")
        return False

    def _route(self, method: str) -> None:
        if not self._authorized():
            return
        url = urlparse(self.path)
        query = {k: v[-1] for k, v in parse_qs(url.query).items()}
        try:
            handler = getattr(self, f"_{method}_{url.path.strip('/').replace('/', '_')}", None)
            if handler is None:
                self._error(404, f"no route {method.upper()} {url.path}", "see palot-envd's docstring for the API")
                return
            handler(query)
        except (ValueError, KeyError, TypeError) as exc:
            self._error(400, f"bad request: {exc}", "send the fields the route documents")

    def do_GET(self) -> None:
        self._route("get")

    def do_POST(self) -> None:
        self._route("post")

    def do_PUT(self) -> None:
        self._route("put")

    def do_DELETE(self) -> None:
        self._route("delete")

    def _get_health(self, query: dict[str, str]) -> None:
        self._send(200, {"ok": True, "opencode": _opencode_up(), "credentials": SUPERVISOR.credentials_state(),
                         "version": 1})

    def _put_credentials(self, query: dict[str, str]) -> None:
        """{"env": {NAME: value}} → held in memory, OpenCode restarted with them → {"credentials": count}."""
        length = int(self.headers.get("content-length") or 0)
        if length > MAX_CREDENTIALS:
            raise ValueError(f"credentials of {length} bytes are larger than {MAX_CREDENTIALS}")
        env = json.loads(self._body())["env"]
        if not isinstance(env, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in env.items()):
            raise ValueError("env must map names to string values")
        try:
            SUPERVISOR.set_credentials(dict(env))
        except TimeoutError as exc:
            self._error(503, str(exc), "retry; if it persists, stop and start the environment")
            return
        self._send(200, {"credentials": len(env)})

    def _post_exec(self, query: dict[str, str]) -> None:
        """Run argv to completion: {"argv", "cwd"?, "env"?, "stdin"?, "timeout"?} → {"code", "stdout", "stderr"}."""
        spec = json.loads(self._body())
        argv = _argv(spec)
        env = dict(os.environ)
        env.update({str(k): str(v) for k, v in (spec.get("env") or {}).items()})
        try:
            proc = subprocess.run(argv, cwd=spec.get("cwd") or "/workspace", env=env, capture_output=True,
                                  input=(spec.get("stdin") or "").encode(), timeout=float(spec.get("timeout") or 600))
        except FileNotFoundError as exc:
            self._send(200, {"code": 127, "stdout": "", "stderr": str(exc)})
            return
        except subprocess.TimeoutExpired as exc:
            self._send(200, {"code": -9, "stdout": (exc.stdout or b"").decode(errors="replace"),
                             "stderr": f"timed out after {exc.timeout} s"})
            return
        self._send(200, {"code": proc.returncode, "stdout": proc.stdout.decode(errors="replace"),
                         "stderr": proc.stderr.decode(errors="replace")})

    def _post_spawn(self, query: dict[str, str]) -> None:
        """Start argv in the background, in its own session, output to /tmp: {"argv", "cwd"?} → {"pid"}."""
        spec = json.loads(self._body())
        argv = _argv(spec)
        log = open(f"/tmp/palot-process-{os.getpid()}-{threading.get_ident()}.log", "ab")
        proc = subprocess.Popen(argv, cwd=spec.get("cwd") or "/workspace", stdin=subprocess.DEVNULL, stdout=log,
                                stderr=subprocess.STDOUT, start_new_session=True)
        log.close()
        self._send(200, {"pid": proc.pid})

    def _file(self, query: dict[str, str]) -> str:
        path = query["path"]
        if not _allowed(path):
            raise ValueError(f"path {path!r} is outside {', '.join(FILE_ROOTS)}")
        return path

    def _get_files(self, query: dict[str, str]) -> None:
        path = self._file(query)
        try:
            with open(path, "rb") as fh:
                self._send(200, fh.read())
        except FileNotFoundError:
            self._error(404, f"no file {path}", "check the path")

    def _put_files(self, query: dict[str, str]) -> None:
        path = self._file(query)
        data = self._body()
        os.makedirs(os.path.dirname(path), exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        self._send(200, {"size": len(data)})

    def _delete_files(self, query: dict[str, str]) -> None:
        path = self._file(query)
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass
        self._send(200, {"deleted": path})


def _serve_daemon(port: int) -> None:
    password = os.environ.get("OPENCODE_SERVER_PASSWORD", "")
    if not password:
        print("palot-envd: PALOT_DAEMON_PORT needs OPENCODE_SERVER_PASSWORD; daemon not started", file=sys.stderr)
        return
    _Daemon.expected = b"Basic " + base64.b64encode(f"opencode:{password}".encode())
    server = ThreadingHTTPServer(("0.0.0.0", port), _Daemon)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, name="palot-envd-daemon", daemon=True).start()


def _start(cmd: list[str], env: dict[str, str] | None = None) -> subprocess.Popen:
    return subprocess.Popen(cmd, stdin=subprocess.DEVNULL, env=env)


async def main() -> int:
    scripted_port = os.environ.get("PALOT_SCRIPTED_PORT")
    if scripted_port:
        SUPERVISOR.add("scripted", [sys.executable, "-m", "palot.scripted", "--host", "127.0.0.1", "--port",
                                    scripted_port, "--script", os.environ.get("PALOT_SCRIPTED_SCRIPT", "demo")])
    SUPERVISOR.add("opencode", ["opencode", "serve", "--hostname", "0.0.0.0", "--port", str(OPENCODE_PORT)],
                   start=False)  # started by tick(), once credentials are in when they are awaited
    SUPERVISOR.tick()
    daemon_port = os.environ.get("PALOT_DAEMON_PORT")
    if daemon_port:
        _serve_daemon(int(daemon_port))
    socket_path = os.environ.get("PALOT_RELAY_SOCKET")
    if socket_path:
        if os.path.exists(socket_path):
            os.unlink(socket_path)
        await asyncio.start_unix_server(_relay_client, path=socket_path)
        os.chmod(socket_path, 0o660)

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    while not stop.is_set():
        await asyncio.to_thread(SUPERVISOR.tick)  # set_credentials may hold the lock while OpenCode stops
        try:
            await asyncio.wait_for(stop.wait(), 1.0)
        except asyncio.TimeoutError:
            pass
    SUPERVISOR.stop()
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
