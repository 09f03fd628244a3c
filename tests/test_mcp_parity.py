"""Parity: every action of palot.api has an MCP tool, and each tool takes every field of the action's request.

The tools are listed through a real MCP client, so this checks what an assistant sees (``tools/list``), not
what the code means to offer. Nested request models (a spawn's or a move's container ``options``) are
checked field by field too.
"""

from __future__ import annotations

from typing import Any

from mcp import Client
from mcp_support import mcp_server
from pydantic import BaseModel

from palot import api
from palot.client import PalotClient
from palot_mcp import ACTION_TOOLS


def _resolve(schema: dict[str, Any], root: dict[str, Any]) -> dict[str, Any]:
    ref = schema.get("$ref")
    if ref is None:
        return schema
    node: Any = root
    for part in ref.removeprefix("#/").split("/"):
        node = node[part]
    return node


def _object(schema: dict[str, Any], root: dict[str, Any]) -> dict[str, Any] | None:
    """The object schema a property stands for (through ``$ref`` and ``anyOf``), if it is an object."""
    schema = _resolve(schema, root)
    if "properties" in schema:
        return schema
    for branch in schema.get("anyOf", ()):
        if (found := _object(branch, root)) is not None:
            return found
    return None


def missing_fields(request: type[BaseModel], tool_schema: dict[str, Any]) -> list[str]:
    """The request's fields (dotted for nested models) the tool's input schema lacks or does not require."""
    request_schema = request.model_json_schema()
    missing: list[str] = []

    def walk(want: dict[str, Any], want_root: dict[str, Any], have: dict[str, Any], prefix: str) -> None:
        have_props = have.get("properties", {})
        for name, prop in want.get("properties", {}).items():
            if name not in have_props:
                missing.append(prefix + name)
                continue
            nested = _object(prop, want_root)
            if nested is not None:
                offered = _object(have_props[name], tool_schema)
                if offered is None:
                    missing.append(f"{prefix}{name} (not an object)")
                else:
                    walk(nested, want_root, offered, f"{prefix}{name}.")
        for name in set(want.get("required", ())) - set(have.get("required", ())):
            missing.append(f"{prefix}{name} (not required)")

    walk(request_schema, request_schema, tool_schema, "")
    return missing


def test_the_checker_finds_a_missing_nested_option_and_a_missing_field() -> None:
    schema = api.SpawnRequest.model_json_schema()
    del schema["$defs"]["ContainerOptions"]["properties"]["pids"]
    del schema["properties"]["setup_script"]
    assert sorted(missing_fields(api.SpawnRequest, schema)) == ["options.pids", "setup_script"]
    assert missing_fields(api.SpawnRequest, api.SpawnRequest.model_json_schema()) == []


async def test_every_action_is_a_tool_with_every_request_field(service: PalotClient) -> None:
    async with Client(await mcp_server(service)) as client:
        tools = {t.name: t for t in (await client.list_tools()).tools}

    assert set(ACTION_TOOLS) == set(api.ACTIONS), "actions without a tool (or tools for no action)"
    assert sorted(ACTION_TOOLS.values()) == sorted(tools), "ACTION_TOOLS does not name the listed tools"
    gaps = {action: missing_fields(spec.request, tools[ACTION_TOOLS[action]].input_schema)
            for action, spec in api.ACTIONS.items()}
    assert {action: fields for action, fields in gaps.items() if fields} == {}
    spawn = tools["spawn_agent"].input_schema
    options = _object(spawn["properties"]["options"], spawn)
    assert options is not None and set(options["properties"]) == {"memory", "cpus", "pids", "network", "ports"}
    assert {"options", "resume"} <= set(tools["move_agent"].input_schema["properties"])
    assert "include_external" in tools["list_agents"].input_schema["properties"]
