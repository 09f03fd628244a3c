"""The shape of the code: front ends are thin clients (import-linter contracts in .importlinter)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def test_front_ends_import_only_the_api_and_the_client() -> None:
    lint = Path(sys.executable).parent / "lint-imports"
    assert lint.exists(), "import-linter is missing: run `make test` (it installs the test extras)"
    out = subprocess.run([str(lint), str(REPO / ".importlinter")], cwd=REPO, capture_output=True,
                         text=True, stdin=subprocess.DEVNULL, timeout=300)
    assert out.returncode == 0, out.stdout[-6000:] + out.stderr[-2000:]
    assert "Contracts: 3 kept, 0 broken." in out.stdout, out.stdout[-3000:]
