"""Deterministic OpenAI-compatible chat-completions server ("scripted model").

OpenCode talks to it as an ordinary provider, so whole agent workflows can
be rehearsed offline and tested without an LLM. See README.md next to this
file for the script format.

Typical use::

    from palot.scripted import DEMO_SCRIPT, ScriptedModelServer, provider_config

    with ScriptedModelServer(DEMO_SCRIPT) as server:
        env["OPENCODE_CONFIG_CONTENT"] = json.dumps(provider_config(server.base_url))
        ...
"""

from __future__ import annotations

from importlib import resources

from .config import provider_config
from .models import Scenario, Script, ScriptError, ToolCall, Turn, TurnError, Usage
from .server import ScriptedModelServer

__all__ = [
    "DEMO_SCRIPT",
    "Scenario",
    "Script",
    "ScriptError",
    "ScriptedModelServer",
    "ToolCall",
    "Turn",
    "TurnError",
    "Usage",
    "load_demo_script",
    "provider_config",
]


def load_demo_script() -> Script:
    """Load the embedded demo script (``scripts/demo.json``)."""
    text = resources.files(__package__).joinpath("scripts", "demo.json").read_text(encoding="utf-8")
    return Script.from_json(text, source="palot.scripted:scripts/demo.json")


DEMO_SCRIPT: Script = load_demo_script()
"""The embedded demo script: "add a greeting module", "add tests", a slow answer, and a default."""
