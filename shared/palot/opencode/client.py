"""Typed async client for OpenCode 1.18's HTTP API.

One client talks to one server; every project-scoped call takes the
``directory`` it concerns, which OpenCode uses to route the request (so one
shared server serves every local project).
"""

from __future__ import annotations

import logging
import time
from typing import Any, TypeVar

import httpx
from pydantic import TypeAdapter, ValidationError

from .. import tls
from ..errors import OpenCodeError, OpenCodeHTTPError, ServerUnavailable
from .failures import http_error_detail
from .models import Health, Message, PermissionRequest, PermissionRule, Session, SessionStatus

_sessions = TypeAdapter(list[Session])
_messages = TypeAdapter(list[Message])
_permissions = TypeAdapter(list[PermissionRequest])
_statuses = TypeAdapter(dict[str, SessionStatus])
_session = TypeAdapter(Session)
_health = TypeAdapter(Health)

DEFAULT_USERNAME = "opencode"
_T = TypeVar("_T")
log = logging.getLogger(__name__)
# A busy server (many sessions finishing at once on a small machine) can stall for tens of seconds; a read is
# safe to repeat, so it gets a second chance, twice as long, before the caller is told the server is overloaded.
# Health probes are never repeated: their callers decide what a missed answer means.
_SLOW = 5.0  # seconds after which an answer is logged as slow, to diagnose an overloaded server


class OpenCodeClient:
    """Async client for one OpenCode server, with basic auth (or ``auth``: a proxy's own, e.g. the cloud
    Worker's bearer token, which then authenticates to the server itself)."""

    def __init__(
        self,
        base_url: str,
        password: str | None,
        *,
        username: str = DEFAULT_USERNAME,
        timeout: float = 30.0,
        uds: str | None = None,
        auth: httpx.Auth | None = None,
    ) -> None:
        if auth is None and password:
            auth = httpx.BasicAuth(username, password)
        self.base_url = base_url.rstrip("/")
        self.auth = auth
        self.uds = uds  # a unix socket to connect through (an environment with no network)
        transport = httpx.AsyncHTTPTransport(uds=uds, verify=tls.context()) if uds else None
        self._http = httpx.AsyncClient(base_url=self.base_url, auth=auth, timeout=timeout, transport=transport,
                                       verify=tls.context())
        self._timeout = timeout

    async def aclose(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> "OpenCodeClient":
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    def rebase(self, base_url: str) -> None:
        """Point the client at a new address (the server was restarted on another port)."""
        self.base_url = base_url.rstrip("/")
        self._http.base_url = httpx.URL(self.base_url)

    # --- plumbing -----------------------------------------------------------

    async def _request(
        self,
        method: str,
        path: str,
        *,
        directory: str | None = None,
        params: dict[str, Any] | None = None,
        json: Any = None,
        timeout: float | None = None,
        retry: bool = True,
    ) -> httpx.Response:
        query = dict(params or {})
        if directory is not None:
            query["directory"] = directory
        kwargs: dict[str, Any] = {"params": query}
        if json is not None:
            kwargs["json"] = json
        if timeout is not None:
            kwargs["timeout"] = timeout
        retry = retry and method == "GET" and timeout is None
        started = time.monotonic()
        try:
            try:
                resp = await self._http.request(method, path, **kwargs)
            except httpx.TimeoutException:
                if not retry:
                    raise
                log.warning("OpenCode server at %s is slow to answer %s %s; asking again", self.base_url, method, path)
                resp = await self._http.request(method, path, **kwargs, timeout=2 * self._timeout)
        except (httpx.ConnectError, httpx.RemoteProtocolError, httpx.ReadError, OSError) as e:
            raise ServerUnavailable(
                f"OpenCode server at {self.base_url} is unreachable ({type(e).__name__})",
                "run `palot up` (or `palot doctor`) to start it",
            ) from e
        except httpx.TimeoutException as e:
            raise ServerUnavailable(
                f"OpenCode server at {self.base_url} did not answer {method} {path} in time",
                "check `palot doctor`; the server may be overloaded",
            ) from e
        elapsed = time.monotonic() - started
        if elapsed > _SLOW:
            log.warning("OpenCode server at %s took %.1f s to answer %s %s", self.base_url, elapsed, method, path)
        if resp.status_code >= 400:
            raise OpenCodeHTTPError(resp.status_code, method, path, resp.text, http_error_detail(resp.text))
        return resp

    # --- server -------------------------------------------------------------

    async def health(self, timeout: float | None = None) -> Health:
        resp = await self._request("GET", "/global/health", timeout=timeout, retry=False)
        return _parse(_health, resp)

    async def openapi(self) -> dict[str, Any]:
        """The server's own OpenAPI document."""
        return (await self._request("GET", "/doc")).json()

    async def models(self, directory: str) -> list[str]:
        """The ``provider/model`` names the server can use for ``directory`` (its config and the project's)."""
        data = (await self._request("GET", "/config/providers", directory=directory)).json()
        return sorted(f"{p.get('id')}/{m}" for p in data.get("providers") or [] for m in (p.get("models") or {}))

    async def dispose_instance(self, directory: str) -> None:
        """Release the server's state for one directory (e.g. before removing a worktree)."""
        await self._request("POST", "/instance/dispose", directory=directory)

    # --- sessions -----------------------------------------------------------

    async def list_sessions(self, directory: str, *, limit: int = 1000, roots: bool = True) -> list[Session]:
        params: dict[str, Any] = {"limit": limit}
        if roots:
            params["roots"] = "true"
        resp = await self._request("GET", "/session", directory=directory, params=params)
        return _parse(_sessions, resp)

    async def create_session(
        self,
        directory: str,
        *,
        title: str | None = None,
        permission: list[PermissionRule] | None = None,
    ) -> Session:
        body: dict[str, Any] = {}
        if title:
            body["title"] = title
        if permission:
            body["permission"] = [r.model_dump(exclude_none=True) for r in permission]
        resp = await self._request("POST", "/session", directory=directory, json=body)
        return _parse(_session, resp)

    async def get_session(self, session_id: str, directory: str) -> Session:
        resp = await self._request("GET", f"/session/{session_id}", directory=directory)
        return _parse(_session, resp)

    async def delete_session(self, session_id: str, directory: str) -> None:
        await self._request("DELETE", f"/session/{session_id}", directory=directory)

    async def session_statuses(self, directory: str) -> dict[str, SessionStatus]:
        """Status of every non-idle session in ``directory`` (idle ones are omitted)."""
        resp = await self._request("GET", "/session/status", directory=directory)
        return _parse(_statuses, resp)

    async def messages(self, session_id: str, directory: str, *, limit: int | None = None) -> list[Message]:
        params = {"limit": limit} if limit else None
        resp = await self._request("GET", f"/session/{session_id}/message", directory=directory, params=params)
        return _parse(_messages, resp)

    async def prompt_async(
        self,
        session_id: str,
        directory: str,
        text: str,
        *,
        model: str | None = None,
        agent: str | None = None,
    ) -> None:
        """Send a prompt and return at once; progress arrives as events."""
        body: dict[str, Any] = {"parts": [{"type": "text", "text": text}]}
        if model:
            provider, _, model_id = model.partition("/")
            body["model"] = {"providerID": provider, "modelID": model_id}
        if agent:
            body["agent"] = agent
        await self._request("POST", f"/session/{session_id}/prompt_async", directory=directory, json=body)

    async def abort(self, session_id: str, directory: str) -> bool:
        resp = await self._request("POST", f"/session/{session_id}/abort", directory=directory)
        return bool(resp.json())

    # --- permissions --------------------------------------------------------

    async def permissions(self, directory: str) -> list[PermissionRequest]:
        resp = await self._request("GET", "/permission", directory=directory)
        return _parse(_permissions, resp)

    async def reply_permission(
        self, request_id: str, directory: str, reply: str, *, message: str | None = None
    ) -> bool:
        body: dict[str, Any] = {"reply": reply}
        if message:
            body["message"] = message
        resp = await self._request("POST", f"/permission/{request_id}/reply", directory=directory, json=body)
        return bool(resp.json())


def _parse(adapter: TypeAdapter[_T], resp: httpx.Response) -> _T:
    """The response as Palot's model, or a clear error when the server answered something else."""
    try:
        return adapter.validate_json(resp.content)
    except ValidationError as e:
        first = e.errors(include_url=False)[0]
        where = ".".join(str(x) for x in first["loc"]) or "the body"
        raise OpenCodeError(
            f"OpenCode answered {resp.request.method} {resp.request.url.path} with an unexpected shape "
            f"({where}: {first['msg']})",
            "check that the server is the OpenCode version Palot pins (`palot doctor`)",
        ) from e
