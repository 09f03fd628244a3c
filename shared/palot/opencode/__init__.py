"""Typed async client for the OpenCode server (1.18 API)."""

from .client import OpenCodeClient
from .events import STREAM_CONNECTED, STREAM_DISCONNECTED, EventStream
from .models import (
    GlobalEvent,
    Health,
    Message,
    MessageInfo,
    Part,
    PermissionRequest,
    PermissionRule,
    Session,
    SessionStatus,
    Tokens,
)

__all__ = [
    "EventStream",
    "GlobalEvent",
    "Health",
    "Message",
    "MessageInfo",
    "OpenCodeClient",
    "Part",
    "PermissionRequest",
    "PermissionRule",
    "STREAM_CONNECTED",
    "STREAM_DISCONNECTED",
    "Session",
    "SessionStatus",
    "Tokens",
]
