"""Malformed arguments at every tool: the server never crashes, and every answer is a tool error with a message.

Hypothesis builds each call from the tool's own input schema, then breaks it
in one of four ways: a required argument missing, an argument the tool does
not take, a value of the wrong kind or out of range, or (for tools about an
agent) an agent id that does not exist. The Palot service behind the server has no
agents and no projects, so no malformed call can touch anything real.
"""

from __future__ import annotations

import asyncio
import string
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from mcp import Client
from mcp_support import data, error_text, mcp_server, module_service

from palot.client import PalotClient

pytestmark = pytest.mark.asyncio(loop_scope="module")

LETTERS = string.ascii_letters
# JSON has no NaN or infinity: the client would send them as null, which is a valid value.
finite_floats = st.floats(allow_nan=False, allow_infinity=False)
# Words no argument accepts as a boolean, a number, an enum member or an agent id prefix.
junk_words = st.text(alphabet=LETTERS, min_size=6, max_size=12).filter(
    lambda w: w.lower() not in {"always", "reject", "worktree", "default", "running", "waiting", "completed"})
not_text = st.one_of(st.integers(), finite_floats, st.booleans(), st.lists(st.integers(), max_size=3),
                     st.dictionaries(st.text(max_size=3), st.integers(), max_size=2))
containers = st.one_of(st.lists(st.integers(), min_size=1, max_size=3),
                       st.dictionaries(st.text(min_size=1, max_size=3), st.integers(), min_size=1, max_size=2))

# A well-typed value for each required argument; the project never exists, so even a call that
# got through validation could not spawn anything.
REQUIRED_BASE = {"agent": "ag_0000dead", "project": "/nonexistent/palot-fuzz", "prompt": "write hello",
                 "text": "write hello", "reply": "once", "target": "container", "name": "no-such-template",
                 "comments": [{"path": "README.md", "line": 1, "comment": "simplify"}], "operation": "archive"}


def _branches(schema: dict[str, Any]) -> list[dict[str, Any]]:
    return [b for b in schema.get("anyOf", [schema]) if b.get("type") != "null"]


def wrong_values(schema: dict[str, Any]) -> st.SearchStrategy[Any]:
    """Values that the argument described by ``schema`` must refuse."""
    branches = _branches(schema)
    nullable = len(branches) < len(schema.get("anyOf", [schema]))
    kinds = {b.get("type") for b in branches} | {"enum" for b in branches if "enum" in b or "$ref" in b}
    options: list[st.SearchStrategy[Any]] = [containers.filter(lambda v: not isinstance(v, list))
                                             if "array" in kinds else containers]
    if not nullable:
        options.append(st.none())
    if kinds & {"string", "enum"} and not kinds & {"integer", "number", "boolean"}:
        options.append(st.one_of(st.integers(), finite_floats, st.booleans()))
    if "enum" in kinds:
        options.append(junk_words)
    if "array" in kinds:
        options.append(st.lists(junk_words, min_size=1, max_size=2))
    for b in branches:
        if "pattern" in b:
            options.append(junk_words)  # no slash: not provider/model
        if b.get("minLength"):
            options.append(st.just(""))
        if b.get("type") in ("integer", "number"):
            options.append(junk_words)
            if "minimum" in b:
                options.append(st.integers(max_value=int(b["minimum"]) - 1))
            if "exclusiveMinimum" in b:
                options.append(st.integers(max_value=int(b["exclusiveMinimum"])))
            if "maximum" in b:
                options.append(st.integers(min_value=int(b["maximum"]) + 1))
            if b.get("type") == "integer":
                options.append(st.floats(min_value=0.1, max_value=0.9))
        if b.get("type") == "boolean":
            options.extend([junk_words, st.floats(min_value=2.5, max_value=99.5)])
    return st.one_of(options)


@st.composite
def malformed_call(draw: st.DrawFn, tool: Any) -> tuple[str, dict[str, Any]]:
    properties: dict[str, Any] = tool.input_schema.get("properties", {})
    required: list[str] = tool.input_schema.get("required", [])
    arguments = {name: REQUIRED_BASE[name] for name in required}
    ways = ["extra"]
    if required:
        ways.append("missing")
    if properties:
        ways.append("wrong")
    if "agent" in properties:
        ways.append("unknown agent")
    way = draw(st.sampled_from(ways))
    if way == "extra":
        key = draw(st.text(alphabet=LETTERS + "_", min_size=1, max_size=10).filter(lambda k: k not in properties))
        arguments[key] = draw(st.one_of(not_text, st.text(max_size=5)))
    elif way == "missing":
        del arguments[draw(st.sampled_from(required))]
    elif way == "wrong":
        name = draw(st.sampled_from(sorted(properties)))
        arguments[name] = draw(wrong_values(properties[name]))
    else:
        arguments["agent"] = draw(st.text(min_size=1, max_size=40))
    return tool.name, arguments


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def palot(tmp_path_factory: pytest.TempPathFactory, opencode_bin: Path) -> AsyncIterator[PalotClient]:
    async with module_service(tmp_path_factory) as p:
        yield p


async def test_malformed_arguments_to_every_tool_get_a_tool_error_and_never_crash_the_server(palot: PalotClient):
    loop = asyncio.get_running_loop()
    answered: Counter[str] = Counter()
    async with Client(await mcp_server(palot)) as client:
        tools = (await client.list_tools()).tools

        @settings(max_examples=400, deadline=None, database=None, suppress_health_check=list(HealthCheck))
        @given(st.one_of([malformed_call(tool) for tool in tools]))
        def every_answer_is_a_tool_error(call: tuple[str, dict[str, Any]]) -> None:
            name, arguments = call
            result = asyncio.run_coroutine_threadsafe(client.call_tool(name, arguments), loop).result(timeout=60)
            message = error_text(result)
            assert message.strip(), (name, arguments)
            assert "unexpectedly" not in message and "Traceback" not in message, (name, arguments, message)
            answered[name] += 1

        # Hypothesis drives the calls from a thread while this loop serves them.
        await asyncio.to_thread(every_answer_is_a_tool_error)
        alive = data(await client.call_tool("list_agents", {}))

    assert set(answered) == {tool.name for tool in tools}
    assert alive == {"agents": [], "total": 0, "next_offset": None}
    assert await palot.list() == [] and await palot.projects() == []
