"""Parity: the command line offers every action of the API, each request field as an argument of its name."""

from __future__ import annotations

import argparse

import pytest

from palot import api
from palot.admin import build_parser as full_parser
from palot.cli import ACTION_COMMANDS, NESTED, build_parser, request_args


def subcommand(parser: argparse.ArgumentParser, argv: list[str]) -> argparse.ArgumentParser:
    """The parser of the command ``argv`` (e.g. ["agents", "spawn"]), walking the subparsers."""
    for word in argv:
        subparsers = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
        assert subparsers, f"`palot {' '.join(argv)}`: no subcommands under {parser.prog}"
        assert word in subparsers[0].choices, f"`palot {' '.join(argv)}`: no command '{word}' in {parser.prog}"
        parser = subparsers[0].choices[word]
    return parser


def dests(parser: argparse.ArgumentParser) -> set[str]:
    return {a.dest for a in parser._actions}


def request_fields(action: str) -> list[str]:
    """The argument names an action needs: its request's fields, nested options by their own names."""
    fields: list[str] = []
    for name in api.ACTIONS[action].request.model_fields:
        fields += list(NESTED[name].model_fields) if name in NESTED else [name]
    return fields


def test_every_action_has_a_command():
    assert set(ACTION_COMMANDS) == set(api.ACTIONS)


@pytest.mark.parametrize("make_parser", [build_parser, full_parser], ids=["cli", "palot"])
@pytest.mark.parametrize("action", list(api.ACTIONS))
def test_every_request_field_is_an_argument_of_the_same_name(action: str, make_parser):
    parser = subcommand(make_parser(), ACTION_COMMANDS[action])
    missing = [f for f in request_fields(action) if f not in dests(parser)]
    assert not missing, f"`palot {' '.join(ACTION_COMMANDS[action])}` lacks {missing} of '{action}'"


def test_container_options_cover_the_api_including_ports():
    assert set(api.ContainerOptions.model_fields) == {"memory", "cpus", "pids", "network", "ports"}
    for command in (ACTION_COMMANDS["spawn"], ACTION_COMMANDS["move"]):
        assert set(api.ContainerOptions.model_fields) <= dests(subcommand(build_parser(), command))


def test_a_full_command_line_becomes_a_valid_request():
    args = build_parser().parse_args([
        "agents", "spawn", "/tmp/project", "do it", "--env", "container", "--title", "T", "--model", "p/m",
        "--base-branch", "dev", "--branch", "b", "--setup-script", "make", "--permission-mode", "ask",
        "--memory", "2g", "--cpus", "1.5", "--pids", "100", "--network", "none", "--port", "8080", "--port", "9090"])
    request = api.request_for("spawn", {k: v for k, v in request_args("spawn", args).items() if v is not None})
    assert request.model_dump(exclude_none=True) == {
        "project": "/tmp/project", "prompt": "do it", "environment": "container", "title": "T", "model": "p/m",
        "base_branch": "dev", "branch": "b", "setup_script": "make", "permission_mode": "ask",
        "options": {"memory": "2g", "cpus": 1.5, "pids": 100, "network": "none", "ports": [8080, 9090]}}


def test_the_old_spellings_still_work():
    args = build_parser().parse_args(["agents", "spawn", "/p", "x", "--setup", "make", "--permission", "auto"])
    assert (args.setup_script, args.permission_mode) == ("make", "auto")
    listed = build_parser().parse_args(["agents", "list", "--all", "--env", "worktree"])
    assert (listed.include_archived, listed.environment) == (True, "worktree")
    moved = request_args("move", build_parser().parse_args(["agents", "move", "ag_1", "container", "--no-resume"]))
    assert (moved["resume"], moved["options"]) == (False, None)


def _request(action: str, argv: list[str]) -> dict:
    args = build_parser().parse_args(argv)
    values = {k: v for k, v in request_args(action, args).items() if v is not None}
    return api.request_for(action, values).model_dump(exclude_none=True)


def test_inbox_reply_budget_and_spawn_budgets_become_valid_requests():
    assert _request("inbox_reply", ["inbox", "reply", "once", "--all-from", "ag_1"]) == {"reply": "once",
                                                                                         "agent": "ag_1"}
    assert _request("inbox_reply", ["inbox", "reply", "reject", "per_1", "per_2", "--tool", "bash",
                                    "--message", "not now"]) == {
        "reply": "reject", "permission_ids": ["per_1", "per_2"], "tool": "bash", "message": "not now"}
    # --project given before `reply` holds (the reply's own --project does not reset it)
    assert _request("inbox_reply", ["inbox", "--project", "app", "reply", "always", "--tool", "edit"]) == {
        "reply": "always", "tool": "edit", "project": "app"}
    assert _request("inbox", ["inbox", "--project", "app"]) == {"project": "app"}
    assert build_parser().parse_args(["inbox"]).inbox_action is None
    assert _request("budget", ["agents", "budget", "ag_1", "0.5"]) == {"agent": "ag_1", "usd": 0.5}
    assert _request("budget", ["agents", "budget", "ag_1", "--tokens", "90000"]) == {"agent": "ag_1",
                                                                                     "tokens": 90000}
    spawn = _request("spawn", ["agents", "spawn", "/p", "x", "--budget-usd", "1.5", "--budget-tokens", "200000"])
    assert (spawn["budget_usd"], spawn["budget_tokens"]) == (1.5, 200000)
    with pytest.raises(api.PalotError, match="say which requests"):
        _request("inbox_reply", ["inbox", "reply", "once"])
    with pytest.raises(api.PalotError, match="give a budget"):
        _request("budget", ["agents", "budget", "ag_1"])


def test_the_overview_line_says_only_what_applies():
    from palot import render

    def status(**fields) -> api.ServiceStatus:
        return api.ServiceStatus(palot_version="1", api_version=1, pid=1, home="/h", started_at=0,
                                 opencode_connected=True, opencode_restarts=0, agents=0, clients=0,
                                 upstream_subscriptions=0, **fields)

    assert render.overview_line(status()) is None
    assert render.overview_line(status(spend=api.Spend(day="2025-01-01"))) is None  # nothing spent, no budget
    line = render.overview_line(status(spend=api.Spend(day="2025-01-01", usd=0.42, tokens=1200, budget_usd=20),
                                       inbox=3))
    assert line is not None and line.plain == "today: $0.42 of $20.00 · 3 waiting on you (palot inbox)"
    assert render.overview_line(status(inbox=1)).plain == "1 waiting on you (palot inbox)"


def test_bulk_filters_on_archive_abort_destroy_and_review_comments_become_valid_requests():
    archive = build_parser().parse_args(["agents", "archive", "--status", "completed", "--project", "app",
                                         "--older-than", "7d", "--env", "worktree", "--title", "deps"])
    assert api.request_for("bulk", {k: v for k, v in request_args("bulk", archive).items() if v is not None}
                           ).model_dump(exclude_none=True) == {
        "operation": "archive", "status": [api.AgentStatus.COMPLETED], "project": "app", "environment": "worktree",
        "older_than": "7d", "title": "deps", "force": False, "dry_run": True}
    destroy = _request("bulk", ["agents", "destroy", "--status", "failed", "--force", "--only", "ag_1"])
    assert (destroy["operation"], destroy["force"], destroy["agents"]) == ("destroy", True, ["ag_1"])
    assert _request("bulk", ["agents", "bulk", "abort", "--env", "cloud"])["operation"] == "abort"
    review = _request("request_changes", ["agents", "request-changes", "ag_1", "--comment", "src/a.py:3:use x",
                                          "--comment", "src/a.py:10-12:split: this", "--note", "thanks"])
    assert review == {"agent": "ag_1", "note": "thanks", "comments": [
        {"path": "src/a.py", "line": 3, "comment": "use x"},
        {"path": "src/a.py", "line": 10, "end_line": 12, "comment": "split: this"}]}
    with pytest.raises(api.PalotError, match="not a review comment"):
        _request("request_changes", ["agents", "request-changes", "ag_1", "--comment", "src/a.py:x:use x"])
    with pytest.raises(api.PalotError, match="no comments"):
        _request("request_changes", ["agents", "request-changes", "ag_1"])
