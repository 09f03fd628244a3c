"""Tests for palot.scripted: wire format, script rules, CLI, and a real OpenCode run."""

from __future__ import annotations

import json
import logging
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from palot.scripted import (
    DEMO_SCRIPT,
    Scenario,
    Script,
    ScriptedModelServer,
    ScriptError,
    ToolCall,
    Turn,
    provider_config,
)
from pydantic import ValidationError

SHARED = Path(__file__).resolve().parents[1] / "shared"
TOOLS = [
    {"type": "function", "function": {"name": n, "parameters": {"type": "object", "properties": {}}}}
    for n in ("bash", "edit", "read", "write")
]

TEST_SCRIPT: dict[str, Any] = {
    "title": "auto",
    "scenarios": [
        {
            "name": "hello",
            "match": "hello file",
            "turns": [
                {"tool_calls": [{"name": "write", "arguments": {"filePath": "hello.txt", "content": "hi\n"}}]},
                {"text": "Created hello.txt"},
            ],
        },
        {
            "name": "absolute",
            "match": "absolute file",
            "turns": [
                {
                    "tool_calls": [
                        {"name": "write", "arguments": {"filePath": "{workdir}/abs.txt", "content": "wd={workdir}\n"}}
                    ]
                },
                {"text": "Wrote {workdir}/abs.txt"},
            ],
        },
        {
            "name": "template",
            "match": "template",
            "turns": [
                {
                    "text": "wd={workdir} user={last_user} n={message_count} t={turn} lit={{turn}} code={x}",
                    "tool_calls": [
                        {"name": "todowrite", "arguments": {"todos": [{"content": "do {last_user}", "n": 1}]}}
                    ],
                },
                {"text": "second t={turn}"},
            ],
        },
        {"name": "ratelimit", "match": "rate limit me", "turns": [{"error": {"status": 429, "message": "slow down"}}]},
        {
            "name": "flaky",
            "match": "flaky",
            "turns": [{"error": {"status": 503, "message": "overloaded", "times": 1}, "text": "Recovered"}],
        },
        {
            "name": "slow",
            "regex": r"\bslow\b",
            "turns": [{"chunk_delay": 0.2, "text": " ".join(f"word{i}" for i in range(60))}],
        },
        {
            "name": "two-tools",
            "regex": r"^two tools$",
            "turns": [
                {
                    "reasoning": "thinking it over",
                    "usage": {"prompt_tokens": 7, "completion_tokens": 3},
                    "tool_calls": [
                        {"name": "read", "arguments": {"filePath": "a.txt"}},
                        {"name": "bash", "arguments": {"command": "echo hi && echo there"}},
                    ],
                },
                {"text": "All done here."},
            ],
        },
    ],
    "default": [{"text": "Default answer."}],
}


# ------------------------------------------------------------------ helpers


def system(workdir: str | None = "/tmp/proj") -> dict[str, Any]:
    env = f"  Working directory: {workdir}\n  Is directory a git repo: yes\n" if workdir else ""
    return {"role": "system", "content": f"You are a coding agent.\n<env>\n{env}</env>\n"}


def user(text: str) -> dict[str, Any]:
    return {"role": "user", "content": text}


def assistant_tool(call_id: str = "call_1") -> list[dict[str, Any]]:
    return [
        {
            "role": "assistant",
            "content": "",
            "tool_calls": [{"id": call_id, "type": "function", "function": {"name": "write", "arguments": "{}"}}],
        },
        {"role": "tool", "tool_call_id": call_id, "content": "Wrote file successfully."},
    ]


def body(messages: list[dict[str, Any]], *, stream: bool = True, tools: bool = True) -> dict[str, Any]:
    b: dict[str, Any] = {"model": "scripted", "messages": messages, "stream": stream}
    if stream:
        b["stream_options"] = {"include_usage": True}
    if tools:
        b["tools"] = TOOLS
        b["tool_choice"] = "auto"
    return b


def sse_events(resp: httpx.Response) -> list[Any]:
    """Parse an SSE body into JSON chunks; ``[DONE]`` becomes the string 'DONE'."""
    assert resp.headers["content-type"].startswith("text/event-stream")
    out: list[Any] = []
    for block in resp.text.split("\n\n"):
        if not block.strip():
            continue
        assert block.startswith("data: "), block
        data = block[len("data: ") :]
        out.append("DONE" if data == "[DONE]" else json.loads(data))
    return out


def stream(client: httpx.Client, messages: list[dict[str, Any]], **kw: Any) -> list[Any]:
    resp = client.post("/v1/chat/completions", json=body(messages, **kw))
    assert resp.status_code == 200, resp.text
    return sse_events(resp)


def joined_text(events: list[Any], key: str = "content") -> str:
    return "".join(e["choices"][0]["delta"].get(key) or "" for e in events if isinstance(e, dict) and e["choices"])


def tool_calls(events: list[Any]) -> list[dict[str, Any]]:
    calls: dict[int, dict[str, Any]] = {}
    for e in events:
        if not isinstance(e, dict) or not e["choices"]:
            continue
        for tc in e["choices"][0]["delta"].get("tool_calls") or []:
            slot = calls.setdefault(tc["index"], {"id": None, "name": None, "arguments": "", "fragments": 0})
            if "id" in tc:
                slot["id"] = tc["id"]
                assert tc["type"] == "function"
            fn = tc.get("function", {})
            if fn.get("name"):
                slot["name"] = fn["name"]
            if fn.get("arguments"):
                slot["arguments"] += fn["arguments"]
                slot["fragments"] += 1
    return [calls[i] for i in sorted(calls)]


def finish_reason(events: list[Any]) -> str | None:
    reasons: list[str | None] = [
        e["choices"][0]["finish_reason"] for e in events if isinstance(e, dict) and e["choices"]
    ]
    assert all(r is None for r in reasons[:-1])
    return reasons[-1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def server() -> Iterator[ScriptedModelServer]:
    with ScriptedModelServer(Script.model_validate(TEST_SCRIPT)) as srv:
        yield srv


@pytest.fixture
def client(server: ScriptedModelServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=10) as c:
        yield c


# ------------------------------------------------------------------ wire format


def test_text_stream_wire_format(client: httpx.Client) -> None:
    events = stream(client, [system(), user("say something")])
    assert events[-1] == "DONE"
    chunks = events[:-1]
    assert all(c["object"] == "chat.completion.chunk" for c in chunks)
    assert len({c["id"] for c in chunks}) == 1
    assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
    assert joined_text(events) == "Default answer."
    assert finish_reason(events) == "stop"
    usage_chunk = chunks[-1]
    assert usage_chunk["choices"] == []
    u = usage_chunk["usage"]
    assert u["prompt_tokens"] > 0 and u["completion_tokens"] > 0
    assert u["total_tokens"] == u["prompt_tokens"] + u["completion_tokens"]


def test_tool_call_stream(client: httpx.Client) -> None:
    events = stream(client, [system(), user("Please create the HELLO FILE now")])
    calls = tool_calls(events)
    assert len(calls) == 1
    call = calls[0]
    assert call["name"] == "write"
    assert re.fullmatch(r"call_[0-9a-f]{24}", call["id"])
    assert call["fragments"] > 1  # arguments arrive split across chunks
    assert json.loads(call["arguments"]) == {"filePath": "hello.txt", "content": "hi\n"}
    assert finish_reason(events) == "tool_calls"
    assert events[-1] == "DONE" and events[-2]["usage"]["total_tokens"] > 0


def test_two_tool_calls_reasoning_and_fixed_usage(client: httpx.Client) -> None:
    events = stream(client, [system(), user("two tools")])
    calls = tool_calls(events)
    assert [c["name"] for c in calls] == ["read", "bash"]
    assert calls[0]["id"] != calls[1]["id"]
    assert json.loads(calls[1]["arguments"]) == {"command": "echo hi && echo there"}
    assert joined_text(events, "reasoning_content") == "thinking it over"
    assert events[-2]["usage"] == {"prompt_tokens": 7, "completion_tokens": 3, "total_tokens": 10}
    # call ids are unique across requests too
    again = tool_calls(stream(client, [system(), user("two tools")]))
    assert {c["id"] for c in again}.isdisjoint({c["id"] for c in calls})


def test_non_streaming_answer(client: httpx.Client) -> None:
    resp = client.post("/v1/chat/completions", json=body([system(), user("hello file")], stream=False))
    assert resp.status_code == 200
    data = resp.json()
    assert data["object"] == "chat.completion"
    choice = data["choices"][0]
    assert choice["finish_reason"] == "tool_calls"
    (call,) = choice["message"]["tool_calls"]
    assert call["function"]["name"] == "write"
    assert json.loads(call["function"]["arguments"])["filePath"] == "hello.txt"
    assert data["usage"]["total_tokens"] > 0
    resp = client.post(
        "/v1/chat/completions", json=body([system(), user("hello file"), *assistant_tool()], stream=False)
    )
    msg = resp.json()["choices"][0]["message"]
    assert msg == {"role": "assistant", "content": "Created hello.txt"}


def test_error_turn(client: httpx.Client) -> None:
    resp = client.post("/v1/chat/completions", json=body([system(), user("please RATE LIMIT ME")]))
    assert resp.status_code == 429
    assert resp.json() == {"error": {"message": "slow down", "type": "rate_limit_error", "param": None, "code": None}}


def test_error_turn_with_times_recovers_on_retry(client: httpx.Client, server: ScriptedModelServer) -> None:
    msgs = [system(), user("flaky one")]
    first = client.post("/v1/chat/completions", json=body(msgs))
    assert first.status_code == 503
    assert first.json()["error"]["type"] == "server_error"
    second = client.post("/v1/chat/completions", json=body(msgs))
    assert second.status_code == 200
    assert joined_text(sse_events(second)) == "Recovered"
    # a different conversation gets its own counter
    other = client.post("/v1/chat/completions", json=body([system(), user("flaky two")]))
    assert other.status_code == 503
    assert [r["reply"]["error"] for r in server.requests] == [503, None, 503]


def test_turn_selection_by_assistant_count(client: httpx.Client) -> None:
    base = [system(), user("earlier"), {"role": "assistant", "content": "old"}, user("hello file")]
    # step 0: the prompt itself (assistant messages BEFORE the last user message don't count)
    assert tool_calls(stream(client, base))[0]["name"] == "write"
    # step 1: after the first tool result
    assert joined_text(stream(client, base + assistant_tool())) == "Created hello.txt"
    # past the end: the scenario's last text again, finish stop
    events = stream(client, base + assistant_tool("a") + assistant_tool("b") + assistant_tool("c"))
    assert joined_text(events) == "Created hello.txt" and finish_reason(events) == "stop"
    # a new user message starts over, and selects by ITS text
    events = stream(client, base + assistant_tool() + [{"role": "assistant", "content": "x"}, user("thanks")])
    assert joined_text(events) == "Default answer."


def test_first_matching_scenario_wins_and_regex() -> None:
    script = Script.model_validate(
        {
            "scenarios": [
                {"name": "a", "match": "Fix", "turns": [{"text": "A"}]},
                {"name": "b", "regex": r"fix\s+typo", "turns": [{"text": "B"}]},
                {"name": "c", "regex": r"^typo$", "turns": [{"text": "C"}]},
            ]
        }
    )
    assert script.select("please fix typo")[0] == "a"
    assert script.select("TYPO")[0] == "c"
    assert script.select("nothing") == (None, script.default)


def test_title_request(client: httpx.Client, server: ScriptedModelServer) -> None:
    title_sys = {"role": "system", "content": "You are a title generator. You output ONLY a thread title."}
    msgs = [
        title_sys,
        user("Generate a title for this conversation:\n"),
        user("Please create the hello file in the repo right now"),
    ]
    events = stream(client, msgs, tools=False)
    assert joined_text(events) == "Please create the hello file in"
    assert finish_reason(events) == "stop"
    assert not tool_calls(events)
    (rec,) = server.requests
    assert rec["reply"]["kind"] == "title" and rec["reply"]["scenario"] is None
    # the scenario is not consumed: the real request still starts at step 0
    assert tool_calls(stream(client, [system(), user("hello file")]))[0]["name"] == "write"


def test_fixed_title_and_compaction_summary() -> None:
    script = Script.model_validate({"title": "Rehearsal in {workdir}"})
    with ScriptedModelServer(script) as srv, httpx.Client(base_url=srv.url) as c:
        events = stream(c, [system("/w"), user("anything")], tools=False)
        assert joined_text(events) == "Rehearsal in /w"
        compaction = [
            {"role": "system", "content": "You are a context summarization agent."},
            user("Here is the conversation so far:\n\n<conversation>\n[User]: add a greeting\n</conversation>\n"),
        ]
        text = joined_text(stream(c, compaction, tools=False))
        assert text.startswith("## Objective\n- add a greeting\n")
        assert srv.requests[-1]["reply"]["kind"] == "summary"


def test_template_substitution(client: httpx.Client) -> None:
    msgs = [system("/srv/my project"), user("use the template")]
    events = stream(client, msgs)
    assert sum(1 for e in events[1:-2] if e["choices"][0]["delta"].get("content")) >= 3  # several chunks
    assert joined_text(events) == "wd=/srv/my project user=use the template n=2 t=0 lit={turn} code={x}"
    (call,) = tool_calls(events)
    assert json.loads(call["arguments"]) == {"todos": [{"content": "do use the template", "n": 1}]}
    events = stream(client, msgs + assistant_tool())
    assert joined_text(events) == "second t=1"
    # no working-directory line -> empty string
    events = stream(client, [system(None), user("template")])
    assert joined_text(events).startswith("wd= user=template n=2 t=0")


def test_user_content_as_parts_list(client: httpx.Client) -> None:
    msgs = [system(), {"role": "user", "content": [{"type": "text", "text": "make the hello file"}]}]
    assert tool_calls(stream(client, msgs))[0]["name"] == "write"


def test_auth() -> None:
    with ScriptedModelServer(Script(), api_key="s3cret") as srv, httpx.Client(base_url=srv.url) as c:
        payload = body([system(), user("hi")])
        for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "Basic s3cret"}):
            resp = c.post("/v1/chat/completions", json=payload, headers=headers)
            assert resp.status_code == 401
            assert resp.json()["error"]["type"] == "authentication_error"
            assert c.get("/v1/models", headers=headers).status_code == 401
            assert c.get("/_scripted/requests", headers=headers).status_code == 401
        assert c.get("/_scripted/health").json()["ok"] is True
        good = {"Authorization": "Bearer s3cret"}
        resp = c.post("/v1/chat/completions", json=payload, headers=good)
        assert resp.status_code == 200 and joined_text(sse_events(resp)) == "Done."
        assert len(c.get("/_scripted/requests", headers=good).json()) == 1


def test_a_script_can_demand_a_key_it_only_knows_by_digest() -> None:
    import hashlib

    script = Script(api_key_sha256=hashlib.sha256(b"user-key").hexdigest())
    with ScriptedModelServer(script) as srv, httpx.Client(base_url=srv.url) as c:
        payload = body([system(), user("hi")])
        for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "Basic user-key"}):
            assert c.post("/v1/chat/completions", json=payload, headers=headers).status_code == 401
        resp = c.post("/v1/chat/completions", json=payload, headers={"Authorization": "Bearer user-key"})
        assert resp.status_code == 200 and joined_text(sse_events(resp)) == "Done."
    with pytest.raises(ScriptError):
        Script.from_json('{"api_key_sha256": "not-a-digest"}')


def test_models_health_and_request_log() -> None:
    with ScriptedModelServer(Script(), max_recorded=3) as srv, httpx.Client(base_url=srv.url) as c:
        assert srv.base_url == f"http://127.0.0.1:{srv.port}/v1"
        models = c.get("/v1/models").json()
        assert models["object"] == "list" and models["data"][0]["id"] == "scripted"
        before = time.time()
        for i in range(5):
            stream(c, [system(), user(f"msg {i}")])
        log = c.get("/_scripted/requests").json()
        assert [r["last_user"] for r in log] == ["msg 2", "msg 3", "msg 4"]
        assert log == srv.requests
        assert all(r["time"] >= before and r["messages"][-1]["role"] == "user" for r in log)
        assert log[0]["tools"] == ["bash", "edit", "read", "write"] and log[0]["workdir"] == "/tmp/proj"
        assert c.get("/_scripted/health").json() == {"ok": True, "scenarios": 0, "requests": 5}
        assert c.delete("/_scripted/requests").status_code == 200
        assert srv.requests == []
        assert c.get("/nope").status_code == 404
        bad = c.post("/v1/chat/completions", content=b"{not json")
        assert bad.status_code == 400 and "error" in bad.json()
        assert c.post("/v1/chat/completions", json={"messages": "x"}).status_code == 400


def test_client_disconnect_mid_stream_is_quiet(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="palot.scripted")
    with ScriptedModelServer(Script.model_validate(TEST_SCRIPT)) as srv:
        with httpx.Client(base_url=srv.url) as c:
            with c.stream("POST", "/v1/chat/completions", json=body([system(), user("be slow")])) as resp:
                first = next(resp.iter_lines())
                assert first.startswith("data: ")
            # the handler notices on its next write and ends; the server keeps serving
            time.sleep(0.5)
            assert c.get("/_scripted/health").json()["ok"] is True
            assert joined_text(stream(c, [system(), user("other")])) == "Default answer."
        started = time.monotonic()
    assert time.monotonic() - started < 2
    assert not [r for r in caplog.records if r.exc_info]


def test_stop_interrupts_slow_stream() -> None:
    srv = ScriptedModelServer(Script.model_validate(TEST_SCRIPT)).start()
    got: list[str] = []

    def reader() -> None:
        try:
            with httpx.stream("POST", srv.url + "/v1/chat/completions", json=body([user("slow")])) as r:
                for line in r.iter_lines():
                    got.append(line)
        except httpx.HTTPError:
            pass

    t = threading.Thread(target=reader)
    t.start()
    time.sleep(0.5)
    started = time.monotonic()
    srv.stop()
    t.join(5)
    assert not t.is_alive()
    assert time.monotonic() - started < 2
    assert got and "data: [DONE]" not in got
    assert not srv.running
    srv.stop()  # idempotent


@pytest.mark.asyncio
async def test_async_context_manager() -> None:
    async with (
        ScriptedModelServer(Script.model_validate(TEST_SCRIPT)) as srv,
        httpx.AsyncClient(base_url=srv.url) as c,
    ):
        resp = await c.post("/v1/chat/completions", json=body([system(), user("hello file")], stream=False))
        assert resp.json()["choices"][0]["finish_reason"] == "tool_calls"
    assert not srv.running
    with pytest.raises(RuntimeError):
        _ = srv.base_url


# ------------------------------------------------------------------ script validation


def test_bad_script_validation_errors(tmp_path: Path) -> None:
    bad = {"scenarios": [{"name": "x", "match": "y", "turns": [{"text": "ok"}, {"text": "t", "delay": -1}]}]}
    with pytest.raises(ValidationError) as exc:
        Script.model_validate(bad)
    assert exc.value.errors()[0]["loc"] == ("scenarios", 0, "turns", 1, "delay")
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(bad))
    with pytest.raises(ScriptError, match=r"bad\.json: scenarios\.0\.turns\.1\.delay: Input should be greater"):
        Script.load(path)
    cases = {
        "neither": ({"scenarios": [{"name": "x", "turns": [{"text": "a"}]}]}, "exactly one of 'match' or 'regex'"),
        "regex": ({"scenarios": [{"name": "x", "regex": "(", "turns": [{"text": "a"}]}]}, "scenarios.0.regex"),
        "empty turn": ({"default": [{}]}, "default.0: Value error, a turn needs at least one"),
        "no turns": ({"scenarios": [{"name": "x", "match": "y", "turns": []}]}, "scenarios.0.turns"),
        "typo key": ({"default": [{"txt": "a"}]}, "default.0.txt: Extra inputs are not permitted"),
        "tool name": ({"default": [{"tool_calls": [{"name": ""}]}]}, "default.0.tool_calls.0.name"),
        "status": ({"default": [{"error": {"status": 200}}]}, "default.0.error.status"),
        "dupe": (
            {"scenarios": [{"name": "x", "match": "a", "turns": [{"text": "a"}]}] * 2},
            "duplicate scenario name 'x'",
        ),
    }
    for name, (data, needle) in cases.items():
        path.write_text(json.dumps(data))
        with pytest.raises(ScriptError) as err:
            Script.load(path)
        assert needle in str(err.value), (name, str(err.value))
        assert "\n" not in str(err.value)
    path.write_text("{oops")
    with pytest.raises(ScriptError, match="invalid JSON"):
        Script.load(path)
    with pytest.raises(ScriptError, match="cannot read script"):
        Script.load(tmp_path / "missing.json")


def test_models_and_demo_script() -> None:
    script = Script(
        scenarios=[
            Scenario(name="s", match="x", turns=[Turn(tool_calls=[ToolCall(name="bash", arguments={"command": "ls"})])])
        ]
    )
    assert Script.model_validate(script.model_dump()) == script
    assert len(DEMO_SCRIPT.scenarios) >= 2
    assert DEMO_SCRIPT.select("Add a greeting module")[0] == "greeting-module"
    assert DEMO_SCRIPT.select("add tests for greet")[0] == "add-tests"
    names, turns = DEMO_SCRIPT.select("what's the weather")
    assert names is None and turns[0].tool_calls[0].arguments["filePath"] == "NOTES.md"
    used = {c.name for s in DEMO_SCRIPT.scenarios for t in s.turns for c in t.tool_calls}
    assert {"todowrite", "write", "edit", "bash", "read", "grep"} <= used


def test_provider_config() -> None:
    cfg = provider_config("http://127.0.0.1:9/v1")
    assert cfg["model"] == cfg["small_model"] == "palot-scripted/scripted"
    assert cfg["enabled_providers"] == ["palot-scripted"]
    assert cfg["autoupdate"] is False and cfg["share"] == "disabled"
    prov = cfg["provider"]["palot-scripted"]
    assert prov["npm"] == "@ai-sdk/openai-compatible"
    assert prov["options"] == {"baseURL": "http://127.0.0.1:9/v1", "apiKey": "scripted"}
    assert prov["models"]["scripted"]["tool_call"] is True and "cost" not in prov["models"]["scripted"]
    cfg = provider_config("http://x/v1", provider="p", model="m", api_key="k", cost=(3, 15))
    assert cfg["model"] == "p/m" and cfg["provider"]["p"]["models"]["m"]["cost"] == {"input": 3.0, "output": 15.0}
    assert provider_config("u", cost={"input": 1, "cache_read": 0.1})["provider"]["palot-scripted"]["models"][
        "scripted"
    ]["cost"] == {"input": 1.0, "cache_read": 0.1}
    with pytest.raises(ValueError):
        provider_config("u", cost={"inptu": 1})
    json.dumps(cfg)


# ------------------------------------------------------------------ CLI


def _cli(*args: str) -> subprocess.Popen[str]:
    env = dict(os.environ, PYTHONPATH=str(SHARED) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    return subprocess.Popen(
        [sys.executable, "-m", "palot.scripted", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_cli_serves_and_exits_cleanly(sig: signal.Signals) -> None:
    proc = _cli("--script", "demo", "--port", "0", "--host", "127.0.0.1", "--api-key", "k")
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        m = re.fullmatch(r"palot-scripted listening on (http://127\.0\.0\.1:(\d+)/v1)\n", line)
        assert m, line
        url = m.group(1)
        resp = httpx.post(
            url + "/chat/completions",
            json=body([system(), user("Add a greeting module")], stream=False),
            headers={"Authorization": "Bearer k"},
        )
        assert resp.json()["choices"][0]["message"]["tool_calls"][0]["function"]["name"] == "todowrite"
        proc.send_signal(sig)
        assert proc.wait(5) == 0
        assert proc.stderr is not None and proc.stderr.read() == ""
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_cli_bad_script_exits_2(tmp_path: Path) -> None:
    bad = tmp_path / "s.json"
    bad.write_text(json.dumps({"default": [{"text": "x", "chunk_delay": "soon"}]}))
    proc = _cli("--script", str(bad))
    out, err = proc.communicate(timeout=10)
    assert proc.returncode == 2 and out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "default.0.chunk_delay" in lines[0] and lines[0].startswith("palot-scripted: error")


# ------------------------------------------------------------------ end to end with the real OpenCode


class OpenCode:
    """A real ``opencode serve`` process wired to a scripted model server."""

    def __init__(self, root: Path, scripted: ScriptedModelServer, binary: Path) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENCODE_", "XDG_"))}
        for name in ("home", "data", "config", "state", "cache"):
            (root / name).mkdir(parents=True, exist_ok=True)
        cfg = provider_config(scripted.base_url, cost={"input": 3, "output": 15})
        env.update(
            HOME=str(root / "home"),
            XDG_DATA_HOME=str(root / "data"),
            XDG_CONFIG_HOME=str(root / "config"),
            XDG_STATE_HOME=str(root / "state"),
            XDG_CACHE_HOME=str(root / "cache"),
            OPENCODE_DISABLE_AUTOUPDATE="1",
            OPENCODE_DISABLE_MODELS_FETCH="1",
            OPENCODE_DISABLE_SHARE="1",
            OPENCODE_DISABLE_LSP_DOWNLOAD="1",
            OPENCODE_DISABLE_DEFAULT_PLUGINS="1",
            OPENCODE_DISABLE_CLAUDE_CODE="1",
            npm_config_registry="http://127.0.0.1:9/",
            OPENCODE_SERVER_PASSWORD="pw",
            OPENCODE_CONFIG_CONTENT=json.dumps(cfg),
            PATH=os.path.dirname(sys.executable) + os.pathsep + env.get("PATH", ""),
        )
        self.proc = subprocess.Popen(
            [str(binary), "serve", "--hostname", "127.0.0.1", "--port", str(free_port())],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=env,
            cwd=root,
        )
        self.url = self._wait_listening(20)
        self.http = httpx.Client(base_url=self.url, auth=("opencode", "pw"), timeout=60)

    def _wait_listening(self, timeout: float) -> str:
        found: list[str] = []
        lines: list[str] = []

        def read() -> None:
            assert self.proc.stdout is not None
            for line in self.proc.stdout:
                lines.append(line)
                m = re.search(r"listening on (http://\S+)", line)
                if m:
                    found.append(m.group(1))
                    return

        t = threading.Thread(target=read, daemon=True)
        t.start()
        t.join(timeout)
        if not found:
            self.close()
            pytest.fail("opencode serve did not start: " + "".join(lines)[-2000:])
        # keep draining output so the process never blocks on a full pipe
        threading.Thread(target=lambda: [None for _ in self.proc.stdout or []], daemon=True).start()
        return found[0]

    def session(self, directory: Path) -> str:
        resp = self.http.post("/session", params={"directory": str(directory)}, json={})
        resp.raise_for_status()
        return str(resp.json()["id"])

    def prompt(self, directory: Path, sid: str, text: str) -> dict[str, Any]:
        resp = self.http.post(
            f"/session/{sid}/message",
            params={"directory": str(directory)},
            json={"parts": [{"type": "text", "text": text}]},
        )
        resp.raise_for_status()
        return dict(resp.json())

    def close(self) -> None:
        if getattr(self, "http", None) is not None:
            self.http.close()
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


@pytest.fixture(scope="module")
def e2e(tmp_path_factory: pytest.TempPathFactory, opencode_bin: Path) -> Iterator[tuple[OpenCode, ScriptedModelServer]]:
    combined = Script.model_validate(
        {
            "scenarios": TEST_SCRIPT["scenarios"] + [s.model_dump(exclude_none=True) for s in DEMO_SCRIPT.scenarios],
            "default": [t.model_dump(exclude_none=True) for t in DEMO_SCRIPT.default],
        }
    )
    with ScriptedModelServer(combined) as scripted:
        oc = OpenCode(tmp_path_factory.mktemp("opencode"), scripted, opencode_bin)
        try:
            yield oc, scripted
        finally:
            oc.close()


def git_repo(path: Path) -> Path:
    path.mkdir()
    (path / "README.md").write_text("# Demo\n")
    git = ["git", "-c", "user.name=Test", "-c", "user.email=t@example.com", "-c", "init.defaultBranch=main"]
    subprocess.run([*git, "init", "-q"], cwd=path, check=True)
    subprocess.run([*git, "add", "."], cwd=path, check=True)
    subprocess.run([*git, "commit", "-qm", "init"], cwd=path, check=True)
    return path.resolve()


def final_text(reply: dict[str, Any]) -> str:
    return "".join(p.get("text", "") for p in reply["parts"] if p["type"] == "text")


def test_e2e_opencode_writes_scripted_file(e2e: tuple[OpenCode, ScriptedModelServer], tmp_path: Path) -> None:
    oc, scripted = e2e
    repo = git_repo(tmp_path / "repo")
    sid = oc.session(repo)
    reply = oc.prompt(repo, sid, "Please create the hello file")
    assert reply["info"]["role"] == "assistant" and reply["info"].get("error") is None
    assert (repo / "hello.txt").read_text() == "hi\n"
    assert final_text(reply) == "Created hello.txt"
    assert reply["info"]["cost"] > 0  # provider_config(cost=...) reaches OpenCode
    mine = [r for r in scripted.requests if r["last_user"] == "Please create the hello file"]
    assert [r["reply"]["kind"] for r in mine if r["reply"]["kind"] != "title"] == ["scenario", "scenario"]
    tool_msg = mine[-1]["messages"][-1]
    assert tool_msg["role"] == "tool" and tool_msg["content"] == "Wrote file successfully."
    assert all(r["workdir"] == str(repo) for r in mine if r["tools"])
    deadline = time.monotonic() + 5
    while oc.http.get(f"/session/{sid}", params={"directory": str(repo)}).json()["title"] != (
        "Please create the hello file"
    ):
        assert time.monotonic() < deadline, "scripted title never applied"
        time.sleep(0.1)


def test_e2e_workdir_template(e2e: tuple[OpenCode, ScriptedModelServer], tmp_path: Path) -> None:
    oc, _ = e2e
    repo = git_repo(tmp_path / "repo")
    reply = oc.prompt(repo, oc.session(repo), "write the absolute file")
    assert (repo / "abs.txt").read_text() == f"wd={repo}\n"
    assert final_text(reply) == f"Wrote {repo}/abs.txt"


def test_e2e_demo_script(e2e: tuple[OpenCode, ScriptedModelServer], tmp_path: Path) -> None:
    oc, _ = e2e
    repo = git_repo(tmp_path / "repo")
    sid = oc.session(repo)
    reply = oc.prompt(repo, sid, "Add a greeting module")
    assert "Hello, Palot!" in final_text(reply)
    assert "## Greeting" in (repo / "README.md").read_text()
    out = subprocess.run([sys.executable, "greet.py", "Ada"], cwd=repo, capture_output=True, text=True)
    assert out.stdout == "Hello, Ada!\n"
    reply = oc.prompt(repo, sid, "now add tests")
    assert final_text(reply).startswith("Added `test_greet.py`")
    assert (repo / "test_greet.py").exists() and '"""Return a friendly greeting' in (repo / "greet.py").read_text()
    messages = oc.http.get(f"/session/{sid}/message", params={"directory": str(repo)}).json()
    tools = [p for m in messages for p in m["parts"] if p["type"] == "tool"]
    assert all(p["state"]["status"] == "completed" for p in tools), [p["state"] for p in tools]
    assert [p["tool"] for p in tools] == [
        "todowrite",
        "write",
        "edit",
        "bash",
        "todowrite",
        "grep",
        "read",
        "edit",
        "write",
        "bash",
    ]
    assert "OK" in tools[-1]["state"]["output"]
    todos = oc.http.get(f"/session/{sid}/todo", params={"directory": str(repo)}).json()
    assert [t["status"] for t in todos] == ["completed"] * 3


def test_e2e_abort_slow_turn(e2e: tuple[OpenCode, ScriptedModelServer], tmp_path: Path) -> None:
    oc, scripted = e2e
    repo = git_repo(tmp_path / "repo")
    sid = oc.session(repo)
    params = {"directory": str(repo)}
    prompt = {"parts": [{"type": "text", "text": "go slow"}]}
    r = oc.http.post(f"/session/{sid}/prompt_async", params=params, json=prompt)
    assert r.status_code == 204
    deadline = time.monotonic() + 10
    while not any(q["last_user"] == "go slow" and q["tools"] for q in scripted.requests):
        assert time.monotonic() < deadline
        time.sleep(0.05)
    time.sleep(0.5)
    assert oc.http.post(f"/session/{sid}/abort", params=params).json() is True
    deadline = time.monotonic() + 10
    while oc.http.get("/session/status", params=params).json().get(sid):
        assert time.monotonic() < deadline
        time.sleep(0.05)
    messages = oc.http.get(f"/session/{sid}/message", params=params).json()
    last = messages[-1]["info"]
    assert last["role"] == "assistant" and last["error"]["name"] == "MessageAbortedError"
    # the scripted server is unharmed
    assert httpx.get(scripted.url + "/_scripted/health").json()["ok"] is True
