"""What the MCP tools return: the API's views, wrapped where a tool returns more than one thing.

Every tool returns a pydantic model, so each has an output schema and
structured content; an assistant can rely on field names, not on parsing text.
"""

from __future__ import annotations

from pydantic import BaseModel, Field

from palot.api import (ActivityItem, Agent, AgentMessage, AuditEntry, InboxItem, MoveRecord, Notification, Spend,
                       Template)


class Project(BaseModel):
    """A repository Palot has run agents in."""

    id: str
    name: str
    path: str
    created_at: float | None = Field(None, description="when the project was added; null when not known")
    agents: int = Field(description="how many agents (not archived) work in this project")


class ProjectList(BaseModel):
    projects: list[Project]


class ModelList(BaseModel):
    """The provider/model names agents can use (the `model` argument of spawn_agent and send_prompt)."""

    models: list[str]


class AgentList(BaseModel):
    """One page of agents, newest first."""

    agents: list[Agent]
    total: int = Field(description="how many agents match the filters, across all pages")
    next_offset: int | None = Field(description="pass as `offset` for the next page; null on the last page")


class AgentOverview(AgentList):
    """Every agent (not archived), today's spend across the fleet and how many requests wait on a person."""

    spend: Spend | None = Field(None, description="today's cost and tokens across all agents, and the day's budget")
    inbox: int = Field(0, description="permission requests waiting for a person (list_inbox shows them)")


class Notifications(BaseModel):
    """The service's latest notifications this MCP server heard, newest first."""

    notifications: list[Notification]
    total: int = Field(description="how many are listed (the latest 50 at most)")


class TemplateList(BaseModel):
    """Prompt templates, by name: each with its project (null: every project) and the variables it needs."""

    templates: list[Template]
    total: int = Field(description="how many templates are listed")


class Inbox(BaseModel):
    """Every pending permission request of every agent, oldest first."""

    items: list[InboxItem]
    total: int = Field(description="how many requests wait for an answer")


class InboxReplies(BaseModel):
    """The requests that were answered."""

    reply: str
    answered: list[InboxItem]


class ActivityPage(BaseModel):
    """An agent's activity after a cursor, oldest first."""

    agent_id: str
    items: list[ActivityItem]
    next_cursor: int = Field(description="pass as `since` next time to read only what is new")
    more: bool = Field(description="true when `limit` cut the page short: call again with `next_cursor`")


class MessageList(BaseModel):
    """An agent's conversation, oldest first."""

    agent_id: str
    messages: list[AgentMessage]


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


class MoveList(BaseModel):
    """An agent's moves between environments, oldest first."""

    agent_id: str
    moves: list[MoveRecord]


class AuditLog(BaseModel):
    """Audit entries, oldest first."""

    entries: list[AuditEntry]
