"""What the MCP tools return: the core's public views, wrapped where a tool returns more than one thing.

Every tool returns a pydantic model, so each has an output schema and
structured content; an assistant can rely on field names, not on parsing text.
"""

from __future__ import annotations

from pydantic import BaseModel, Field

from palot.agents import ActivityItem, Agent


class Project(BaseModel):
    """A repository Palot has run agents in."""

    id: str
    name: str
    path: str
    created_at: float
    agents: int = Field(description="how many agents (not archived) work in this project")


class ProjectList(BaseModel):
    projects: list[Project]


class AgentList(BaseModel):
    """One page of agents, newest first."""

    agents: list[Agent]
    total: int = Field(description="how many agents match the filters, across all pages")
    next_offset: int | None = Field(description="pass as `offset` for the next page; null on the last page")


class ActivityPage(BaseModel):
    """An agent's activity after a cursor, oldest first."""

    agent_id: str
    items: list[ActivityItem]
    next_cursor: int = Field(description="pass as `since` next time to read only what is new")
    more: bool = Field(description="true when `limit` cut the page short: call again with `next_cursor`")


class WaitResult(BaseModel):
    """The agent when the wait ended."""

    agent: Agent
    settled: bool = Field(description="false when the wait timed out with the agent still working")
    waited_seconds: float


class ApplyResult(BaseModel):
    """The agent's changes, applied (uncommitted) to the user's checkout."""

    agent_id: str
    project_path: str
    files: list[str]


class DestroyResult(BaseModel):
    agent_id: str
    destroyed: bool
    message: str
