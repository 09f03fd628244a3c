"""How `make test` shares the suite between its pytest-xdist workers.

Two rules: every test that needs the private container engine runs on one worker (a machine runs one
dockerd: two would share its socket, bridge and iptables, and a test stops and restarts it), and every other
test module stays whole on one worker, so its module-scoped service starts once.

xdist's own ``loadgroup`` cannot say this with pytest 9.2 (it renames node ids through an attribute pytest no
longer reads), so the grouping is a scheduler of ours. The controller does not collect: each worker writes
the ids of the engine tests it collected to a file the controller named, and the scheduler reads them when
it first groups the tests (after every worker has collected).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import pytest

ENGINE = "engine"
_IDS = "PALOT_TEST_ENGINE_IDS"  # the controller's file prefix, inherited by the workers it starts


def configure(config: pytest.Config) -> None:
    if os.environ.get("PYTEST_XDIST_WORKER") is None and config.getoption("numprocesses", None):
        os.environ[_IDS] = tempfile.mkdtemp(prefix="palot-xdist-") + "/engine"


def unconfigure(config: pytest.Config) -> None:
    prefix = os.environ.get(_IDS)
    if os.environ.get("PYTEST_XDIST_WORKER") is None and prefix:
        shutil.rmtree(Path(prefix).parent, ignore_errors=True)


def collected(config: pytest.Config, items: list[pytest.Item]) -> None:
    worker, prefix = os.environ.get("PYTEST_XDIST_WORKER"), os.environ.get(_IDS)
    if worker and prefix:
        ids = [item.nodeid for item in items if item.get_closest_marker(ENGINE) is not None]
        Path(f"{prefix}.{worker}").write_text("\n".join(ids))


def make_scheduler(config: pytest.Config, log: Any) -> Any:
    from xdist.scheduler import LoadScopeScheduling

    class Grouped(LoadScopeScheduling):
        _engine: set[str] | None = None

        def _split_scope(self, nodeid: str) -> str:
            if self._engine is None:
                prefix = Path(os.environ[_IDS])
                self._engine = {line for f in prefix.parent.glob(prefix.name + ".*")
                                for line in f.read_text().splitlines() if line}
            return ENGINE if nodeid in self._engine else nodeid.split("::")[0]

    return Grouped(config, log)
