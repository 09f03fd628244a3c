"""What users and agents write is shown as text, never as markup, in every front end; the agent table reads at 80
columns.

Titles, prompts, paths, branches, errors and model output can hold rich markup (``[/write]``), HTML
(``<script>``) or Markdown (``*all*``). One shared server with the scripted model for the module (its own
script, whose agents write and fail with such text), driven through the real ``palot`` CLI, a real
``Dashboard`` and a real ``palot-lsp`` client.
"""

from __future__ import annotations

import html
import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import ipywidgets as w
import pytest
from conftest import make_repo
from lsp_support import diagnostics, eventually, execute, messages, open_file, start_lsp
from lsprotocol import types as lsp

from palot.paths import PalotPaths
from palot_jupyter import Dashboard

PALOT = Path(sys.executable).parent / "palot"

MARKUP_PROMPT = "fix [/write] and [bold red]x[/] <b>b</b> & *e*"
FAIL_PROMPT = "provoke [/red] <script>alert(1)</script> & fail"
MODEL_ERROR = "boom [/red] <script>alert(1)</script> & [bold]x"
MODEL_TEXT = "Wrote [bold]notes[/] <script>alert(1)</script> & *done*"
NOTES_FILE = "notes [b] <i>.md"
LSP_TITLE = "Fix *all* the `tests` <b>now</b> & [link](x)"
README = "# sample project\n\n```\ncode\n```\n"

SCRIPT = {
    "scenarios": [
        {"name": "markup", "match": "[/write]", "turns": [
            {"tool_calls": [{"name": "write", "arguments": {"filePath": NOTES_FILE, "content": "x\n"}}]},
            {"text": MODEL_TEXT},
        ]},
        {"name": "fail", "match": "provoke", "turns": [{"error": {"status": 400, "message": MODEL_ERROR}}]},
        {"name": "edit-readme", "match": "edit readme", "turns": [
            {"tool_calls": [{"name": "edit", "arguments": {
                "filePath": "README.md", "oldString": "sample project", "newString": "sample project, edited"}}]},
            {"text": "Edited README.md."},
        ]},
    ],
    "default": [{"text": "OK."}],
}


class Cli:
    """The installed ``palot`` in a subprocess with its own PALOT_HOME; stdout is a pipe, as in ``| less``."""

    def __init__(self, home: Path) -> None:
        self.home = home

    def run(self, *args: str, columns: int = 200, timeout: float = 90) -> subprocess.CompletedProcess[str]:
        env = {**os.environ, "PALOT_HOME": str(self.home), "COLUMNS": str(columns)}
        return subprocess.run([str(PALOT), *args], env=env, capture_output=True, text=True, timeout=timeout)

    def ok(self, *args: str, columns: int = 200) -> str:
        out = self.run(*args, columns=columns)
        assert out.returncode == 0, f"palot {' '.join(args)} exited {out.returncode}:\n{out.stdout}\n{out.stderr}"
        assert "Traceback" not in out.stderr, out.stderr
        return out.stdout


@pytest.fixture(scope="module")
def cli(tmp_path_factory: pytest.TempPathFactory, opencode_bin: Path) -> Iterator[Cli]:
    root = tmp_path_factory.mktemp("text")
    script = root / "script.json"
    script.write_text(json.dumps(SCRIPT))
    cli = Cli(root / "palot-home")
    try:
        cli.ok("up", "--scripted", str(script), "--isolated", "--json")
        yield cli
    finally:
        cli.run("down", timeout=60)


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A repository whose path has markup in it."""
    return make_repo(tmp_path_factory.mktemp("text") / "app [/bold] & <co>")


@pytest.fixture(scope="module")
def marked(cli: Cli, project: Path) -> dict[str, Any]:
    """An agent whose prompt (so its title) is full of markup, spawned and printed by the CLI as a person does."""
    printed = cli.ok("agents", "spawn", str(project), MARKUP_PROMPT, "--wait", "--timeout", "60")
    assert MARKUP_PROMPT in printed
    [agent] = [a for a in json.loads(cli.ok("agents", "list", "--json")) if a["title"] == MARKUP_PROMPT]
    assert agent["status"] == "completed", agent["error"]
    return agent


@pytest.fixture(scope="module")
def failed(cli: Cli, project: Path) -> dict[str, Any]:
    """An agent the model failed with an error full of markup."""
    out = cli.run("agents", "spawn", str(project), FAIL_PROMPT, "--wait", "--timeout", "60", "--json")
    agent = json.loads(out.stdout)  # (its exit code says the agent failed: not what this module checks)
    assert agent["status"] == "failed" and MODEL_ERROR in agent["error"], agent
    return agent


def row(output: str, agent_id: str) -> str:
    [line] = [line for line in output.splitlines() if agent_id in line]
    return line


def cells(output: str, agent_id: str) -> dict[str, str]:
    """The agent's row of a printed table by column, a wrapped cell's lines joined with spaces."""
    lines = output.splitlines()
    header = next(line for line in lines if "┃" in line)
    names = [name.strip() for name in header.strip("┃").split("┃")]
    start = next(i for i, line in enumerate(lines) if agent_id in line)
    parts: dict[str, list[str]] = {name: [] for name in names}
    for line in lines[start:]:
        if not line.startswith("│") or (line is not lines[start] and line.split("│")[1].strip()):
            break  # the bottom border, or the next agent's row
        for name, cell in zip(names, line.strip("│").split("│"), strict=True):
            if cell.strip():
                parts[name].append(cell.strip())
    return {name: " ".join(texts) for name, texts in parts.items()}


# --- the CLI ---------------------------------------------------------------------------------------------


def test_list_shows_titles_and_project_names_with_markup_as_written(
    cli: Cli, marked: dict[str, Any], failed: dict[str, Any], project: Path
):
    out = cli.ok("agents", "list")
    assert MARKUP_PROMPT in row(out, marked["id"]) and FAIL_PROMPT in row(out, failed["id"])
    assert project.name in row(out, marked["id"])


def test_show_prints_the_title_directory_model_output_and_error_as_written(
    cli: Cli, marked: dict[str, Any], failed: dict[str, Any]
):
    out = cli.ok("agents", "show", marked["id"])
    assert MARKUP_PROMPT in out
    assert f"directory: {marked['environment']['directory']}" in out
    assert NOTES_FILE in out and MODEL_TEXT in out  # the write's target and the model's answer

    out = cli.ok("agents", "show", failed["id"])
    assert FAIL_PROMPT in out
    assert f"error: {failed['error']}" in out and MODEL_ERROR in out


def test_an_error_naming_what_the_user_typed_prints_it_as_written(cli: Cli, marked: dict[str, Any]):
    out = cli.run("agents", "show", "nope[/bold]")
    assert out.returncode == 2
    assert "Traceback" not in out.stderr
    assert "error:" in out.stderr and "nope[/bold]" in out.stderr and "fix:" in out.stderr


def test_at_80_columns_each_row_keeps_the_whole_status_and_a_readable_title(
    cli: Cli, marked: dict[str, Any], failed: dict[str, Any]
):
    out = cli.ok("agents", "list", columns=80)
    assert all(len(line) <= 80 for line in out.splitlines()), out
    for agent, status in ((marked, "✓ completed"), (failed, "✕ failed")):
        row_ = cells(out, agent["id"])
        assert (row_["status"], row_["title"]) == (status, agent["title"]), out
    one = cli.ok("agents", "show", marked["id"], columns=80)
    assert all(len(line) <= 80 for line in one.splitlines()), one
    row_ = cells(one, marked["id"])
    assert (row_["status"], row_["title"]) == ("✓ completed", MARKUP_PROMPT), one
    assert f"branch: {marked['environment']['branch']}" in one  # what the narrow table leaves out


# --- the notebook dashboard ----------------------------------------------------------------------------


def html_values(widget: w.Widget) -> list[str]:
    """Every HTML string the dashboard's widgets put on screen."""
    found = [widget.value] if isinstance(widget, w.HTML) else []
    for child in getattr(widget, "children", ()):
        found += html_values(child)
    return found


async def test_the_dashboard_shows_titles_prompts_errors_and_activity_as_text(
    cli: Cli, marked: dict[str, Any], failed: dict[str, Any]
):
    dash = Dashboard(home=cli.home)
    await dash.start()
    try:
        await dash.sync()
        row_ = dash.agent_list.rows[marked["id"]]
        assert row_.cells["title"].description == MARKUP_PROMPT  # a button's text, drawn as text
        assert row_.cells["title"].tooltip == MARKUP_PROMPT
        assert "<co>" in marked["project_name"]
        assert html.escape(marked["project_name"]) in row_.cells["project"].value

        failed_row = dash.agent_list.rows[failed["id"]]
        assert f'title="{html.escape(failed["error"])}"' in failed_row.cells["status"].value
        overview = " ".join(html_values(dash.overview.widget))  # the failed agent needs attention
        assert html.escape(FAIL_PROMPT) in overview and html.escape(MODEL_ERROR) in overview

        await dash.show(failed["id"])
        header = dash.detail.header.value
        assert html.escape(FAIL_PROMPT) in header and html.escape(MODEL_ERROR) in header

        await dash.show(marked["id"])
        header = dash.detail.header.value
        assert html.escape(MARKUP_PROMPT) in header
        assert html.escape(marked["environment"]["branch"]) in header
        activity = [(i["target"], i["summary"]) for i in dash.detail.activity.items]
        assert (NOTES_FILE, "1 lines") in activity and ("", MODEL_TEXT) in activity  # drawn as textContent
        assert html.escape(NOTES_FILE) in dash.detail.diff.value

        for value in html_values(dash):
            assert "<script>" not in value and "<b>b</b>" not in value and "<i>" not in value, value
    finally:
        await dash.aclose()


# --- the language server ----------------------------------------------------------------------------------


async def test_a_hover_shows_the_agents_title_and_its_hunk_as_written(cli: Cli, tmp_path: Path):
    workspace = make_repo(tmp_path / "editor", {"README.md": README})
    client = await start_lsp(PalotPaths(cli.home), workspace)
    try:
        uri = open_file(client, workspace / "README.md")
        agent = await execute(client, "palot.spawn", {"prompt": "edit readme", "title": LSP_TITLE})
        await eventually(lambda: [d for d in diagnostics(client, uri) if "(completed)" in d.message],
                         what="the agent's edit, completed")
        [diag] = diagnostics(client, uri, "agent-change")
        assert f"“{LSP_TITLE}”" in diag.message  # diagnostics are plain text: as written, nothing escaped
        assert messages(client, f"Agent {agent['id']} “{LSP_TITLE}” completed")

        hover = await client.text_document_hover_async(lsp.HoverParams(
            text_document=lsp.TextDocumentIdentifier(uri=uri), position=lsp.Position(0, 3)))
        assert isinstance(hover.contents, lsp.MarkupContent) and hover.contents.kind == lsp.MarkupKind.Markdown
        value = hover.contents.value
        assert r"“Fix \*all\* the \`tests\` \<b\>now\</b\> \& \[link\](x)”" in value
        # The README's own ``` (a context line of the hunk) cannot close the hunk's code block.
        block = re.search(r"^(`{3,})diff\n(.*)\n\1$", value, re.S | re.M)
        assert block is not None and len(block.group(1)) > 3, value
        assert "-# sample project\n+# sample project, edited\n \n ```" in block.group(2)
    finally:
        await client.shutdown_session()
        await client.stop()

