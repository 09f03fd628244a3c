"""A real editor: headless Neovim attaches ``palot-lsp``, runs a code action that spawns an agent, sees its edit."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

from lsp_support import PALOT_LSP, palot_home, workspace

from palot import PalotPaths
from palot.servers import pid_alive

__all__ = ["palot_home", "workspace"]  # fixtures

SCRIPT = Path(__file__).parent / "nvim" / "code_action_spawn.lua"


def test_neovim_spawns_an_agent_from_a_code_action_and_shows_its_edit_as_a_diagnostic(
    palot_home: PalotPaths, workspace: Path, tmp_path: Path
):
    nvim = shutil.which("nvim")
    assert nvim, "Neovim is not installed: run `make test-deps` (Debian: apt-get install neovim)"
    result_file = tmp_path / "nvim-result.json"
    env = {**os.environ, "PALOT_HOME": str(palot_home.home), "PALOT_LSP": PALOT_LSP,
           "PALOT_FILE": str(workspace / "README.md"), "PALOT_ROOT": str(workspace),
           "PALOT_RESULT": str(result_file), "XDG_STATE_HOME": str(tmp_path / "nvim-state")}
    proc = subprocess.run([nvim, "--headless", "--clean", "-n", "-i", "NONE", "-c", f"luafile {SCRIPT}"],
                          env=env, capture_output=True, text=True, timeout=180, stdin=subprocess.DEVNULL)
    result = json.loads(result_file.read_text())
    assert result["ok"], (result, proc.stderr[-2000:])
    assert proc.returncode == 0

    assert result["actions"] == ["Ask an agent about this", "Fix with an agent"]
    [spawned] = [m for m in result["messages"] if m.startswith("Agent ag_")]
    agent_id = spawned.split()[1]
    [diagnostic] = result["diagnostics"]
    assert (diagnostic["lnum"], diagnostic["severity"], diagnostic["source"]) == (0, 3, "palot")  # 3: INFO
    assert diagnostic["message"].startswith(f"Agent {agent_id} “Fix the problems in this code.” (")
    assert "changed line 1 on palot/fix-the-problems-in-this-code" in diagnostic["message"]
    # The agent edited its worktree, not the checkout Neovim has open.
    assert (workspace / "README.md").read_text().startswith("# sample project\n")
    # Neovim stopped the server it started.
    assert not pid_alive(result["server_pid"]), f"palot-lsp (pid {result['server_pid']}) outlived Neovim"
