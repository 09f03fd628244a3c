"""What Palot says about an agent: the public, typed views, defined once in :mod:`palot.api`."""

from ..api import (  # noqa: F401 - the views live in the API, the one vocabulary
    ENVIRONMENT_TYPES,
    PERMISSION_MODES,
    ActivityItem,
    Agent,
    AgentDiff,
    AgentMessage,
    AgentStatus,
    EnvironmentStatus,
    EnvironmentView,
    FileChange,
    PermissionView,
    PullRequest,
    ReviewComment,
)
