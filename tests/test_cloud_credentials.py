"""The user's model-provider credentials in the cloud tier (issue 16, point 3), through the real Worker under
``wrangler dev``: the scripted model in the environment demands an API key it knows only by digest, and a cloud
agent works with the key from the user's OpenCode ``auth.json`` or from a variable their config names. The key
reaches OpenCode through the environment daemon, survives a container restart (the Worker sends it again), and
appears in no log, no response, no Durable Object record and no command's environment.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import os
import secrets
import subprocess
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
import pytest_asyncio
from cloud_support import cloud_agent_wrote_hello
from conftest import CORE_SCRIPT, Engine, stop_started_service

from palot import Palot
from palot.cloud import config as cloud_config
from palot.cloud.credentials import collect, named_variables
from palot.paths import PalotPaths, write_private
from palot.scripted import provider_config
from localdev import LocalWorker
from rehearsal import build_rehearsal_image

KEY = "sk-palot-" + secrets.token_hex(20)  # the user's provider key: must be nowhere but where it is needed
KEY_VARIABLE = "PALOT_TEST_PROVIDER_KEY"


def _provider(api_key: str | None) -> dict:
    """The scripted provider as the environment sees it (its model on the container's loopback, port 4097)."""
    provider = provider_config("http://127.0.0.1:4097/v1", cost=(3.0, 15.0))["provider"]
    options = provider["palot-scripted"]["options"]
    options.pop("apiKey")
    if api_key is not None:
        options["apiKey"] = api_key
    return {"provider": provider}


# --- without the engine ---------------------------------------------------------------------------


def test_the_variables_a_config_names_and_the_auth_file_are_collected(tmp_path: Path):
    config = json.dumps({"provider": {"a": {"options": {"apiKey": "{env:A_KEY}"}, "env": ["B_KEY", "bad name"]},
                                      "c": {"options": {"baseURL": "{env:C_URL}/v1"}}}})
    jsonc = '// comments make it JSONC\n{"provider": {"d": {"options": {"apiKey": "{env:D_KEY}"}}}}'
    assert named_variables([config, jsonc]) == {"A_KEY", "B_KEY", "C_URL", "D_KEY"}

    auth = tmp_path / "auth.json"
    environ = {"A_KEY": "a", "B_KEY": "b", "D_KEY": "", "UNRELATED": "u", "OPENCODE_SERVER_PASSWORD": "p"}
    got = collect(config_texts=[config, jsonc, '{"x": "{env:OPENCODE_SERVER_PASSWORD}"}'], auth_file=auth,
                  environ=environ)
    assert got == {"A_KEY": "a", "B_KEY": "b"}  # set, named, not reserved; nothing else from the environment
    auth.write_text('{"anthropic": {"type": "api", "key": "k"}}')
    assert json.loads(collect(config_texts=[], auth_file=auth, environ={})["OPENCODE_AUTH_CONTENT"]) == {
        "anthropic": {"type": "api", "key": "k"}}
    auth.write_text("{not json")
    assert collect(config_texts=[], auth_file=auth, environ={}) == {}


# --- through the Worker ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def keyed_script(tmp_path_factory: pytest.TempPathFactory) -> Path:
    script = json.loads(CORE_SCRIPT.read_text())
    script["api_key_sha256"] = hashlib.sha256(KEY.encode()).hexdigest()
    path = tmp_path_factory.mktemp("script") / "keyed.json"
    path.write_text(json.dumps(script))
    return path


@pytest.fixture(scope="module")
def keyed_worker(container_engine: Engine, keyed_script: Path,
                 tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalWorker]:
    import docker

    image = build_rehearsal_image(docker.DockerClient(base_url=container_engine.host), keyed_script)
    with LocalWorker(token=secrets.token_urlsafe(32), image=image, docker_host=container_engine.host,
                     workdir=tmp_path_factory.mktemp("keyed-worker")) as worker:
        yield worker


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def keyed_palot(keyed_worker: LocalWorker, keyed_script: Path, tmp_path_factory: pytest.TempPathFactory,
                      opencode_bin: Path) -> AsyncIterator[Palot]:
    home = tmp_path_factory.mktemp("keyed") / "palot-home"
    palot = Palot(PalotPaths(home), isolated=True, scripted=str(keyed_script), opencode_bin=opencode_bin,
                  config=_provider(None))
    await palot.start()
    try:
        cloud_config.save(palot.paths, keyed_worker.url, keyed_worker.token)
        yield palot
    finally:
        await stop_started_service(home)
        await palot.close()
        await palot.stop_server()


def _auth_file(palot: Palot) -> Path:
    """The auth.json of the OpenCode setup Palot uses (its isolated one here, the user's own normally)."""
    return palot.paths.isolated_opencode_home / "data" / "opencode" / "auth.json"


def _nowhere(worker: LocalWorker, palot: Palot, docker_host: str) -> None:
    """The key is in no file the Worker wrote (its log, its Durable Objects' storage), no container's log,
    and no file of Palot's home but the user's own auth.json."""
    needle = KEY.encode()
    skip = {_auth_file(palot)}
    for root in (worker.workdir, palot.paths.home):
        for path in root.rglob("*"):
            if path.is_file() and path not in skip:
                assert needle not in path.read_bytes(), f"the key leaked into {path}"
    env = {**os.environ, "DOCKER_HOST": docker_host}
    for name in worker.containers():
        logs = subprocess.run(["docker", "logs", name], capture_output=True, env=env, timeout=60)
        assert needle not in logs.stdout + logs.stderr, f"the key leaked into the log of {name}"


@pytest.mark.asyncio(loop_scope="module")
async def test_a_cloud_agent_works_with_the_key_from_the_users_auth_file_and_a_restart_keeps_it(
        keyed_palot: Palot, keyed_worker: LocalWorker, container_engine: Engine, tmp_path: Path):
    palot = keyed_palot
    _auth_file(palot).parent.mkdir(parents=True, exist_ok=True)
    write_private(_auth_file(palot), json.dumps({"palot-scripted": {"type": "api", "key": KEY}}).encode())
    agent, env_id = await cloud_agent_wrote_hello(palot, tmp_path)
    worker = palot.backends["cloud"].worker()

    seen: list[str] = []
    with httpx.Client(base_url=keyed_worker.url, headers={"authorization": f"Bearer {keyed_worker.token}"},
                      timeout=180, event_hooks={"response": [lambda r: seen.append(r.read().decode())]}) as api:
        status = api.get(f"/envs/{env_id}").json()
        assert status["credentials"] == "set"
        assert api.get(f"/envs/{env_id}/daemon/health").json()["credentials"] == "set"
        # The model really demands the key: without it the provider's endpoint refuses.
        probe = ("import urllib.request, urllib.error\ntry: urllib.request.urlopen('http://127.0.0.1:4097/v1/models')\n"
                 "except urllib.error.HTTPError as e: print(e.code)")
        assert (await worker.run(env_id, ["python3", "-c", probe], "probing the model")).strip() == "401"
        # Commands run through the daemon do not get the credentials.
        assert KEY not in await worker.run(env_id, ["printenv"], "listing the environment")

        # A restart (the container and its memory are gone): the Worker hands the key over again.
        assert api.post(f"/envs/{env_id}/stop").json()["status"] == "stopped"
        assert api.post(f"/envs/{env_id}/start").json()["status"] == "running"
        session = api.post(f"/envs/{env_id}/opencode/session", json={}).json()
        reply = api.post(f"/envs/{env_id}/opencode/session/{session['id']}/message",
                         json={"parts": [{"type": "text", "text": "say hi"}]}).json()
        assert "error" not in reply["info"], reply["info"].get("error")
        assert [p["text"] for p in reply["parts"] if p.get("type") == "text"] == ["OK."]  # the model answered
        api.get("/envs")
        bad = api.put(f"/envs/{env_id}/credentials", json={"env": {"bad name": "x"}})
        assert bad.status_code == 400
    assert not any(KEY in text for text in seen)  # no Worker or proxied response carries it

    await palot.agents.destroy(agent.id, force=True)
    _nowhere(keyed_worker, palot, container_engine.host)


@pytest.mark.asyncio(loop_scope="module")
async def test_a_cloud_agent_works_with_the_key_from_a_variable_the_users_config_names(
        keyed_palot: Palot, keyed_worker: LocalWorker, container_engine: Engine, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch):
    palot = keyed_palot
    with contextlib.suppress(FileNotFoundError):
        _auth_file(palot).unlink()
    monkeypatch.setenv(KEY_VARIABLE, KEY)
    monkeypatch.setattr(palot.server, "settings",
                        dataclasses.replace(palot.server.settings, config=_provider("{env:%s}" % KEY_VARIABLE)))
    agent, _ = await cloud_agent_wrote_hello(palot, tmp_path)
    await palot.agents.destroy(agent.id, force=True)
    _nowhere(keyed_worker, palot, container_engine.host)
