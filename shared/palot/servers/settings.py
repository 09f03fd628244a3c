"""The settings an OpenCode server Palot runs is started with: isolated or the user's own config, the
scripted model or a real one, extra OpenCode config; and the environment and config they make, for the
shared server and for a server inside an environment (container or cloud)."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..install import tool_path_dirs
from ..paths import PalotPaths
from ..ports import write_plugin
from ..scripted import provider_config  # here, not where it is used: the package takes ~0.2 s of CPU to import

#: Environment that keeps OpenCode from any outbound lookup (see OPENCODE.md).
OFFLINE_ENV = {
    "OPENCODE_DISABLE_AUTOUPDATE": "1",
    "OPENCODE_DISABLE_MODELS_FETCH": "1",
    "OPENCODE_DISABLE_SHARE": "1",
    "OPENCODE_DISABLE_LSP_DOWNLOAD": "1",
    "OPENCODE_DISABLE_DEFAULT_PLUGINS": "1",
    "OPENCODE_DISABLE_CLAUDE_CODE": "1",
    # A closed loopback port: OpenCode's background plugin install fails fast instead of hanging.
    "npm_config_registry": "http://127.0.0.1:9/",
}


@dataclass(frozen=True)
class ServerSettings:
    """``isolated``: OpenCode's own HOME and XDG dirs under Palot's data dir and the offline environment (demo,
    tests), else the user's own config and providers. ``scripted`` ("demo" or a script file): Palot's
    scripted model as OpenCode's provider. ``config``: OpenCode config added to the user's."""

    isolated: bool = False
    scripted: str | None = None
    config: dict[str, Any] = field(default_factory=dict)

    @property
    def profile(self) -> dict[str, Any]:
        """The settings as ``server.json`` keeps them: a running server must match them to be attached to."""
        return {"isolated": self.isolated, "scripted": self.scripted, "config": self.config}

    @classmethod
    def of_profile(cls, profile: dict[str, Any]) -> "ServerSettings":
        return cls(isolated=bool(profile.get("isolated")), scripted=profile.get("scripted"),
                   config=profile.get("config") or {})

    def opencode_config(self, scripted_base_url: str | None) -> dict[str, Any]:
        """The OpenCode config Palot adds: the user's extra config, and the scripted provider when used."""
        config = dict(self.config)
        if self.scripted and scripted_base_url:
            # Nominal prices (USD per million tokens) so cost tracking can be rehearsed offline too.
            config = {**provider_config(scripted_base_url, cost=(3.0, 15.0)), **config}
        return config

    def server_env(self, paths: PalotPaths, password: str, scripted_port: int | None) -> dict[str, str]:
        """The whole environment of the shared ``opencode serve`` (and of its command line on the same data)."""
        env = dict(os.environ)
        env["PATH"] = os.pathsep.join([*tool_path_dirs(), env.get("PATH", "")])
        env["OPENCODE_SERVER_PASSWORD"] = password
        env.pop("OPENCODE_SERVER_USERNAME", None)
        env["OPENCODE_DISABLE_AUTOUPDATE"] = "1"  # Palot pins the version
        if self.isolated:
            home = paths.isolated_opencode_home
            for var, sub in (("HOME", "home"), ("XDG_DATA_HOME", "data"), ("XDG_CONFIG_HOME", "config"),
                             ("XDG_STATE_HOME", "state"), ("XDG_CACHE_HOME", "cache")):
                (home / sub).mkdir(parents=True, exist_ok=True)
                env[var] = str(home / sub)
            env.update(OFFLINE_ENV)
            _no_plugin_install(home / "config" / "opencode")
        config = self.opencode_config(f"http://127.0.0.1:{scripted_port}/v1" if scripted_port else None)
        # Every worktree agent's bash gets its own variables (dev-server ports) through Palot's plugin.
        plugin = write_plugin(paths.agent_env_plugin, paths.agent_env_map)
        config["plugin"] = [*config.get("plugin", []), plugin]
        env["OPENCODE_CONFIG_CONTENT"] = json.dumps(config)
        return env

    def environment_env(self, scripted_port: int, script_path: str) -> dict[str, str]:
        """Variables for an OpenCode server Palot runs in an environment (container or cloud) besides its
        password: offline mode, Palot's OpenCode config, and the scripted model on the environment's own
        loopback (``script_path`` is where its script is inside) when Palot rehearses with it."""
        env = {"OPENCODE_DISABLE_AUTOUPDATE": "1"}
        if self.isolated:
            env.update(OFFLINE_ENV)
        config = self.opencode_config(f"http://127.0.0.1:{scripted_port}/v1" if self.scripted else None)
        if config:
            env["OPENCODE_CONFIG_CONTENT"] = json.dumps(config)
        if self.scripted:
            env["PALOT_SCRIPTED_PORT"] = str(scripted_port)
            env["PALOT_SCRIPTED_SCRIPT"] = "demo" if self.scripted == "demo" else script_path
            env["PYTHONPATH"] = "/opt/palot/src:/opt/palot/site"
        return env


def _no_plugin_install(config_dir: Path) -> None:
    """Offline, tell OpenCode its config dir has its plugin package: with any plugin configured (Palot's own,
    which imports nothing) OpenCode 1.18 holds every directory's start until it has tried to install
    ``@opencode-ai/plugin`` there, a minute of retries against the closed registry."""
    config_dir.mkdir(parents=True, exist_ok=True)
    (config_dir / "node_modules").mkdir(exist_ok=True)
    lock = config_dir / "package-lock.json"
    if not lock.exists():
        lock.write_text(json.dumps({"packages": {"": {"dependencies": {"@opencode-ai/plugin": "*"}}}}))
