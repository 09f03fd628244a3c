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
