"""The typed client matches the real server: routes and shapes checked against its own `GET /doc`."""

from __future__ import annotations

import os
import re
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from palot import Palot, PalotPaths
from palot.errors import OpenCodeNotInstalled, OpenCodeVersionMismatch
from palot.opencode import models
from palot.servers import ServerManager

CLIENT = Path(__file__).parent.parent / "shared" / "palot" / "opencode" / "client.py"


def _client_routes() -> set[tuple[str, str]]:
    """(METHOD, path template) for every request the client makes, read from its source."""
    source = CLIENT.read_text()
    routes = set()
    for method, path in re.findall(r'_request\(\s*"([A-Z]+)",\s*f?"([^"]+)"', source):
        routes.add((method, re.sub(r"\{[^}]+\}", "{}", path)))
    return routes


async def test_every_route_the_client_uses_exists_in_the_servers_openapi(palot: Palot):
    doc = await palot.agents._client().openapi()
    served = {
        (method.upper(), re.sub(r"\{[^}]+\}", "{}", path))
        for path, ops in doc["paths"].items() for method in ops
    }
    used = _client_routes() - {("GET", "/doc")}  # the document does not list itself
    assert len(used) >= 12
    assert used - served == set()


async def test_model_fields_exist_in_the_servers_schemas(palot: Palot):
    schemas = (await palot.agents._client().openapi())["components"]["schemas"]
    pairs = {
        models.Session: "Session",
        models.PermissionRequest: "PermissionRequest",
        models.MessageInfo: "AssistantMessage",
        models.PermissionRule: "PermissionRule",
    }
    for model, name in pairs.items():
        declared = set(model.model_fields)
        if name == "AssistantMessage":
            declared -= {"role"}  # shared with UserMessage
        missing = declared - set(schemas[name]["properties"])
        assert missing == set(), f"{model.__name__} declares fields {name} does not have: {missing}"


async def test_a_wrong_opencode_version_is_a_clear_error(tmp_path: Path):
    fake = tmp_path / "opencode"
    fake.write_text("#!/bin/sh\necho 1.0.0\n")
    fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
    manager = ServerManager(PalotPaths(tmp_path / "home"), opencode_bin=fake, supervise=False)
    with pytest.raises(OpenCodeVersionMismatch) as e:
        await manager.start()
    assert "1.0.0" in str(e.value) and "palot doctor --fix" in str(e.value)
    assert ServerManager.read_running(manager.paths) is None


def test_each_binary_is_asked_its_version_once_across_processes_and_again_once_changed(tmp_path: Path):
    """`make demo` asked OpenCode its version three times (doctor, the demo, its service), a second each."""
    asked = tmp_path / "asked"
    fake = tmp_path / "opencode"

    def install(version: str) -> None:
        fake.write_text(f"#!/bin/sh\necho asked >> {asked}\necho {version}\n")
        fake.chmod(fake.stat().st_mode | stat.S_IEXEC)

    def version_in_a_new_process() -> str:
        code = f"from palot.install import opencode_version; print(opencode_version({str(fake)!r}))"
        env = {**os.environ, "PALOT_CACHE": str(tmp_path / "cache")}
        return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                              check=True).stdout.strip()

    install("1.0.0")
    assert [version_in_a_new_process() for _ in range(3)] == ["1.0.0"] * 3
    assert asked.read_text().split() == ["asked"]
    install("1.0.1")  # replaced in place: asked again
    assert version_in_a_new_process() == "1.0.1"
    assert asked.read_text().split() == ["asked", "asked"]


async def test_a_missing_opencode_that_cannot_be_installed_is_a_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    """No copy anywhere, and no npm to install one on demand: a clear error, and nothing started."""
    monkeypatch.delenv("PALOT_OPENCODE_BIN", raising=False)
    monkeypatch.setenv("PALOT_TOOLS", str(tmp_path / "no-tools"))
    monkeypatch.setenv("PATH", str(tmp_path / "empty-path"))
    manager = ServerManager(PalotPaths(tmp_path / "home"), supervise=False, progress=lambda _: None)
    with pytest.raises(OpenCodeNotInstalled) as e:
        await manager.start()
    assert "npm is not on PATH" in str(e.value) and "palot doctor --fix" in str(e.value)
    assert ServerManager.read_running(manager.paths) is None
