"""``palot.client``: the typed client every front end uses to talk to the Palot service.

>>> async with PalotClient() as palot:                       # doctest: +SKIP
...     agent = await palot.spawn("~/src/app", "add a greeting module")
...     agent = await palot.wait(agent.id)

The client finds the service of ``PALOT_HOME`` on its unix socket and starts it in the background when it
is not running (waiting until it is ready, with progress). A service of another Palot version is restarted
when it is idle; otherwise the client says what to do. Errors are the service's own
:class:`~palot.errors.PalotError` subclasses, with their message and fix.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import json
import os
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any, TypeVar

import httpx
from pydantic import BaseModel, TypeAdapter, ValidationError

from . import __version__, api, loopwatch
from .endpoint import Endpoint
from .errors import (
    PalotError,
    ServiceAnswerInvalid,
    ServiceUnavailable,
    ServiceVersionMismatch,
    UnknownAction,
    error_for,
)
from .paths import PalotPaths

Progress = Callable[[str], None]
T = TypeVar("T")

START_TIMEOUT = 180.0  # the first start may install OpenCode
_ACTIVE = {s.value for s in api.AgentStatus if s.active}


def _quiet(_line: str) -> None:
    pass


def _absolute(path: str | Path) -> str:
    """A project path as the service must see it: it runs in its own working directory."""
    return str(Path(path).expanduser().absolute())


def _project_ref(project: str | Path | None) -> str | None:
    """A project given by path is sent absolute (the service has its own working directory); a name or id as is."""
    if project is None:
        return None
    return _absolute(project) if isinstance(project, Path) or Path(project).expanduser().exists() else str(project)


class PalotClient:
    """A connection to the Palot service of one ``PALOT_HOME`` (``home``, or ``$PALOT_HOME``, or the default)."""

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
            self._http = httpx.AsyncClient(base_url=url.rstrip("/"), headers=headers,
                                           timeout=httpx.Timeout(None, connect=5.0))
        else:
            self._http = httpx.AsyncClient(transport=httpx.AsyncHTTPTransport(uds=str(self.endpoint.socket)),
                                           base_url="http://palot", headers=headers,
                                           timeout=httpx.Timeout(None, connect=5.0))
        self._ready = False
        self._start_lock = asyncio.Lock()

    async def __aenter__(self) -> "PalotClient":
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
            env = {**os.environ, "PALOT_HOME": str(self.paths.home)}

            def launch() -> subprocess.Popen[bytes]:
                return subprocess.Popen(
                    [sys.executable, "-m", "palot.service", "--same-as-before", "--background"], env=env,
                    stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                    start_new_session=True)

            proc = launch()
            started = time.monotonic()
            told = False
            while True:
                with contextlib.suppress(httpx.ConnectError, httpx.RemoteProtocolError, FileNotFoundError):
                    return await self._status()
                waited = time.monotonic() - started
                if not told and waited > 1.0:
                    self.progress(f"starting the Palot service for {self.paths.home} …")
                    told = True
                seen = self._relay_log(seen) if told else seen
                code = proc.poll()
                if code == 0 and not self._service_alive():
                    # Ours lost the start to a service that has gone since (one stopping, or another client's
                    # that failed): nobody will answer unless we start it again.
                    proc = launch()
                elif code not in (None, 0):  # 0: another client's start won the race; wait for that one
                    err = (proc.stderr.read() if proc.stderr else b"").decode(errors="replace").strip()
                    raise ServiceUnavailable(f"the Palot service did not start: {self._last_error(err)}",
                                             f"see {log_file}, or run `palot serve` to watch it start")
                if waited > START_TIMEOUT:
                    raise ServiceUnavailable(f"the Palot service did not answer within {START_TIMEOUT:.0f} s",
                                             f"see {log_file}")
                await asyncio.sleep(0.05 if waited < 2 else 0.25)

    def _service_alive(self) -> bool:
        """Whether a service process of this home is alive (it holds ``service/lock`` for its whole life,
        including while it stops after its socket has closed)."""
        try:
            lock = open(self.endpoint.lock_file, "a")  # noqa: SIM115 - closed below
        except OSError:
            return False
        with lock:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return True
            fcntl.flock(lock, fcntl.LOCK_UN)
            return False

    def _relay_log(self, seen: int) -> int:
        """Show the service's start-up lines (e.g. OpenCode being installed) as progress."""
        try:
            with open(self.endpoint.log_file, "rb") as fh:
                fh.seek(seen)
                chunk = fh.read()
        except OSError:
            return seen
        for line in chunk.decode(errors="replace").splitlines():
            text = line.split(": ", 1)[-1].strip()
            if text and " INFO " in line:
                self.progress(text)
        return seen + len(chunk)

    def _last_error(self, stderr: str) -> str:
        lines = [ln for ln in stderr.splitlines() if ln.strip()]
        if not lines:
            with contextlib.suppress(OSError):
                lines = [ln for ln in self.endpoint.log_file.read_text().splitlines() if " ERROR " in ln]
        if not lines:
            return "no reason was logged"
        text = lines[-1].split(": ", 1)[-1]
        return text.removeprefix("the Palot service could not start: ")

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
        while self._service_alive():  # it closes the core (and OpenCode, when asked) after its socket
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
            return TypeAdapter(api.ACTIONS[action].response).validate_python(body)
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
                              else self._plain(action, payload, window))
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

    async def _plain(self, action: str, payload: dict[str, Any], window: dict[str, int] | None = None) -> Any:
        return self._answer(await self._http.post(f"/v1/{action}", json=payload, params=window))

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

    # --- the API, typed -----------------------------------------------------------------------

    async def status(self) -> api.ServiceStatus:
        return await self.call("status")

    async def projects(self) -> list[api.Project]:
        return await self.call("projects")

    async def models(self, project: str | Path | None = None) -> list[str]:
        return await self.call("models", {"project": _absolute(project) if project else None})

    async def list(self, *, project: str | None = None, status: str | list[str] | None = None,
                   environment: str | None = None, include_archived: bool = False,
                   include_external: bool = True) -> list[api.Agent]:
        statuses = [status] if isinstance(status, str) else status
        return await self.call("list", {"project": project, "status": statuses, "environment": environment,
                                        "include_archived": include_archived, "include_external": include_external})

    async def get(self, agent: str) -> api.Agent:
        return await self.call("get", {"agent": agent})

    async def spawn(self, project: str | Path, prompt: str | None = None, *, environment: str | None = None,
                    title: str | None = None, model: str | None = None, base_branch: str | None = None,
                    branch: str | None = None, setup_script: str | None = None, permission_mode: str | None = None,
                    options: dict[str, Any] | api.ContainerOptions | None = None,
                    budget_usd: float | None = None, budget_tokens: int | None = None,
                    template: str | None = None, vars: dict[str, str] | None = None,
                    progress: Progress | None = None) -> api.Agent:
        """Start an agent from ``prompt``, or from ``template`` with its ``vars`` filled in."""
        opts = options.model_dump(exclude_none=True) if isinstance(options, api.ContainerOptions) else options
        return await self.call("spawn", {
            "project": _absolute(project), "prompt": prompt, "environment": environment, "title": title,
            "model": model, "base_branch": base_branch, "branch": branch, "setup_script": setup_script,
            "permission_mode": permission_mode, "options": opts or None, "budget_usd": budget_usd,
            "budget_tokens": budget_tokens, "template": template, "vars": vars or None}, progress=progress)

    async def prompt(self, agent: str, text: str, *, model: str | None = None) -> api.Agent:
        return await self.call("prompt", {"agent": agent, "text": text, "model": model})

    async def abort(self, agent: str) -> api.Agent:
        return await self.call("abort", {"agent": agent})

    async def reply(self, agent: str, reply: str, *, permission_id: str | None = None,
                    message: str | None = None) -> api.Agent:
        return await self.call("reply", {"agent": agent, "reply": reply, "permission_id": permission_id,
                                         "message": message})

    async def wait(self, agent: str, *, timeout: float = 300.0,
                   until: list[api.AgentStatus] | list[str] | None = None) -> api.Agent:
        return await self.call("wait", {"agent": agent, "timeout": timeout,
                                        "until": [api.AgentStatus(u) for u in until] if until else None})

    async def activity(self, agent: str, *, since: int = 0) -> list[api.ActivityItem]:
        return await self.call("activity", {"agent": agent, "since": since})

    async def messages(self, agent: str) -> list[api.AgentMessage]:
        return await self.call("messages", {"agent": agent})

    async def diff(self, agent: str, *, path: str | None = None) -> api.AgentDiff:
        return await self.call("diff", {"agent": agent, "path": path})

    async def apply(self, agent: str, *, path: str | None = None) -> list[str]:
        return await self.call("apply", {"agent": agent, "path": path})

    async def create_pr(self, agent: str, *, title: str | None = None, body: str | None = None,
                        remote: str = "origin", base: str | None = None,
                        progress: Progress | None = None) -> api.PullRequest:
        return await self.call("create_pr", {"agent": agent, "title": title, "body": body, "remote": remote,
                                             "base": base}, progress=progress)

    async def archive(self, agent: str, *, progress: Progress | None = None) -> api.Agent:
        return await self.call("archive", {"agent": agent}, progress=progress)

    async def destroy(self, agent: str, *, force: bool = False) -> api.Done:
        return await self.call("destroy", {"agent": agent, "force": force})

    async def environment(self, agent: str) -> api.EnvironmentStatus:
        return await self.call("environment", {"agent": agent})

    async def move(self, agent: str, target: str, *, options: dict[str, Any] | api.ContainerOptions | None = None,
                   resume: bool | None = None, progress: Progress | None = None) -> api.MigrationResult:
        opts = options.model_dump(exclude_none=True) if isinstance(options, api.ContainerOptions) else options
        return await self.call("move", {"agent": agent, "target": target, "options": opts or None,
                                        "resume": resume}, progress=progress)

    async def moves(self, agent: str) -> list[api.MoveRecord]:
        return await self.call("moves", {"agent": agent})

    async def audit(self, agent: str | None = None, *, limit: int = 200) -> list[api.AuditEntry]:
        return await self.call("audit", {"agent": agent, "limit": limit})

    async def budget(self, agent: str, usd: float | None = None, *, tokens: int | None = None) -> api.Agent:
        return await self.call("budget", {"agent": agent, "usd": usd, "tokens": tokens})

    async def inbox(self, *, project: str | None = None) -> list[api.InboxItem]:
        return await self.call("inbox", {"project": project})

    async def inbox_reply(self, reply: str, *, permission_ids: list[str] | None = None, agent: str | None = None,
                          tool: str | None = None, project: str | None = None,
                          message: str | None = None) -> list[api.InboxItem]:
        return await self.call("inbox_reply", {"reply": reply, "permission_ids": permission_ids, "agent": agent,
                                               "tool": tool, "project": project, "message": message})

    async def retry(self, agent: str, *, progress: Progress | None = None) -> api.Agent:
        """A new agent from the agent's prompt, base commit and options; the old one is left as it is."""
        return await self.call("retry", {"agent": agent}, progress=progress)

    async def request_changes(self, agent: str, comments: list[dict[str, Any]] | list[api.ReviewComment], *,
                              note: str | None = None) -> api.Agent:
        """Send the agent one prompt built from review comments ({path, line, end_line?, comment}) on its diff."""
        return await self.call("request_changes", {"agent": agent, "comments": [
            c.model_dump() if isinstance(c, BaseModel) else c for c in comments], "note": note})

    async def bulk(self, operation: str, *, status: str | list[str] | None = None, project: str | None = None,
                   environment: str | None = None, older_than: str | None = None, title: str | None = None,
                   agents: list[str] | None = None, force: bool = False, dry_run: bool = True,
                   progress: Progress | None = None) -> api.BulkResult:
        """Archive, abort or destroy every agent the filters select; ``dry_run`` (the default) only lists what
        would happen."""
        statuses = [status] if isinstance(status, str) else status
        return await self.call("bulk", {"operation": operation, "status": statuses, "project": project,
                                        "environment": environment, "older_than": older_than, "title": title,
                                        "agents": agents, "force": force, "dry_run": dry_run}, progress=progress)

    async def settings(self) -> api.SettingsView:
        return await self.call("settings")

    async def templates(self, *, project: str | Path | None = None) -> list[api.Template]:
        return await self.call("templates", {"project": _project_ref(project)})

    async def template_show(self, name: str, *, project: str | Path | None = None) -> api.Template:
        return await self.call("template_show", {"name": name, "project": _project_ref(project)})

    async def template_add(self, name: str, prompt: str, *, project: str | Path | None = None,
                           title: str | None = None, environment: str | None = None, model: str | None = None,
                           permission_mode: str | None = None, setup_script: str | None = None) -> api.TemplateSaved:
        """Add a template (or replace the one of that name in that project); no project: for every project."""
        return await self.call("template_add", {
            "name": name, "prompt": prompt, "project": _project_ref(project), "title": title,
            "environment": environment, "model": model, "permission_mode": permission_mode,
            "setup_script": setup_script})

    async def template_remove(self, name: str, *, project: str | Path | None = None) -> api.Done:
        return await self.call("template_remove", {"name": name, "project": _project_ref(project)})
    async def du(self) -> api.DiskUse:
        return await self.call("du")

    async def gc(self, *, yes: bool = False, force: bool = False, progress: Progress | None = None) -> api.GcReport:
        return await self.call("gc", {"yes": yes, "force": force}, progress=progress)
