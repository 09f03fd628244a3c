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
  session exports) and background processes.
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
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

OPENCODE_PORT = 8080
# Where files may be read and written through the daemon: the agent's workspace and transfer areas.
FILE_ROOTS = ("/workspace", "/run/palot", "/tmp")
MAX_UPLOAD = 2 * 1024**3


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
        try:
            socket.create_connection(("127.0.0.1", OPENCODE_PORT), 2).close()
            up = True
        except OSError:
            up = False
        self._send(200, {"ok": True, "opencode": up, "version": 1})

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


def _start(cmd: list[str]) -> subprocess.Popen:
    return subprocess.Popen(cmd, stdin=subprocess.DEVNULL)


async def main() -> int:
    children: dict[str, tuple[list[str], subprocess.Popen]] = {}
    scripted_port = os.environ.get("PALOT_SCRIPTED_PORT")
    if scripted_port:
        cmd = [sys.executable, "-m", "palot.scripted", "--host", "127.0.0.1", "--port", scripted_port,
               "--script", os.environ.get("PALOT_SCRIPTED_SCRIPT", "demo")]
        children["scripted"] = (cmd, _start(cmd))
    cmd = ["opencode", "serve", "--hostname", "0.0.0.0", "--port", str(OPENCODE_PORT)]
    children["opencode"] = (cmd, _start(cmd))
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
        for name, (cmd, proc) in list(children.items()):
            if proc.poll() is not None:  # keep the environment's servers up
                print(f"palot-envd: {name} exited with {proc.returncode}; restarting", file=sys.stderr, flush=True)
                children[name] = (cmd, _start(cmd))
        try:
            await asyncio.wait_for(stop.wait(), 1.0)
        except asyncio.TimeoutError:
            pass
    for _, proc in children.values():
        proc.terminate()
    for _, proc in children.values():
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
