"""The VS Code extension's pure parts (the Agents view's rows, the status bar, command arguments, finding
palot-lsp), tested by node's own test runner; and the whole extension type-checked against VS Code's API.

The extension's npm packages come from `make test-deps` (``npm ci`` in ``palot_lsp/vscode``).
"""

from __future__ import annotations

import re
import shutil
import subprocess

from vscode_support import EXTENSION, require


def npm(*args: str) -> subprocess.CompletedProcess[str]:
    require(EXTENSION / "node_modules" / ".bin" / "esbuild", "the extension's npm packages")
    npm_bin = shutil.which("npm")
    assert npm_bin, "npm is missing: run `make setup` (it installs nodejs and npm)"
    return subprocess.run([npm_bin, *args], cwd=EXTENSION, capture_output=True, text=True, timeout=120)


def test_the_extensions_pure_parts_pass_their_node_tests():
    out = npm("test")
    assert out.returncode == 0, out.stdout[-4000:] + out.stderr[-2000:]
    passed = re.search(r"^# pass (\d+)$", out.stdout, re.M)
    assert passed and int(passed.group(1)) >= 11, out.stdout[-2000:]
    assert re.search(r"^# fail 0$", out.stdout, re.M), out.stdout[-2000:]


def test_the_extension_type_checks_against_the_vs_code_api():
    out = npm("run", "--silent", "check")
    assert out.returncode == 0, out.stdout[-4000:] + out.stderr[-2000:]
