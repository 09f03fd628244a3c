"""The Worker's HTTP API (provisioning, status) and the environment daemon behind its proxy.

Every call carries the Worker's bearer token; the Worker swaps it for the environment's own OpenCode
password, which never leaves the Worker's Durable Object.
"""

from __future__ import annotations

from collections.abc import Generator
from dataclasses import dataclass
from typing import Any

import httpx

from ..errors import (  # noqa: F401 - re-exported
    CloudAuthFailed,
    CloudEnvironmentGone,
    CloudUnreachable,
    CloudWorkerError,
    EnvironmentCommandFailed,
    PalotError,
)
from .config import CloudConfig


class BearerAuth(httpx.Auth):
    """``Authorization: Bearer <token>`` on every request."""

    def __init__(self, token: str) -> None:
        self._header = f"Bearer {token}"

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers["Authorization"] = self._header
        yield request


@dataclass(frozen=True)
class ExecResult:
    code: int
    stdout: str
    stderr: str


class WorkerClient:
    """One deployed (or locally run) Palot Worker."""

    def __init__(self, config: CloudConfig, *, timeout: float = 60.0) -> None:
        self.url = config.url
        self.auth = BearerAuth(config.token)
        self._http = httpx.AsyncClient(base_url=self.url, auth=self.auth, timeout=timeout)

    async def aclose(self) -> None:
        await self._http.aclose()

    def opencode_url(self, env_id: str) -> str:
        return f"{self.url}/envs/{env_id}/opencode"

    async def _request(self, method: str, path: str, *, env_id: str | None = None, timeout: float | None = None,
                       **kwargs: Any) -> httpx.Response:
        if timeout is not None:
            kwargs["timeout"] = timeout
        try:
            response = await self._http.request(method, path, **kwargs)
        except httpx.TransportError as exc:
            raise CloudUnreachable(f"the Worker at {self.url} is unreachable ({type(exc).__name__}: {exc})",
                                   "check the URL with `palot cloud status`, your network, and that the Worker "
                                   "is deployed (`palot cloud deploy`)") from None
        if response.status_code == 401:
            raise CloudAuthFailed(f"the Worker at {self.url} refused Palot's token",
                                  "run `palot cloud connect URL --token TOKEN` with the Worker's token, or "
                                  "`palot cloud deploy` to set a new one")
        if response.status_code == 404 and env_id is not None:
            raise CloudEnvironmentGone(f"cloud environment {env_id} does not exist (any more) on {self.url}",
                                       "destroy the agent; its published branch, if any, is in your repository")
        if response.status_code >= 400:
            try:
                body = response.json()
                error, fix = body.get("error") or response.text, body.get("fix")
            except ValueError:
                error, fix = response.text[:300], None
            raise CloudWorkerError(f"the Worker answered {response.status_code} to {method} {path}: {error}",
                                   fix or "see the Worker's log (`wrangler tail`)")
        return response

    # --- provisioning --------------------------------------------------------

    async def health(self) -> dict[str, Any]:
        return (await self._request("GET", "/health")).json()

    async def list_envs(self) -> list[dict[str, Any]]:
        return (await self._request("GET", "/envs")).json()["envs"]

    async def create(self, env_id: str, env: dict[str, str],
                     credentials: dict[str, str] | None = None) -> dict[str, Any]:
        """A new environment; ``credentials`` (model-provider keys) are sealed by the Worker, never echoed."""
        body: dict[str, Any] = {"id": env_id, "env": env, **({"credentials": credentials} if credentials else {})}
        return (await self._request("POST", "/envs", json=body, timeout=180)).json()

    async def set_credentials(self, env_id: str, credentials: dict[str, str]) -> dict[str, Any]:
        """Replace the environment's credentials (empty: forget them); a running OpenCode restarts with them."""
        return (await self._request("PUT", f"/envs/{env_id}/credentials", env_id=env_id,
                                    json={"env": credentials}, timeout=180)).json()

    async def status(self, env_id: str) -> dict[str, Any]:
        return (await self._request("GET", f"/envs/{env_id}", env_id=env_id)).json()

    async def set_durable(self, env_id: str, commands: dict[str, list[str]]) -> dict[str, Any]:
        """Give the environment its save and restore commands (:mod:`palot.cloud.durable`)."""
        return (await self._request("PUT", f"/envs/{env_id}/durable", env_id=env_id, json=commands)).json()

    async def put_base(self, env_id: str, bundle: bytes) -> None:
        """Keep the project's base bundle with the Worker: every restore starts from it."""
        await self._request("PUT", f"/envs/{env_id}/base", env_id=env_id, content=bundle, timeout=600)

    async def save(self, env_id: str) -> dict[str, Any]:
        """Save the environment's work now (code and conversation, into the Worker's bucket)."""
        return (await self._request("POST", f"/envs/{env_id}/save", env_id=env_id, timeout=660)).json()

    async def pause(self, env_id: str) -> dict[str, Any]:
        """Save, then stop the container; requests are refused until :meth:`resume`."""
        return (await self._request("POST", f"/envs/{env_id}/pause", env_id=env_id, timeout=720)).json()

    async def resume(self, env_id: str) -> dict[str, Any]:
        """Start the container and put the newest save back (answers once it is in place)."""
        return (await self._request("POST", f"/envs/{env_id}/resume", env_id=env_id, timeout=720)).json()

    async def destroy(self, env_id: str) -> dict[str, Any]:
        return (await self._request("DELETE", f"/envs/{env_id}", env_id=env_id)).json()

    # --- the environment daemon (images/agent/palot-envd.py) -----------------

    async def daemon_health(self, env_id: str) -> dict[str, Any]:
        return (await self._request("GET", f"/envs/{env_id}/daemon/health", env_id=env_id, timeout=10)).json()

    async def exec(self, env_id: str, argv: list[str], *, cwd: str | None = None, env: dict[str, str] | None = None,
                   stdin: str | None = None, timeout: float = 600) -> ExecResult:
        body = {"argv": argv, "cwd": cwd, "env": env or {}, "stdin": stdin or "", "timeout": timeout}
        data = (await self._request("POST", f"/envs/{env_id}/daemon/exec", env_id=env_id, json=body,
                                    timeout=timeout + 30)).json()
        return ExecResult(int(data["code"]), data["stdout"], data["stderr"])

    async def run(self, env_id: str, argv: list[str], what: str, **kwargs: Any) -> str:
        """:meth:`exec`, raising with the output when the command fails."""
        result = await self.exec(env_id, argv, **kwargs)
        if result.code != 0:
            raise EnvironmentCommandFailed(f"{what} failed in cloud environment {env_id} (exit {result.code}): "
                                           f"{(result.stderr or result.stdout).strip()[-1500:]}",
                                           "see the output above; the environment is unchanged by Palot past this point")
        return result.stdout

    async def put_file(self, env_id: str, path: str, data: bytes) -> None:
        await self._request("PUT", f"/envs/{env_id}/daemon/files", env_id=env_id, params={"path": path},
                            content=data, timeout=600)

    async def get_file(self, env_id: str, path: str) -> bytes:
        return (await self._request("GET", f"/envs/{env_id}/daemon/files", env_id=env_id, params={"path": path},
                                    timeout=600)).content

    async def delete_file(self, env_id: str, path: str) -> None:
        await self._request("DELETE", f"/envs/{env_id}/daemon/files", env_id=env_id, params={"path": path})

    async def spawn(self, env_id: str, argv: list[str], *, cwd: str | None = None) -> int:
        body = {"argv": argv, "cwd": cwd}
        return int((await self._request("POST", f"/envs/{env_id}/daemon/spawn", env_id=env_id, json=body)).json()["pid"])
