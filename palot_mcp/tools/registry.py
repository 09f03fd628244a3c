"""How a tool is declared: the ``@tool(action, title, hints)`` mark, the hints, the shared argument wording, and
the base every group of tools builds on (bound to one ``PalotApp``)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

from mcp_types import ToolAnnotations

from palot.client import PalotClient

from ..app import PalotApp
from ..arguments import Override

READ_ONLY = ToolAnnotations(read_only_hint=True, destructive_hint=False, idempotent_hint=True, open_world_hint=False)


def changes(*, destructive: bool = False, idempotent: bool = False, open_world: bool = False) -> ToolAnnotations:
    """Hints of a tool that changes something."""
    return ToolAnnotations(read_only_hint=False, destructive_hint=destructive, idempotent_hint=idempotent,
                           open_world_hint=open_world)


@dataclass(frozen=True)
class ToolSpec:
    name: str
    action: str
    title: str
    hints: ToolAnnotations
    overrides: Mapping[str, Override] = field(default_factory=dict)

_F = TypeVar("_F", bound=Callable[..., Any])
#: The attribute of a method marked by ``@tool`` that holds its spec.
_SPEC = "__palot_tool__"

# How tools describe an agent argument (the API's words, with an example an assistant can pattern-match).
AGENT = Override(description="The agent's id (e.g. ag_1a2b3c4d), a unique prefix of it, or its branch (palot/…)")
MODEL = Override(description="provider/model as in the OpenCode config (list_models shows them), e.g. "
                             "anthropic/claude-sonnet-4-5; default: OpenCode's")
def tool(action: str, title: str, hints: ToolAnnotations, /, **overrides: Override) -> Callable[[_F], _F]:
    """Mark a ``Tools`` method as the MCP tool of ``action``; ``overrides`` change how fields are shown."""

    def mark(method: _F) -> _F:
        setattr(method, _SPEC, ToolSpec(method.__name__, action, title, hints.model_copy(update={"title": title}),
                                        {"agent": AGENT, **overrides}))
        return method

    return mark


def specs(*groups: type) -> list[ToolSpec]:
    """The specs of the tools of ``groups``, in the order the groups and their methods are written."""
    return [spec for group in groups for member in vars(group).values()
            if (spec := getattr(member, _SPEC, None)) is not None]


class ToolsBase:
    """What every group of tools shares: the ``PalotApp`` they are bound to, and its client."""

    def __init__(self, app: PalotApp) -> None:
        self._app = app

    @property
    def _palot(self) -> PalotClient:
        return self._app.client
