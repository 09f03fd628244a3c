"""The connection half of :class:`palot.client.PalotClient`: reaching the service of a home (starting it,
replacing one of another version when idle, stopping it), calling an action and reading its typed answer
(plain, paged or with streamed progress), and the event stream with its ``resync`` after a restart."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any, Self

import httpx
from pydantic import BaseModel, TypeAdapter, ValidationError

from .. import __version__, api, loopwatch, tls
from ..endpoint import Endpoint
from ..errors import (
    PalotError,
    ServiceAnswerInvalid,
    ServiceUnavailable,
    ServiceVersionMismatch,
    UnknownAction,
    error_for,
)
from ..paths import PalotPaths
from .starting import START_TIMEOUT, last_error, launch, relay_log, service_alive

#: Receives one line of progress at a time (starting the service, a long action's steps).
Progress = Callable[[str], None]
_ACTIVE = {s.value for s in api.AgentStatus if s.active}


def _quiet(_line: str) -> None:
    pass


class ServiceConnection:
    """A connection to the Palot service of one ``PALOT_HOME`` (``home``, or ``$PALOT_HOME``, or the default):
    reaching it (starting it when needed), calling its actions and following its events. :class:`PalotClient`
    adds one typed method per action."""

    def __init__(self, home: str | Path | None = None, *, autostart: bool = True, progress: Progress | None = None,
                 url: str | None = None, token: str | None = None) -> None:
        self.paths = PalotPaths(Path(home).expanduser().resolve()) if home else PalotPaths.default()
        self.endpoint = Endpoint(self.paths)
        self.autostart = autostart and url is None
        self._url = url
        self.progress = progress or _quiet
        headers = {"User-Agent": f"palot-client/{__version__}"}
        if url is not None:  # a remote editor over the optional loopback TCP listener
            if token:
                headers["Authorization"] = f"Bearer {token}"
            self._http = httpx.AsyncClient(base_url=url.rstrip("/"), headers=headers, verify=tls.context(),
                                           timeout=httpx.Timeout(None, connect=5.0))
        else:
            # Plain HTTP over the service's own socket: no TLS and no proxy, so no CA bundle to load
            # (httpx would spend 50-100 ms of CPU loading one for every client it makes).
            transport = httpx.AsyncHTTPTransport(uds=str(self.endpoint.socket), verify=False)
            self._http = httpx.AsyncClient(transport=transport, base_url="http://palot", headers=headers,
                                           trust_env=False, timeout=httpx.Timeout(None, connect=5.0))
        self._ready = False
        self._start_lock = asyncio.Lock()

    async def __aenter__(self) -> Self:
        await self.connect()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        await self._http.aclose()

    # --- connecting ---------------------------------------------------------------------------

    async def connect(self) -> api.ServiceStatus:
        """Reach the service (starting it when needed) and check it speaks this client's version."""
        loopwatch.watch_running_loop()
        status = await self._reach()
        if status.palot_version != __version__ or status.api_version != api.API_VERSION:
            status = await self._replace_other_version(status)
        self._ready = True
        return status

    async def _status(self) -> api.ServiceStatus:
        response = await self._http.post("/v1/status", json={})
        return api.ServiceStatus.model_validate(self._answer(response))

    async def _reach(self) -> api.ServiceStatus:
        try:
            return await self._status()
        except (httpx.ConnectError, httpx.RemoteProtocolError, FileNotFoundError):
            if not self.autostart:
                raise ServiceUnavailable(
                    f"the Palot service of {self.paths.home} is not running",
                    "start it with `palot serve` (or let any palot command start it)") from None
        return await self._start()

    async def _start(self) -> api.ServiceStatus:
        async with self._start_lock:
            with contextlib.suppress(httpx.ConnectError, httpx.RemoteProtocolError, FileNotFoundError):
                return await self._status()
            log_file = self.endpoint.log_file
            seen = log_file.stat().st_size if log_file.exists() else 0
            proc = await asyncio.to_thread(launch, self.paths.home)  # a fork of this process
            started = time.monotonic()
            told = False
            while True:
                with contextlib.suppress(httpx.ConnectError, httpx.RemoteProtocolError, FileNotFoundError):
                    return await self._status()
                waited = time.monotonic() - started
                if not told and waited > 1.0:
                    self.progress(f"starting the Palot service for {self.paths.home} …")
                    told = True
                seen = relay_log(self.endpoint, seen, self.progress) if told else seen
                code = proc.poll()
                if code == 0 and not service_alive(self.endpoint):
                    # Ours lost the start to a service that has gone since (one stopping, or another client's
                    # that failed): nobody will answer unless we start it again.
                    proc = await asyncio.to_thread(launch, self.paths.home)  # a fork of this process
                elif code not in (None, 0):  # 0: another client's start won the race; wait for that one
                    err = (proc.stderr.read() if proc.stderr else b"").decode(errors="replace").strip()
                    raise ServiceUnavailable(f"the Palot service did not start: {last_error(self.endpoint, err)}",
                                             f"see {log_file}, or run `palot serve` to watch it start")
                if waited > START_TIMEOUT:
                    raise ServiceUnavailable(f"the Palot service did not answer within {START_TIMEOUT:.0f} s",
                                             f"see {log_file}")
                await asyncio.sleep(0.05 if waited < 2 else 0.25)

    async def _replace_other_version(self, status: api.ServiceStatus) -> api.ServiceStatus:
        # Asked directly (not through call(), which would check the version again); an answer this client
        # cannot read counts as busy: a working service is never stopped for an upgrade.
        try:
            listed = await self._plain("list", {"include_external": False})
            busy = [a for a in listed if not isinstance(a, dict) or a.get("status") in _ACTIVE]
        except (PalotError, httpx.HTTPError, TypeError):
            busy = ["?"]
        if busy or not self.autostart:
            raise ServiceVersionMismatch(
                f"the Palot service (pid {status.pid}) runs Palot {status.palot_version}, this is {__version__}"
                + (f", and {len(busy)} agent(s) are working" if busy else ""),
                "run `palot service restart` once they are done (agents keep their work across the restart)")
        self.progress(f"restarting the Palot service ({status.palot_version} → {__version__}) …")
        await self.stop_service()
        return await self._start()

    async def stop_service(self, *, stop_opencode: bool = False, timeout: float = 30.0) -> bool:
        """Ask the service to stop; True once it has stopped (its socket is gone and, on this machine, its
        process has ended, so a service started right after is not turned away). ``stop_opencode`` also
        stops OpenCode."""
        try:
            await self._http.post("/v1/admin/shutdown", json={"stop_opencode": stop_opencode})
        except (httpx.ConnectError, httpx.RemoteProtocolError, FileNotFoundError):
            return True
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                await self._http.post("/v1/status", json={})
            except (httpx.ConnectError, httpx.RemoteProtocolError, httpx.ReadError, FileNotFoundError):
                break
            await asyncio.sleep(0.1)
        else:
            return False
        if self._url is not None:
            return True
        while service_alive(self.endpoint):  # it closes the core (and OpenCode, when asked) after its socket
            if time.monotonic() > deadline:
                return False
            await asyncio.sleep(0.1)
        return True

    # --- calling ------------------------------------------------------------------------------

    def _answer(self, response: httpx.Response) -> Any:
        try:
            body = response.json()
        except ValueError:
            raise ServiceUnavailable(f"the Palot service answered {response.status_code} without JSON",
                                     f"see {self.endpoint.log_file}") from None
        if response.status_code >= 400 or (isinstance(body, dict) and "error" in body and len(body) == 1):
            raise self._error(body)
        return body

    @staticmethod
    def _error(body: Any) -> PalotError:
        err = body.get("error") if isinstance(body, dict) else None
        if not isinstance(err, dict):
            return PalotError(f"the Palot service answered with an error: {str(body)[:200]}")
        return error_for(err.get("code"), str(err.get("message", "failed")), err.get("fix"))

    async def call(self, action: str, arguments: dict[str, Any] | BaseModel | None = None, *,
                   progress: Progress | None = None) -> Any:
        """Run ``action`` of :data:`palot.api.ACTIONS` with ``arguments``; the typed response."""
        body = await self._request(action, arguments, progress, None)
        return self._typed(action, body)

    async def page(self, action: str, arguments: dict[str, Any] | BaseModel | None = None, *, offset: int,
                   limit: int) -> tuple[list[Any], int]:
        """``limit`` items from ``offset`` of an action's list answer, typed, and the whole list's length. The
        service sends only the page (a front end showing 50 of 1,000 agents reads 50)."""
        body = await self._request(action, arguments, None, {"offset": offset, "limit": limit})
        return self._typed(action, body["items"]), body["total"]

    @staticmethod
    def _typed(action: str, body: Any) -> Any:
        """The answer as the action's response type; one that does not fit is a :class:`ServiceAnswerInvalid`."""
        try:
            if isinstance(body, _JsonText):
                return _adapter(action).validate_json(body)
            return _adapter(action).validate_python(body)
        except ValidationError as e:
            raise ServiceAnswerInvalid(f"the Palot service's answer to '{action}' does not fit this client: "
                                       f"{str(e)[:300]}",
                                       "restart the service with this Palot (`palot down`, then `palot up`)") from e

    async def _request(self, action: str, arguments: dict[str, Any] | BaseModel | None, progress: Progress | None,
                       window: dict[str, int] | None) -> Any:
        """The service's answer to ``action``, as JSON (started again and retried once when it is gone)."""
        spec = api.ACTIONS.get(action)
        if spec is None:
            raise UnknownAction(f"unknown action '{action}'", f"use one of: {', '.join(api.ACTIONS)}")
        if isinstance(arguments, BaseModel):
            payload = arguments.model_dump(mode="json", exclude_none=True)
        else:
            payload = api.request_for(action, {k: v for k, v in (arguments or {}).items() if v is not None}
                                      ).model_dump(mode="json", exclude_none=True)
        if not self._ready:
            await self.connect()
        for attempt in (1, 2):
            try:
                return await (self._streamed(action, payload, progress) if progress is not None
                              else self._plain(action, payload, window, as_text=window is None))
            except (httpx.ConnectError, FileNotFoundError):
                # Nothing was sent: the service is gone (crashed, killed). Start it again, then retry.
                if attempt == 2 or not self.autostart:
                    raise ServiceUnavailable(f"the Palot service of {self.paths.home} is not running",
                                             "start it with `palot serve`") from None
                await self._start()
            except (httpx.RemoteProtocolError, httpx.ReadError):
                if spec.changes or attempt == 2:
                    raise ServiceUnavailable(
                        f"the Palot service stopped while doing '{action}'",
                        "see the outcome with `palot agents list`; the service restarts on the next command") from None
                await self._start()
        raise AssertionError("unreachable")

    async def _plain(self, action: str, payload: dict[str, Any], window: dict[str, int] | None = None, *,
                     as_text: bool = False) -> Any:
        """The answer as JSON, or ``as_text`` as its text for :meth:`_typed` (only a caller that types it)."""
        response = await self._http.post(f"/v1/{action}", json=payload, params=window)
        if (as_text and response.status_code < 400 and not response.content.startswith(b'{"error"')
                and response.headers.get("content-type", "").startswith("application/json")):
            return _JsonText(response.content)  # an answer, typed straight from its text by :meth:`_typed`
        return self._answer(response)

    async def _streamed(self, action: str, payload: dict[str, Any], progress: Progress) -> Any:
        async with self._http.stream("POST", f"/v1/{action}", json=payload,
                                     headers={"Accept": "application/x-ndjson"}) as response:
            if response.status_code >= 400:
                await response.aread()
                raise self._error(response.json())
            async for line in response.aiter_lines():
                if not line.strip():
                    continue
                item = json.loads(line)
                if "progress" in item:
                    progress(str(item["progress"]))
                elif "result" in item:
                    return item["result"]
                else:
                    raise self._error(item)
        raise ServiceUnavailable(f"the Palot service ended '{action}' without an answer",
                                 "see the outcome with `palot agents list`")

    # --- events -------------------------------------------------------------------------------

    async def events(self, *, replay: bool = False,
                     on_connect: Callable[[], None] | None = None) -> AsyncIterator[api.Event]:
        """Palot-level events as they happen, forever; after the service restarts, a ``resync`` event (views
        may have missed changes: re-read them) and the stream goes on. ``on_connect`` is called each time
        the stream is attached (from then on no event is missed)."""
        first = True
        while True:
            try:
                if not self._ready:
                    await self.connect()
                async with self._http.stream("GET", "/v1/events", params={"replay": "1" if replay else "0"},
                                             timeout=httpx.Timeout(None, connect=5.0)) as response:
                    if response.status_code >= 400:
                        await response.aread()
                        raise self._error(response.json())
                    if on_connect is not None:
                        on_connect()
                    if not first:
                        yield api.Event(type=api.RESYNC, message="the Palot service restarted")
                    first = False
                    async for line in response.aiter_lines():
                        if line.startswith("data: "):
                            yield api.Event.model_validate_json(line[6:])
            except (httpx.ConnectError, httpx.RemoteProtocolError, httpx.ReadError, FileNotFoundError):
                # Gone (crashed, restarting): a client that may start the service does so on the next attempt.
                self._ready = False
                await asyncio.sleep(0.5 if self.autostart else 2.0)
            except ServiceUnavailable:
                if self.autostart:
                    raise  # it could not be started: the error says why
                self._ready = False  # stopped by the user: wait for it to be back
                await asyncio.sleep(2.0)


class _JsonText(bytes):
    """An answer's JSON text: validated from the text in one step, half the time of parsing it first (1.6 against
    3.3 ms for a list of 100 agents)."""


@functools.cache
def _adapter(action: str) -> TypeAdapter[Any]:
    """The validator of an action's answer, built once: building one costs milliseconds (a list of 100
    agents took 15 ms a call, most of it making this again)."""
    return TypeAdapter(api.ACTIONS[action].response)
