"""The example notebook runs offline in a real kernel, and the dashboard's stored widget state shows the agent.

nbclient executes ``jupyter_ext/examples/dashboard.ipynb`` in a kernel of this
venv with ``store_widget_state=True``: what a notebook viewer would render.
The kernel runs as a brand-new user; a Palot service on the demo's scripted
model runs for the notebook area of that user's Palot data dir (started here
before the kernel, stopped after it), and the notebook's dashboard finds it.
"""

from __future__ import annotations

import os
from pathlib import Path

import nbformat
import pytest
from jupyter_support import (
    EXAMPLE_NOTEBOOK,
    KERNEL_NAME,
    WidgetState,
    new_user_env,
    notebook_service,
)
from nbclient import NotebookClient


def test_example_notebook_runs_offline_and_stores_a_live_dashboard(
    tmp_path: Path, opencode_bin: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Run as a newcomer right after `make setup`: a new HOME, no PALOT_HOME, no PALOT_OPENCODE_BIN."""
    nb = nbformat.read(EXAMPLE_NOTEBOOK, as_version=4)
    user_home = tmp_path / "user"
    env = new_user_env(user_home)
    for name in set(os.environ) - set(env):
        monkeypatch.delenv(name)
    client = NotebookClient(nb, kernel_name=KERNEL_NAME, timeout=180, store_widget_state=True,
                            resources={"metadata": {"path": str(tmp_path)}})
    with notebook_service(user_home) as home:
        monkeypatch.setenv("HOME", env["HOME"])  # the kernel is found and started as that user
        client.execute(env=env)  # the kernel is shut down when it returns

    outputs = [o for cell in nb.cells if cell.cell_type == "code" for o in cell.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    printed = "".join(o.get("text", "") for o in outputs if o.output_type == "stream")
    assert "Greeting CLI → completed on branch palot/greeting-cli" in printed
    assert f"Palot home:     {home}" in printed  # its own area of the user's Palot data dir

    state = WidgetState.of(nb)
    # The agent list: one row, completed, in a local worktree, with its usage.
    [row] = state.rows()
    assert (row["title"], row["status"], row["environment"]) == ("Greeting CLI", "completed", "worktree")
    assert not row["tokens"].startswith("0 ") and row["cost"].startswith("$")
    # The sidebar counts it; the detail panel shows its header, activity and diff.
    labels = [label for select in state.of_model("SelectModel") for label in select["_options_labels"]]
    assert "✓ completed (1)" in labels
    assert state.html_containing("palot-detail-title")
    [activity] = state.of_model("AnyModel")
    lines = [(i["verb"], i["target"]) for i in activity["items"]]
    assert ("Writing", "greet.py") in lines and ("Editing", "greet.py") in lines
    assert any(verb == "Running" and "python3 greet.py" in target for verb, target in lines)
    [diff] = state.html_containing("FILES CHANGED")
    assert "greet.py" in diff and "README.md" in diff and "palot-line-add" in diff
