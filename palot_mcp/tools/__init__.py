"""The MCP tools: one per action of ``palot.api.ACTIONS``, each a thin call through the ``PalotClient``.

This package is the table of the tool surface. Each tool is a method of ``Tools`` marked with
``@tool(action, title, hints)`` (:mod:`.registry`); its docstring is the description the assistant reads, its
return model the output schema. Its input schema is the action's request model (``palot.arguments``): every
field, with the API's name, type and default, plus the tool's own extras (a page's ``limit``). The tools are
grouped by what they do: :mod:`.reading`, :mod:`.templates`, :mod:`.steering`, :mod:`.finishing`. ``TOOLS``
lists the tools in the order ``tools/list`` shows them; ``ACTION_TOOLS`` maps each API action to its tool.
"""

from __future__ import annotations

from .finishing import FinishingTools
from .reading import ReadingTools
from .registry import AGENT, MODEL, READ_ONLY, ToolSpec, changes, specs, tool
from .steering import WAIT_HEARTBEAT, SteeringTools
from .templates import TemplateTools


class Tools(ReadingTools, TemplateTools, SteeringTools, FinishingTools):
    """The tool implementations, bound to one ``PalotApp``."""


#: The tools in the order ``tools/list`` shows them.
TOOLS: list[ToolSpec] = specs(ReadingTools, TemplateTools, SteeringTools, FinishingTools)
#: Each action of ``palot.api.ACTIONS`` → the name of the tool that offers it.
ACTION_TOOLS: dict[str, str] = {spec.action: spec.name for spec in TOOLS}

__all__ = ["ACTION_TOOLS", "AGENT", "MODEL", "READ_ONLY", "TOOLS", "WAIT_HEARTBEAT", "ToolSpec", "Tools", "changes",
           "tool"]
