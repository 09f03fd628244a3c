"""``palot serve``: the one Palot service of a ``PALOT_HOME``, and its HTTP+JSON / SSE front door.

It owns the core (:class:`palot.Palot`: store, the shared OpenCode server and its supervision, every
environment's event source, agents, moves) and answers :mod:`palot.api` requests on a unix socket in
``PALOT_HOME`` (mode 0600; a connection from another uid is closed before it is read). An optional
loopback TCP listener, for a remote editor, needs the generated token in ``service/tcp-token``. An action
that answers a list can be asked for a page of it (``POST /v1/list?offset=0&limit=50``: ``{"total": …,
"items": […]}``, ``PalotClient.page``), so a front end showing 50 of 1,000 agents is sent 50.

One service per home: it holds ``service/lock`` for its whole life. Its options (e.g. the scripted model
of a rehearsal) are kept in ``service/service.json`` so a client that restarts it restarts the same one.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import hmac
import json
import logging
import logging.handlers
import os
import secrets
import signal
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, get_origin

import uvicorn
from pydantic import BaseModel, TypeAdapter
from starlette.applications import Starlette
from starlette.datastructures import QueryParams
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from .. import __version__, api
from ..core import Palot
from ..endpoint import Endpoint
from ..errors import InvalidInput, PalotError
from ..paths import PalotPaths, write_private
from .actions import HANDLERS, AgentLocks
from ..policies import Policies
from .bridge import EventBridge
from .listen import PeerCheckedH11, bind_tcp, bind_unix

log = logging.getLogger("palot.service")

HEARTBEAT = 15.0  # seconds between SSE comments, so clients notice a dead service


@dataclass
class ServeOptions:
    """How the service runs its core; kept in service.json so a restart keeps them."""

    scripted: str | None = None  # a scripted-model script (rehearsals, tests, the demo)
    isolated: bool = False  # OpenCode with its own HOME/XDG dirs, offline
    opencode_bin: str | None = None
    tcp: str | None = None  # "127.0.0.1:PORT" for the optional TCP listener
    port: int | None = None  # the OpenCode server's port (default: a free one)
    config: dict[str, Any] = field(default_factory=dict)


def _error_body(e: PalotError) -> dict[str, Any]:
    return {"error": {"code": e.code, "type": type(e).__name__, "message": e.message, "fix": e.fix}}


def _status_code(e: PalotError) -> int:
    from ..errors import AgentNotFound, InvalidState

    if isinstance(e, AgentNotFound):
        return 404
    if isinstance(e, InvalidInput):
        return 400
    if isinstance(e, InvalidState):
        return 409
    return 502  # OpenCode, git, Docker or the Worker said no


class Service:
    """The running service: the core plus the event bridge, the locks and the HTTP app."""

    def __init__(self, paths: PalotPaths, options: ServeOptions) -> None:
        self.paths = paths
        self.endpoint = Endpoint(paths)
        self.options = options
        self.palot = Palot(paths, isolated=options.isolated, scripted=options.scripted,
                           opencode_bin=Path(options.opencode_bin) if options.opencode_bin else None,
                           config=options.config or None, port=options.port, attach_any=options.scripted is None and not options.isolated)
        # The core's progress (installing OpenCode, waiting for a busy server) goes to the log, which a
        # starting client relays; stderr is a pipe nobody reads once that client has gone.
        self.palot.server.progress = log.info
        self.bridge = EventBridge(self.palot)
        self.locks = AgentLocks(self.palot)
        self.policies = Policies(self.palot, self.bridge, self.locks.hold)
        self.started_at = time.time()
        self.stopping = asyncio.Event()
        self.stop_opencode = False
        self.tcp_address: str | None = None
        self._running: set[asyncio.Task[Any]] = set()
        self._adapters = {name: TypeAdapter(spec.response) for name, spec in api.ACTIONS.items()}

    def agent_lock(self, agent_ref: str, action: str) -> contextlib.AbstractAsyncContextManager[str]:
        return self.locks.hold(agent_ref, action)

    def status(self) -> api.ServiceStatus:
        server = self.palot.server
        state = server.state
        return api.ServiceStatus(
            palot_version=__version__, api_version=api.API_VERSION, pid=os.getpid(), home=str(self.paths.home),
            started_at=self.started_at, opencode_url=state.url if state else None,
            opencode_pid=state.pid if state else None, opencode_connected=self.palot.hub.state.connected,
            opencode_restarts=server.restarts, agents=len(self.palot.agents.list(include_external=False)),
            clients=len(self.bridge.clients), upstream_subscriptions=1 + len(self.palot.hub._extra),
            tcp=self.tcp_address, spend=self.policies.budgets.spend(), inbox=self.policies.inbox.count(),
            settings_error=self.policies.settings.error, warm_containers=self.policies.warm.ready(),
        )

    # --- HTTP -------------------------------------------------------------------------------

    def app(self, token: str | None = None) -> Starlette:
        routes = [
            Route("/v1/events", self._events, methods=["GET"]),
            Route("/v1/admin/shutdown", self._shutdown, methods=["POST"]),
            Route("/v1/{action}", self._action, methods=["POST"]),
        ]
        app = Starlette(routes=routes)
        if token is None:
            return app

        async def guarded(scope: Any, receive: Any, send: Any) -> None:
            if scope["type"] == "http":
                headers = dict(scope.get("headers") or [])
                given = headers.get(b"authorization", b"").decode(errors="replace").removeprefix("Bearer ")
                if not hmac.compare_digest(given.encode(), token.encode()):
                    body = {"error": {"code": "unauthorized", "type": "Unauthorized",
                                      "message": "missing or wrong token for the Palot service",
                                      "fix": f"send 'Authorization: Bearer <token>' with the token in "
                                             f"{self.endpoint.token_file}"}}
                    await JSONResponse(body, status_code=401)(scope, receive, send)
                    return
            await app(scope, receive, send)

        return guarded  # type: ignore[return-value]

    async def _action(self, request: Request) -> Response:
        name = request.path_params["action"]
        try:
            try:
                arguments = await request.json() if await request.body() else {}
            except ValueError:
                raise InvalidInput("the request body is not JSON", "send a JSON object of the action's arguments") from None
            if not isinstance(arguments, dict):
                raise InvalidInput("the request body is not a JSON object", "send the action's arguments as an object")
            req = api.request_for(name, arguments)
            window = _window(name, request.query_params)
        except PalotError as e:
            return JSONResponse(_error_body(e), status_code=_status_code(e))
        if "application/x-ndjson" in request.headers.get("accept", ""):
            return StreamingResponse(self._streamed(name, req, window), media_type="application/x-ndjson")
        try:
            result = await HANDLERS[name](self, req, lambda _line: None)
        except PalotError as e:
            return JSONResponse(_error_body(e), status_code=_status_code(e))
        except Exception as e:  # a bug must reach the user as one sentence, the trace in the log
            log.exception("action %s failed", name)
            return JSONResponse(self._internal(name, e), status_code=500)
        return Response(self._dump(name, result, window), media_type="application/json")

    def _dump(self, name: str, result: Any, window: slice | None) -> bytes:
        """The answer as JSON; with a window, only that part of the list and the whole list's length."""
        adapter = self._adapters[name]
        if window is None:
            return adapter.dump_json(result)
        return b'{"total": %d, "items": ' % len(result) + adapter.dump_json(result[window]) + b"}"

    def _internal(self, name: str, e: BaseException) -> dict[str, Any]:
        return {"error": {"code": "internal", "type": type(e).__name__,
                          "message": f"the Palot service failed on '{name}': {str(e).splitlines()[0] if str(e) else type(e).__name__}",
                          "fix": f"see `palot service logs` ({self.endpoint.log_file}) and report it"}}

    async def _streamed(self, name: str, req: BaseModel, window: slice | None) -> AsyncIterator[bytes]:
        """Progress lines, then the result (or the error), one JSON object per line."""
        lines: asyncio.Queue[str] = asyncio.Queue()
        task = asyncio.create_task(HANDLERS[name](self, req, lines.put_nowait))
        self._running.add(task)  # the loop keeps only weak references; the work must outlive its client
        task.add_done_callback(self._running.discard)
        try:
            while not task.done() or not lines.empty():
                getter = asyncio.ensure_future(lines.get())
                await asyncio.wait({task, getter}, return_when=asyncio.FIRST_COMPLETED)
                if getter.done():
                    yield json.dumps({"progress": getter.result()}).encode() + b"\n"
                else:
                    getter.cancel()
            try:
                result = task.result()
            except PalotError as e:
                yield json.dumps(_error_body(e)).encode() + b"\n"
                return
            except Exception as e:
                log.exception("action %s failed", name)
                yield json.dumps(self._internal(name, e)).encode() + b"\n"
                return
            yield b'{"result": ' + self._dump(name, result, window) + b"}\n"
        except asyncio.CancelledError:
            # The client went away: the work goes on to its end (nothing half-done); its outcome is in the
            # agent's view and the audit log.
            raise

    async def _events(self, request: Request) -> Response:
        replay = request.query_params.get("replay") in ("1", "true")
        queue = self.bridge.attach(replay)

        async def stream() -> AsyncIterator[bytes]:
            try:
                yield b": palot " + __version__.encode() + b"\n\n"
                while not self.stopping.is_set():
                    event = await queue.get(HEARTBEAT)
                    if event is None:
                        yield b": ping\n\n"
                        continue
                    yield b"data: " + event.model_dump_json().encode() + b"\n\n"
            finally:
                self.bridge.detach(queue)

        return StreamingResponse(stream(), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})

    async def _shutdown(self, request: Request) -> Response:
        body = await request.json() if await request.body() else {}
        self.stop_opencode = bool(isinstance(body, dict) and body.get("stop_opencode"))
        asyncio.get_running_loop().call_later(0.05, self.stopping.set)
        return JSONResponse({"ok": True, "message": "the Palot service is stopping"})

    # --- life -------------------------------------------------------------------------------

    async def run(self) -> None:
        # A bad --tcp address is refused before anything starts (no OpenCode server, no stale socket left).
        tcp_sock = None
        if self.options.tcp:
            tcp_sock, self.tcp_address = bind_tcp(self.options.tcp)
        await self.palot.start()
        self.bridge.start()
        await self.policies.start()
        sock = bind_unix(self.endpoint.socket)
        servers = [uvicorn.Server(uvicorn.Config(self.app(), http=PeerCheckedH11, lifespan="off", log_level="warning",
                                                 timeout_keep_alive=30, access_log=False))]
        sockets = [[sock]]
        if tcp_sock is not None:
            token = secrets.token_urlsafe(32)
            write_private(self.endpoint.token_file, token)
            servers.append(uvicorn.Server(uvicorn.Config(self.app(token), lifespan="off", log_level="warning",
                                                         access_log=False)))
            sockets.append([tcp_sock])
        for server in servers:
            server.install_signal_handlers = lambda: None  # type: ignore[method-assign]  # ours, below
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self.stopping.set)
        tasks = [asyncio.create_task(s.serve(sockets=socks)) for s, socks in zip(servers, sockets)]
        self._write_state()
        log.info("Palot service %s ready on %s (pid %d)", __version__, self.endpoint.socket, os.getpid())
        await self.stopping.wait()
        log.info("stopping")
        for server in servers:
            server.should_exit = True
            server.force_exit = True  # SSE streams never end by themselves
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(asyncio.gather(*tasks, return_exceptions=True), 5)
        await self.policies.close()
        await self.palot.close()
        if self.stop_opencode:
            await self.palot.stop_server()
        with contextlib.suppress(OSError):
            self.endpoint.socket.unlink()
        self.endpoint.token_file.unlink(missing_ok=True)

    def _write_state(self) -> None:
        state = {"pid": os.getpid(), "palot_version": __version__, "api_version": api.API_VERSION,
                 "socket": str(self.endpoint.socket), "tcp": self.tcp_address, "started_at": self.started_at,
                 "options": asdict(self.options)}
        write_private(self.endpoint.state_file, json.dumps(state))


def _window(name: str, query: QueryParams) -> slice | None:
    """The part of a list answer a client asked for with ``?offset=&limit=`` (a page of it: the service sends
    only that part, with the list's length), or None for the whole answer."""
    if "offset" not in query and "limit" not in query:
        return None
    if get_origin(api.ACTIONS[name].response) is not list:
        raise InvalidInput(f"'{name}' does not answer a list", "ask it without offset and limit")
    try:
        offset, limit = int(query.get("offset", "0")), int(query.get("limit", "0"))
    except ValueError:
        raise InvalidInput("offset and limit must be whole numbers", "e.g. ?offset=0&limit=50") from None
    if offset < 0 or limit < 1:
        raise InvalidInput("a page needs offset ≥ 0 and limit ≥ 1", "e.g. ?offset=0&limit=50")
    return slice(offset, offset + limit)


def _log_to(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    handler = logging.handlers.RotatingFileHandler(path, maxBytes=5_000_000, backupCount=3)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    for noisy in ("httpx", "httpcore", "uvicorn.access"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def serve(paths: PalotPaths, options: ServeOptions, *, foreground: bool = True) -> int:
    """Run the service until SIGTERM/SIGINT or ``palot service stop``. 0 when it ran (or another one of this
    home is already running: then there is nothing to do), 1 when it could not start."""
    paths.ensure()
    endpoint = Endpoint(paths)
    endpoint.dir.mkdir(parents=True, exist_ok=True)
    os.chmod(endpoint.dir, 0o700)
    _log_to(endpoint.log_file)
    if foreground:
        console = logging.StreamHandler(sys.stderr)
        console.setFormatter(logging.Formatter("palot service: %(message)s"))
        console.setLevel(logging.INFO)
        logging.getLogger("palot.service").addHandler(console)
    lock = open(endpoint.lock_file, "w")  # noqa: SIM115 - held for the service's whole life
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        state = endpoint.read_state() or {}
        log.info("a Palot service already runs for %s (pid %s)", paths.home, state.get("pid", "?"))
        return 0
    try:
        asyncio.run(Service(paths, options).run())
    except PalotError as e:
        log.error("the Palot service could not start: %s", e)
        return 1
    except Exception:
        log.exception("the Palot service failed")
        return 1
    finally:
        fcntl.flock(lock, fcntl.LOCK_UN)
        lock.close()
    return 0
