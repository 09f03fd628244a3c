"""The MCP resources: agents, each agent, its diff and its activity, as JSON.

| URI | content |
|---|---|
| ``palot://agents`` | every agent not archived, today's spend and the inbox count (``AgentOverview``) |
| ``palot://agents/{agent_id}`` | one ``Agent`` (each agent is also listed by ``resources/list``) |
| ``palot://agents/{agent_id}/diff`` | its ``AgentDiff`` against its base commit |
| ``palot://agents/{agent_id}/activity`` | its whole activity (``ActivityPage``) |
| ``palot://notifications`` | the service's latest "needs you" and "done" notifications, newest first |

All are subscribable; ``notifications`` says when they change.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from mcp.server.mcpserver.exceptions import ResourceError, ResourceNotFoundError
from mcp_types import Resource as MCPResource
from pydantic import BaseModel

from palot.client import PalotClient
from palot.errors import InvalidInput, PalotError

from .app import PalotApp
from .models import ActivityPage, AgentOverview, Notifications
from .notifications import AGENTS_URI, NOTIFICATIONS_URI, agent_uri

if TYPE_CHECKING:
    from mcp.server.mcpserver import MCPServer

JSON = "application/json"


@dataclass(frozen=True)
class ResourceSpec:
    uri: str
    name: str
    title: str
    description: str
    method: str


RESOURCES: list[ResourceSpec] = [
    ResourceSpec(AGENTS_URI, "agents", "Agents",
                 "Every agent that is not archived, newest first, with status, environment and branch; today's "
                 "spend across the fleet and how many permission requests wait for a person.", "agents"),
    ResourceSpec(AGENTS_URI + "/{agent_id}", "agent", "Agent",
                 "One agent: status, environment, branch, pending permissions, tokens and cost.", "agent"),
    ResourceSpec(AGENTS_URI + "/{agent_id}/diff", "agent-diff", "Agent diff",
                 "The agent's changes against its base commit: files and the unified patch.", "diff"),
    ResourceSpec(AGENTS_URI + "/{agent_id}/activity", "agent-activity", "Agent activity",
                 "Everything the agent did so far, oldest first (the get_activity tool reads it page by page).",
                 "activity"),
    ResourceSpec(NOTIFICATIONS_URI, "notifications", "Notifications",
                 "The latest notifications of the fleet, newest first: 'needs_you' (a permission asked, a budget "
                 "reached, a failure, a failed move, a lost environment) or 'done' (completed, moved, archived), "
                 "each naming the agents and the next action. Subscribe to hear of new ones.", "notifications"),
]


def _json(model: BaseModel) -> str:
    return model.model_dump_json(indent=2)


class Resources:
    """The resource readers, bound to one ``PalotApp``."""

    def __init__(self, app: PalotApp) -> None:
        self._app = app

    @property
    def _palot(self) -> PalotClient:
        return self._app.client

    def register(self, server: MCPServer) -> None:
        for spec in RESOURCES:
            server.resource(spec.uri, name=spec.name, title=spec.title, description=spec.description,
                            mime_type=JSON)(getattr(self, spec.method))

    async def listing(self) -> list[MCPResource]:
        """One concrete resource per agent, for ``resources/list`` (templates cover diffs and activity)."""
        return [
            MCPResource(uri=agent_uri(a.id), name=a.id, title=a.title, mime_type=JSON,
                        description=f"{a.status.value} {a.environment.type} agent in {a.project_name}"
                                    + (f" on {a.branch}" if a.branch else ""))
            for a in await self._palot.list()
        ]

    async def agents(self) -> str:
        agents, status = await asyncio.gather(self._palot.list(), self._palot.status())
        return _json(AgentOverview(agents=agents, total=len(agents), next_offset=None, spend=status.spend,
                                   inbox=status.inbox))

    async def notifications(self) -> str:
        notes = list(self._app.notes)
        return _json(Notifications(notifications=notes, total=len(notes)))

    async def agent(self, agent_id: str) -> str:
        return await _read(lambda: self._palot.get(agent_id))

    async def diff(self, agent_id: str) -> str:
        return await _read(lambda: self._palot.diff(agent_id))

    async def activity(self, agent_id: str) -> str:
        async def page() -> ActivityPage:
            resolved = (await self._palot.get(agent_id)).id
            items = await self._palot.activity(resolved)
            return ActivityPage(agent_id=resolved, items=items, next_cursor=items[-1].index + 1 if items else 0,
                                more=False)

        return await _read(page)


async def _read(fetch: Callable[[], Awaitable[BaseModel]]) -> str:
    """Read through the service; its errors become resource errors that keep their fix."""
    try:
        return _json(await fetch())
    except InvalidInput as e:  # unknown or ambiguous agent
        raise ResourceNotFoundError(str(e)) from e
    except PalotError as e:
        raise ResourceError(str(e)) from e
