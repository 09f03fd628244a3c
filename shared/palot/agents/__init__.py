"""Agents: one OpenCode session in one environment, and every action on them."""

from .models import ActivityItem, Agent, AgentDiff, AgentMessage, AgentStatus, EnvironmentView, FileChange
from .service import AGENT_REMOVED, AGENT_UPDATED, AgentService

__all__ = [
    "AGENT_REMOVED",
    "AGENT_UPDATED",
    "ActivityItem",
    "Agent",
    "AgentDiff",
    "AgentMessage",
    "AgentService",
    "AgentStatus",
    "EnvironmentView",
    "FileChange",
]
