"""The HTTP side of the scripted model: a stdlib, thread-per-request server.

Endpoints:

* ``POST /v1/chat/completions`` — SSE stream when ``stream`` is true, else JSON.
* ``GET  /v1/models`` — one model, ``scripted``.
* ``GET  /_scripted/requests`` — recorded requests (newest last);
  ``DELETE`` clears them.
* ``GET  /_scripted/health`` — ``{"ok": true, ...}`` (never needs a key).

With ``api_key`` set (or a script whose ``api_key_sha256`` names a key), every other endpoint needs
``Authorization: Bearer KEY``.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import socket
import threading
import time
from collections import deque
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from .engine import RequestView, analyze_request, completion_body, error_body, plan_reply, stream_chunks
from .models import Script, TurnError

__all__ = ["ScriptedModelServer"]

log = logging.getLogger(__name__)

_MAX_BODY = 64 * 1024 * 1024
_DISCONNECT_ERRORS = (BrokenPipeError, ConnectionResetError, ConnectionAbortedError, TimeoutError)


class _Stopped(Exception):
    """The server is stopping; abandon the response."""


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    owner: ScriptedModelServer

    def handle_error(self, request: Any, client_address: Any) -> None:  # pragma: no cover - logging only
        log.debug("palot-scripted: error while handling %s", client_address, exc_info=True)


class _HTTPServer6(_HTTPServer):
    address_family = socket.AF_INET6


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "palot-scripted"
    disable_nagle_algorithm = True
    server: _HTTPServer

    # --- plumbing -------------------------------------------------------------
    def log_message(self, format: str, *args: Any) -> None:
        log.debug("palot-scripted: " + format, *args)

    @property
    def owner(self) -> ScriptedModelServer:
        return self.server.owner

    def _send_json(self, status: int, payload: Any, extra_headers: dict[str, str] | None = None) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for k, v in (extra_headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)

    def _send_error(self, status: int, message: str, type_: str | None = None, code: str | None = None) -> None:
        headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
        self._send_json(status, error_body(status, message, type_, code), headers)

    def _path(self) -> str:
        return self.path.split("?", 1)[0].rstrip("/") or "/"

    def _authorized(self) -> bool:
        key, digest = self.owner.api_key, self.owner.script.api_key_sha256
        if key is None and digest is None:
            return True
        header = self.headers.get("Authorization", "")
        scheme, _, token = header.partition(" ")
        given = token.strip().encode()
        if scheme.lower() != "bearer":
            return False
        if key is not None:
            return hmac.compare_digest(given, key.encode())
        assert digest is not None
        return hmac.compare_digest(hashlib.sha256(given).hexdigest().encode(), digest.encode())

    def _read_body(self) -> bytes | None:
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            length = -1
        if length < 0 or length > _MAX_BODY:
            self._send_error(400, "invalid Content-Length")
            return None
        return self.rfile.read(length) if length else b""

    def _sleep(self, seconds: float) -> None:
        if seconds > 0 and self.owner._stopping.wait(seconds):
            raise _Stopped

    # --- routes ---------------------------------------------------------------
    def do_GET(self) -> None:
        self._guard(self._get)

    def do_POST(self) -> None:
        self._guard(self._post)

    def do_DELETE(self) -> None:
        self._guard(self._delete)

    def _guard(self, fn: Any) -> None:
        try:
            fn()
        except _DISCONNECT_ERRORS:
            log.debug("palot-scripted: client went away")
            self.close_connection = True
        except _Stopped:
            self.close_connection = True

    def _get(self) -> None:
        path = self._path()
        if path == "/_scripted/health":
            self._send_json(
                200,
                {"ok": True, "scenarios": len(self.owner.script.scenarios), "requests": self.owner.request_count},
            )
            return
        if not self._authorized():
            self._send_error(401, "Incorrect API key provided.", code="invalid_api_key")
            return
        if path in ("/v1/models", "/models"):
            self._send_json(
                200,
                {
                    "object": "list",
                    "data": [{"id": "scripted", "object": "model", "created": 0, "owned_by": "palot-scripted"}],
                },
            )
        elif path == "/_scripted/requests":
            self._send_json(200, self.owner.requests)
        else:
            self._send_error(404, f"no route GET {path}")

    def _delete(self) -> None:
        path = self._path()
        if not self._authorized():
            self._send_error(401, "Incorrect API key provided.", code="invalid_api_key")
        elif path == "/_scripted/requests":
            self.owner.clear_requests()
            self._send_json(200, {"ok": True})
        else:
            self._send_error(404, f"no route DELETE {path}")

    def _post(self) -> None:
        path = self._path()
        raw = self._read_body()
        if raw is None:
            return
        if not self._authorized():
            self._send_error(401, "Incorrect API key provided.", code="invalid_api_key")
            return
        if path not in ("/v1/chat/completions", "/chat/completions"):
            self._send_error(404, f"no route POST {path}")
            return
        try:
            body = json.loads(raw or b"null")
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            self._send_error(400, f"request body is not JSON: {exc}")
            return
        if not isinstance(body, dict) or not isinstance(body.get("messages"), list):
            self._send_error(400, "'messages' must be a list", code="invalid_messages")
            return
        self._chat(body)

    def _chat(self, body: dict[str, Any]) -> None:
        owner = self.owner
        view = analyze_request(body)
        reply = plan_reply(owner.script, view, owner._error_allowed)
        stream = bool(body.get("stream"))
        model = str(body.get("model") or "scripted")
        owner._record(body, view, reply.summary(), stream)
        self._sleep(reply.delay)
        if reply.error is not None:
            e = reply.error
            self._send_error(e.status, e.message, e.type, e.code)
            return
        if not stream:
            self._send_json(200, completion_body(reply, model=model))
            return
        options = body.get("stream_options")
        include_usage = bool(options.get("include_usage", True)) if isinstance(options, dict) else True
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Connection", "close")
        self.end_headers()
        self.close_connection = True
        first = True
        for chunk in stream_chunks(reply, model=model, include_usage=include_usage):
            if not first:
                self._sleep(reply.chunk_delay)
            first = False
            self.wfile.write(b"data: " + json.dumps(chunk).encode() + b"\n\n")
            self.wfile.flush()
        self.wfile.write(b"data: [DONE]\n\n")
        self.wfile.flush()


class ScriptedModelServer:
    """A deterministic OpenAI-compatible chat-completions server.

    >>> with ScriptedModelServer(Script()) as server:  # doctest: +SKIP
    ...     cfg = provider_config(server.base_url)

    ``port=0`` picks a free port. The server runs in a daemon thread; use it
    as a (sync or async) context manager or call :meth:`start` / :meth:`stop`.
    """

    def __init__(
        self,
        script: Script,
        host: str = "127.0.0.1",
        port: int = 0,
        api_key: str | None = None,
        *,
        max_recorded: int = 500,
    ) -> None:
        self.script = script
        self.host = host
        self.port = port
        self.api_key = api_key
        self._recorded: deque[dict[str, Any]] = deque(maxlen=max_recorded)
        self._count = 0
        self._lock = threading.Lock()
        self._error_counts: dict[str, int] = {}
        self._stopping = threading.Event()
        self._httpd: _HTTPServer | None = None
        self._thread: threading.Thread | None = None

    # --- lifecycle ------------------------------------------------------------
    def start(self) -> ScriptedModelServer:
        """Bind and start serving in a daemon thread (no-op if already running)."""
        if self._httpd is not None:
            return self
        self._stopping.clear()
        cls = _HTTPServer6 if ":" in self.host else _HTTPServer
        httpd = cls((self.host, self.port), _Handler)
        httpd.owner = self
        self.port = int(httpd.server_address[1])
        self._httpd = httpd
        self._thread = threading.Thread(
            target=httpd.serve_forever, kwargs={"poll_interval": 0.1}, name="palot-scripted", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and close the socket; open streams are abandoned. Idempotent."""
        httpd, thread = self._httpd, self._thread
        if httpd is None:
            return
        self._stopping.set()
        httpd.shutdown()
        httpd.server_close()
        if thread is not None:
            thread.join(timeout=5)
        self._httpd = None
        self._thread = None

    @property
    def running(self) -> bool:
        return self._httpd is not None

    def __enter__(self) -> ScriptedModelServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    async def __aenter__(self) -> ScriptedModelServer:
        return self.start()

    async def __aexit__(self, *exc: object) -> None:
        await asyncio.to_thread(self.stop)

    # --- addresses ------------------------------------------------------------
    @property
    def url(self) -> str:
        """``http://HOST:PORT`` (without ``/v1``)."""
        if self._httpd is None:
            raise RuntimeError("ScriptedModelServer is not started")
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    @property
    def base_url(self) -> str:
        """The OpenAI base URL to give OpenCode, e.g. ``http://127.0.0.1:PORT/v1``."""
        return self.url + "/v1"

    # --- recording ------------------------------------------------------------
    @property
    def requests(self) -> list[dict[str, Any]]:
        """Recorded chat requests, oldest first (bounded to the last ``max_recorded``).

        Each entry: ``seq``, ``time`` (epoch seconds), ``stream``, ``model``,
        ``tools`` (names), ``messages`` (as received), ``last_user``,
        ``workdir``, ``turn`` and ``reply`` (kind/scenario/turn/tool_calls/
        finish_reason/error).
        """
        with self._lock:
            return list(self._recorded)

    @property
    def request_count(self) -> int:
        """Total chat requests received since start (not bounded)."""
        with self._lock:
            return self._count

    def clear_requests(self) -> None:
        """Forget recorded requests and ``times`` error counters."""
        with self._lock:
            self._recorded.clear()
            self._error_counts.clear()

    def _record(self, body: dict[str, Any], view: RequestView, reply: dict[str, Any], stream: bool) -> None:
        raw_tools = body.get("tools")
        tools: list[Any] = raw_tools if isinstance(raw_tools, list) else []
        names = [
            t.get("function", {}).get("name")
            for t in tools
            if isinstance(t, dict) and isinstance(t.get("function"), dict)
        ]
        with self._lock:
            self._count += 1
            self._recorded.append(
                {
                    "seq": self._count,
                    "time": time.time(),
                    "stream": stream,
                    "model": body.get("model"),
                    "tools": names,
                    "messages": body.get("messages"),
                    "last_user": view.last_user,
                    "workdir": view.workdir,
                    "turn": view.turn,
                    "reply": reply,
                }
            )

    def _error_allowed(self, key: str, error: TurnError) -> bool:
        with self._lock:
            n = self._error_counts.get(key, 0)
            if error.times is not None and n >= error.times:
                return False
            self._error_counts[key] = n + 1
            return True

    def __repr__(self) -> str:
        state = f"{self.url}" if self._httpd is not None else "stopped"
        return f"<ScriptedModelServer {state} scenarios={len(self.script.scenarios)}>"
