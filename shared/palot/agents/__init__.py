"""Agents: one OpenCode session in one environment, and every action on them."""

from .models import (
    ActivityItem,
    Agent,
    AgentDiff,
    AgentMessage,
    AgentStatus,
    EnvironmentStatus,
    EnvironmentView,
    FileChange,
    PullRequest,
)
from .service import AGENT_FILE, AGENT_REMOVED, AGENT_UPDATED, AgentService

__all__ = [
    "AGENT_FILE",
    "AGENT_REMOVED",
    "AGENT_UPDATED",
    "ActivityItem",
    "Agent",
    "AgentDiff",
    "AgentMessage",
    "AgentService",
    "AgentStatus",
    "EnvironmentStatus",
    "EnvironmentView",
    "FileChange",
    "PullRequest",
]
