"""``palot templates [list|show|add|remove]``: the prompt templates agents can be spawned from."""

from __future__ import annotations

import argparse
import asyncio
from typing import Any

from rich.text import Text

from .. import api, render
from .common import EXIT_OK, _dump, _with_client, console
from .requests import ACTION_COMMANDS, _help, request_args

#: The actions of ``palot templates <command>``, by command.
TEMPLATE_ACTIONS = {cmd[1]: action for action, cmd in ACTION_COMMANDS.items() if cmd[0] == "templates"}


def cmd_templates(args: argparse.Namespace) -> int:
    """``palot templates [list|show|add|remove]``: the prompt templates agents can be spawned from."""
    action = TEMPLATE_ACTIONS[args.template_action or "list"]
    result = asyncio.run(_with_client(args, lambda c: c.call(action, request_args(action, args))))
    if args.json:
        _dump(result)
    elif action == "templates":
        console.print(render.templates_text(result) if result else Text(
            "no templates yet — `palot templates add NAME --prompt TEXT [--project PATH]`"), soft_wrap=True, end="")
    elif action == "template_show":
        console.print(render.template_text(result), soft_wrap=True)
    elif action == "template_add":
        console.print(Text(result.message + (f" (variables: {', '.join(result.template.variables)})"
                                             if result.template.variables else "")), soft_wrap=True)
        console.print(Text(f"spawn with: {render.template_spawn_command(result.template)}", "bright_black"),
                      soft_wrap=True)
    else:
        console.print(Text(result.message), soft_wrap=True)
    return EXIT_OK


def _add_template_commands(sub: Any) -> list[argparse.ArgumentParser]:
    """``palot templates``: list (the default), show, add, remove; returns the parsers that take ``--json``."""
    tp = sub.add_parser("templates", help="reusable prompts with {variables}, per project or for every project "
                                          "(`palot agents spawn PATH --template NAME --var k=v`)")
    tsub = tp.add_subparsers(dest="template_action", required=False)
    ls = tsub.add_parser("list", help="the templates (with --project: those usable there)")
    # SUPPRESS: `palot templates --project P list` keeps the P given before `list` (as --json)
    ls.add_argument("--project", default=argparse.SUPPRESS, help=_help(api.TemplatesRequest, "project"))
    tp.add_argument("--project", help=_help(api.TemplatesRequest, "project"))
    sh = tsub.add_parser("show", help="one template: its prompt, variables and defaults")
    rm = tsub.add_parser("remove", help="remove a template (agents spawned from it are not touched)")
    for parser in (sh, rm):
        parser.add_argument("name", help=_help(api.TemplateRef, "name"))
        parser.add_argument("--project", help=_help(api.TemplateRef, "project"))
    ad = tsub.add_parser("add", help="add a template, or replace the one of that name in that project")
    ad.add_argument("name", help=_help(api.TemplateAddRequest, "name"))
    ad.add_argument("--prompt", required=True, help=_help(api.TemplateAddRequest, "prompt") + "; - reads stdin")
    ad.add_argument("--project", help=_help(api.TemplateAddRequest, "project"))
    ad.add_argument("--title", help=_help(api.TemplateAddRequest, "title"))
    ad.add_argument("--env", "--environment", dest="environment", choices=api.TARGET_TYPES,
                    help=_help(api.TemplateAddRequest, "environment"))
    ad.add_argument("--model", help=_help(api.TemplateAddRequest, "model"))
    ad.add_argument("--permission-mode", "--permission", dest="permission_mode", choices=api.PERMISSION_MODES,
                    help=_help(api.TemplateAddRequest, "permission_mode"))
    ad.add_argument("--setup-script", "--setup", dest="setup_script", help=_help(api.TemplateAddRequest,
                                                                                 "setup_script"))
    for parser in (ls, sh, rm, ad):
        parser.add_argument("--json", action="store_true", default=argparse.SUPPRESS, help="machine-readable output")
    tp.set_defaults(func=cmd_templates)
    return [tp]
