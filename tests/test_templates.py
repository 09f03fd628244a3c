"""Prompt templates on the real service with the scripted model: added, listed, shown, replaced and removed
through the CLI and the client; an agent spawned from a template gets the filled-in prompt (the scripted model
answers that text) and completes; bad names, stray braces and missing or unknown variables are clear errors that
create nothing (no agent, no branch, no worktree)."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from conftest import git, make_repo
from service_support import PALOT, running_service

from palot import api
from palot.client import PalotClient
from palot.errors import InvalidInput, TemplateNotFound
from palot.templates import fill, variables

pytestmark = pytest.mark.asyncio(loop_scope="module")

GREETING = "Write a templated greeting for {name} in GREETING.md, signed {{the team}}."


async def test_variables_are_named_once_in_order_and_double_braces_are_literal() -> None:
    text = "Fix {issue} in {file}: {{keep}} {issue}'s {{ and }} as they are; {_x-1}"
    assert variables(text) == ["issue", "file", "_x-1"]
    template = api.Template(name="t", prompt=text, created_at=0, updated_at=0)
    assert fill(template, {"issue": "#4", "file": "{a}.py", "_x-1": ""}) == (
        "Fix #4 in {a}.py: {keep} #4's { and } as they are; ")  # a value is inserted as written, never re-read
    for bad in ("{1st}", "{a b}", "{", "a}b", "{{x}", "{a.b}"):
        with pytest.raises(InvalidInput):
            variables(bad)


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def palot(tmp_path_factory: pytest.TempPathFactory, opencode_bin: Path) -> AsyncIterator[PalotClient]:
    async with running_service(tmp_path_factory.mktemp("palot-home")) as client:
        yield client


def cli(palot: PalotClient, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(PALOT), *args], env={**os.environ, "PALOT_HOME": str(palot.paths.home)},
                          capture_output=True, text=True, timeout=120, input=stdin)


def cli_json(palot: PalotClient, *args: str, stdin: str | None = None) -> Any:
    out = cli(palot, *args, "--json", stdin=stdin)
    assert out.returncode == 0, out.stderr + out.stdout
    return json.loads(out.stdout)


def cli_error(palot: PalotClient, *args: str) -> dict[str, str]:
    out = cli(palot, *args, "--json")
    assert out.returncode == 2, out.stdout + out.stderr
    return json.loads(out.stdout)["error"]


def untouched(repo: Path) -> None:
    """Nothing was created in ``repo``: only its own branch and its own worktree."""
    assert git(repo, "branch", "--format=%(refname:short)").split() == ["main"]
    assert len(git(repo, "worktree", "list").splitlines()) == 1


async def test_templates_are_added_listed_shown_replaced_and_removed_through_the_cli_and_the_client(
        palot: PalotClient, tmp_path: Path) -> None:
    web = make_repo(tmp_path / "web")
    (web / "src").mkdir()

    # Given a folder inside the repository, the template belongs to the repository.
    added = cli_json(palot, "templates", "add", "fix-issue", "--project", str(web / "src"), "--prompt",
                     "Fix issue #{issue} in {file}; keep {file} tidy.", "--title", "Fix an issue",
                     "--permission-mode", "auto", "--model", "palot-scripted/scripted")
    assert added["replaced"] is False and added["message"] == f"added template 'fix-issue' for {web}"
    assert added["template"]["variables"] == ["issue", "file"]
    general = await palot.template_add("fix-issue", "Fix issue {issue} anywhere.", setup_script="make setup")
    assert general.replaced is False and general.template.project is None
    assert general.message == "added template 'fix-issue' for every project"
    review = cli_json(palot, "templates", "add", "review", "--prompt", "-", stdin="Review the last commit.\n")
    assert review["template"]["prompt"] == "Review the last commit.\n" and review["template"]["variables"] == []

    listed = cli_json(palot, "templates", "list")
    assert [(t["name"], t["project"]) for t in listed] == [("fix-issue", None), ("fix-issue", str(web)),
                                                           ("review", None)]
    # In the project, its own fix-issue hides the one for every project.
    usable = await palot.templates(project=web)
    assert [(t.name, t.project) for t in usable] == [("fix-issue", str(web)), ("review", None)]
    assert [t["name"] for t in cli_json(palot, "templates", "--project", str(web))] == ["fix-issue", "review"]

    shown = await palot.template_show("fix-issue", project=web)
    assert (shown.title, shown.permission_mode, shown.model) == ("Fix an issue", "auto", "palot-scripted/scripted")
    assert shown.variables == ["issue", "file"] and shown.environment is None
    assert (await palot.template_show("fix-issue")).project is None  # no project: the one for every project
    text = cli(palot, "templates", "show", "fix-issue", "--project", str(web))
    assert text.returncode == 0
    assert "variables: issue, file" in text.stdout and "Fix issue #{issue} in {file}" in text.stdout
    spawn_line = f"palot agents spawn {web} --template fix-issue --var issue=… --var file=…"
    assert spawn_line in text.stdout.replace("\n", "")

    # Adding it again replaces it, and says so.
    again = await palot.template_add("fix-issue", "Fix issue {issue} in {file}.", project=web)
    assert again.replaced is True and again.message == f"replaced template 'fix-issue' for {web}"
    assert again.template.created_at == shown.created_at and again.template.updated_at > shown.updated_at
    assert again.template.title is None  # a replacement is the whole template

    removed = cli_json(palot, "templates", "remove", "fix-issue", "--project", str(web))
    assert removed["message"] == f"removed template 'fix-issue' of {web}"
    error = cli_error(palot, "templates", "remove", "fix-issue", "--project", str(web))
    assert error["code"] == "template_not_found" and "palot templates list" in error["fix"]
    assert (await palot.templates(project=web))[0].project is None  # the one for every project shows through
    assert (await palot.template_remove("fix-issue")).message == "removed template 'fix-issue' for every project"
    await palot.template_remove("review")
    with pytest.raises(TemplateNotFound, match="no template 'review'"):
        await palot.template_show("review")
    assert await palot.templates() == []
    events = [e.event for e in await palot.audit(limit=1000)]
    assert {"template_added", "template_replaced", "template_removed"} <= set(events)


async def test_an_agent_spawned_from_a_template_gets_the_filled_prompt_and_completes(
        palot: PalotClient, tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "app")
    await palot.template_add("greet", GREETING, project=repo, title="Greeting", permission_mode="auto")

    spawned = cli_json(palot, "agents", "spawn", str(repo), "--template", "greet", "--var", "name=Ada", "--wait",
                       "--timeout", "90")
    filled = "Write a templated greeting for Ada in GREETING.md, signed {the team}."
    assert spawned["status"] == "completed", spawned
    assert (spawned["prompt"], spawned["title"], spawned["permission_mode"]) == (filled, "Greeting", "auto")
    worktree = Path(spawned["environment"]["host_path"])
    # The scripted model matched the filled-in text: it wrote the greeting.
    assert (worktree / "GREETING.md").read_text() == "Hello, Ada!\n"
    conversation = await palot.messages(spawned["id"])
    assert conversation[0].role == "user" and conversation[0].text == filled
    assert conversation[-1].text == "Wrote GREETING.md for Ada."
    spawned_entry = [e for e in await palot.audit(spawned["id"]) if e.event == "spawned"]
    assert spawned_entry[0].detail["template"] == "greet"

    # The client too; what the request gives wins over the template's defaults.
    agent = await palot.spawn(repo, template="greet", vars={"name": "Ada"}, title="Mine", permission_mode="default")
    assert (agent.prompt, agent.title, agent.permission_mode) == (filled, "Mine", "default")
    assert (await palot.wait(agent.id, timeout=90)).status == api.AgentStatus.COMPLETED


async def test_bad_names_braces_and_variables_are_clear_errors_that_create_nothing(
        palot: PalotClient, tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "quiet")
    await palot.template_add("two-vars", "Fix {issue} in {file}.", project=repo)
    before = {a.id for a in await palot.list(include_external=False)}

    # Every missing variable is named, with the fix.
    error = cli_error(palot, "agents", "spawn", str(repo), "--template", "two-vars")
    assert error["message"] == "template 'two-vars' needs a value for issue, file"
    assert error["fix"] == "give --var issue=VALUE --var file=VALUE"
    with pytest.raises(InvalidInput, match="needs a value for file — give --var file=VALUE$"):
        await palot.spawn(repo, template="two-vars", vars={"issue": "42"})
    # A variable it does not have (a typo) is refused too.
    with pytest.raises(InvalidInput) as typo:
        await palot.spawn(repo, template="two-vars", vars={"issue": "42", "flie": "a.py"})
    assert typo.value.message == "template 'two-vars' needs a value for file and has no variable flie"
    assert typo.value.fix == "give --var file=VALUE; drop flie (its variables: issue, file)"
    # A prompt and a template, vars without a template, an unknown template, a bad name.
    with pytest.raises(InvalidInput, match="give a prompt or a template, not both"):
        await palot.spawn(repo, "write hello", template="two-vars", vars={"issue": "1", "file": "a"})
    with pytest.raises(InvalidInput, match="give the template too"):
        await palot.spawn(repo, "write hello", vars={"issue": "1"})
    with pytest.raises(TemplateNotFound, match=f"no template 'nope' for {repo} or for every project"):
        await palot.spawn(repo, template="nope")
    error = cli_error(palot, "agents", "spawn", str(repo), "--template", "no good")
    assert "'no good' is not a template name: use letters, digits, - and _" in error["message"]
    assert cli(palot, "agents", "spawn", str(repo), "--template", "two-vars", "--var", "issue").returncode == 2
    error = cli_error(palot, "agents", "spawn", str(repo), "--template", "two-vars", "--var", "issue=1", "--var",
                      "issue=2", "--var", "file=x")
    assert error["message"] == "--var issue is given twice"

    # Adding: a bad name, a stray brace, a placeholder that is no name, a folder that is no repository.
    error = cli_error(palot, "templates", "add", "no/slash", "--prompt", "x")
    assert "'no/slash' is not a template name" in error["message"]
    with pytest.raises(InvalidInput) as brace:
        await palot.template_add("json", 'Return {"ok": true}.')
    assert brace.value.message == """'{"ok": true}' in the prompt is not a variable name"""
    assert "{{ or }} for a literal brace" in (brace.value.fix or "")
    with pytest.raises(InvalidInput, match="a lone '}' at character 7"):
        await palot.template_add("lone", "Close } here.")
    plain = tmp_path / "plain"
    plain.mkdir()
    with pytest.raises(InvalidInput, match="not inside a git work tree"):
        await palot.template_add("somewhere", "x", project=plain)

    assert {a.id for a in await palot.list(include_external=False)} == before
    assert {t.name for t in await palot.templates()}.isdisjoint({"json", "lone", "somewhere", "no/slash"})
    untouched(repo)
