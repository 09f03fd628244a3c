"""``palot agents …``: list, spawn, steer, review, move and watch agents — each command one action of the
service, printed as a table, lines or JSON — and their arguments."""

from __future__ import annotations

import argparse
import asyncio
from typing import Any

from rich.text import Text

from .. import api, render
from ..client import PalotClient
from ..errors import PalotError
from .bulk import BULK_COMMANDS, _add_bulk_options, _bulk_wanted, cmd_bulk
from .common import (
    EXIT_FAILED,
    EXIT_OK,
    EXIT_STILL_RUNNING,
    _dump,
    _print_each,
    _progress,
    _with_client,
    console,
)
from .requests import ACTION_COMMANDS, _help, _var, request_args

#: The actions of ``palot agents <command>``, by command.
AGENT_ACTIONS = {cmd[1]: action for action, cmd in ACTION_COMMANDS.items() if cmd[0] == "agents"}
LONG_ACTIONS = {name for name, spec in api.ACTIONS.items() if spec.long}


def cmd_agents(args: argparse.Namespace) -> int:
    command = args.action
    if command == "watch":
        return cmd_watch(args)
    if command == "bulk" or (command in BULK_COMMANDS and _bulk_wanted(args)):
        return cmd_bulk(args)
    action = AGENT_ACTIONS[command]

    overview: list[api.ServiceStatus] = []

    async def run(client: PalotClient) -> Any:
        progress = _progress(args) if action in LONG_ACTIONS and action != "wait" else None
        result = await client.call(action, request_args(action, args), progress=progress)
        if action == "list" and not args.json:
            try:
                overview.append(await client.status())  # today's spend and the inbox, under the table
            except PalotError:
                pass  # the list is the answer; the overview line is a bonus
        if action == "get":
            return {"agent": result, "activity": await client.activity(result.id)}
        if action == "spawn" and args.wait:
            return await client.wait(result.id, timeout=args.timeout)
        if action == "apply":
            return {"applied": result}
        if action == "destroy":
            return {"destroyed": args.agent}
        return result

    result = asyncio.run(_with_client(args, run))
    if args.json:
        _dump(result)
    else:
        _print_result(command, result, args)
        line = render.overview_line(overview[0]) if overview else None
        if line is not None:
            console.print(line, soft_wrap=True)
    return _outcome_code(args, result)


def _outcome_code(args: argparse.Namespace, result: Any) -> int:
    """Non-zero when what a command waited for did not go well: the agent failed, or is still running."""
    waited = args.action in ("wait", "watch") or (args.action == "spawn" and args.wait)
    if not waited or not isinstance(result, api.Agent):
        return EXIT_OK
    if result.status == api.AgentStatus.FAILED:
        return EXIT_FAILED
    return EXIT_STILL_RUNNING if result.status.active else EXIT_OK


def _print_result(command: str, result: Any, args: argparse.Namespace) -> None:
    if command == "list":
        console.print(render.agents_table(result) if result else "no agents yet — `palot agents spawn PATH PROMPT`")
    elif command == "show":
        agent = result["agent"]
        console.print(render.agents_table([agent]))
        env = agent.environment
        console.print(Text(f"directory: {env.directory}"
                           + (f" (on this machine: {env.host_path})" if env.host_path and env.host_path != env.directory
                              else "")))
        if env.unavailable:
            console.print(Text(env.unavailable, "yellow"))
        if env.branch:
            console.print(Text(f"branch: {env.branch}"))
        budget = render.budget_text(agent)
        if budget is not None:
            console.print(budget)
        if agent.pause_reason:
            console.print(Text.assemble(("paused by Palot:", "yellow"), f" {agent.pause_reason}"))
        if agent.notice and agent.notice != agent.error:
            console.print(Text.assemble(("note:", "yellow"), f" {agent.notice}"))
        if agent.error:
            console.print(Text.assemble(("error:", "red"), f" {agent.error}"))
        for p in agent.permissions:
            console.print(Text.assemble(("waiting for permission", "yellow"), f" {p.id}: {p.summary} — "
                                        f"`palot agents reply {agent.id} once|always|reject`"))
        for item in result["activity"]:
            console.print(render.activity_line(item))
    elif command == "activity":
        for item in result:
            console.print(render.activity_line(item))
    elif command == "messages":
        _print_each(result, render.message_text, "no messages yet")
    elif command == "diff":
        console.print(render.diff_summary(result))
        if result.unavailable:
            console.print(Text(result.unavailable, "yellow"))
        if not args.stat:
            console.print(render.patch_text(result.patch))
    elif command == "apply":
        console.print(Text(f"applied {len(result['applied'])} files to your checkout: {', '.join(result['applied'])}"))
    elif command == "destroy":
        console.print(Text(f"destroyed {result['destroyed']}"))
    elif command == "pr":
        console.print(Text(result.message))
    elif command == "move":
        console.print(Text(
            f"moved {result.agent_id} from its {result.source} to a {result.target} in {result.seconds:.1f} s: "
            f"{result.directory} on {result.branch}, {result.messages} messages, {result.files_changed} changed files"
            + (f", restarted: {'; '.join(result.processes_restarted)}" if result.processes_restarted else "")
            + (" — resumed with a note" if result.resumed else "")))
    elif command == "moves":
        _print_each(result, lambda m: Text(
            f"{m.id} → {m.target_type}: {m.state}" + (f" at {m.step}" if m.step else "")
            + (f" ({m.error})" if m.error else "")), "this agent has never moved")
    elif command == "audit":
        _print_each(result, render.audit_line, "the audit log is empty")
    elif command == "budget":
        console.print(render.agents_table([result]))
        console.print(render.budget_text(result) or Text("no budget"))
        if result.pause_reason:
            console.print(Text.assemble(("paused by Palot:", "yellow"), f" {result.pause_reason}"))
    elif command == "env":
        console.print(Text(f"{result.type} {result.state} at {result.directory} on {result.branch}"
                           + (f" — {result.resources}" if result.resources else "")))
        if result.dev_ports:
            console.print(Text(f"dev-server ports: {result.dev_ports} (PALOT_PORT={result.dev_port}, "
                               f"PALOT_PORTS={result.dev_ports})"))
        if result.unavailable:
            console.print(Text(result.unavailable, "yellow"))
        if result.notice and result.notice != result.unavailable:
            console.print(Text(result.notice, "yellow"))
    else:
        console.print(render.agents_table([result]))


def cmd_watch(args: argparse.Namespace) -> int:
    """Live events; with an agent, its events until it settles (exit code as ``palot agents wait``)."""

    async def run(client: PalotClient) -> api.Agent | None:
        watcher = render.EventPrinter(console)

        def show(event: api.Event) -> None:
            if args.json:
                print(event.model_dump_json(exclude_none=True), flush=True)
            else:
                watcher.show(event)

        agent = await client.get(args.agent) if args.agent else None
        agent_id = agent.id if agent else None
        if agent is not None and agent.status == api.AgentStatus.ARCHIVED:  # not in the replay; never changes
            show(api.Event(type=api.AGENT_UPDATED, agent_id=agent.id, agent=agent))
            return agent
        # replay: the state of every agent first, so a settled agent is known at once (no race with the stream)
        async for event in client.events(replay=True):
            if agent_id and event.agent_id != agent_id and event.type != api.RESYNC:
                continue
            show(event)
            if agent_id and event.type == api.AGENT_REMOVED:
                return None
            if agent_id and event.type == api.RESYNC:
                event = api.Event(type=api.AGENT_UPDATED, agent_id=agent_id, agent=await client.get(agent_id))
            if agent_id and event.agent is not None and event.agent.status in api.SETTLED:
                return event.agent
        return None

    result = asyncio.run(_with_client(args, run))
    return _outcome_code(args, result)


def _add_container_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--memory", help="container memory limit, e.g. 2g")
    parser.add_argument("--cpus", type=float, help="container CPU limit, e.g. 1.5")
    parser.add_argument("--pids", type=int, help="container process limit")
    parser.add_argument("--network", choices=["full", "none"], help="container network (default full)")
    parser.add_argument("--port", "--ports", dest="ports", type=int, action="append",
                        help="container port to publish on 127.0.0.1 (repeat)")


def _add_agent_commands(asub: Any) -> None:
    ls = asub.add_parser("list", help="agents across all projects")
    ls.add_argument("--project", help="a project's path, name or id")
    ls.add_argument("--status", action="append", help="running, waiting, paused, completed, failed, archived …")
    ls.add_argument("--env", "--environment", dest="environment", help="worktree, container, cloud or external")
    ls.add_argument("--all", "--include-archived", dest="include_archived", action="store_true",
                    help="include archived agents")
    ls.add_argument("--include-external", action=argparse.BooleanOptionalAction, default=True,
                    help="include OpenCode sessions Palot did not start (default: yes)")

    sp = asub.add_parser("spawn", help="start an agent in a new worktree, container or cloud environment")
    sp.add_argument("project", help="path of a git repository")
    sp.add_argument("prompt", nargs="?", help="what the agent should work on (or give --template)")
    sp.add_argument("--template", help=_help(api.SpawnRequest, "template") + " (see `palot templates list`)")
    sp.add_argument("--var", dest="vars", action="append", type=_var, metavar="NAME=VALUE",
                    help="a value for one of the template's {variables} (repeat)")
    sp.add_argument("--title")
    sp.add_argument("--model", help="provider/model from your OpenCode config (see `palot models`)")
    sp.add_argument("--base-branch", help="branch or commit to start from (default: HEAD)")
    sp.add_argument("--branch", help="branch to create (default: palot/<slug of the title>)")
    sp.add_argument("--setup-script", "--setup", dest="setup_script", help="a bash script run in the new environment first")
    sp.add_argument("--permission-mode", "--permission", dest="permission_mode", choices=api.PERMISSION_MODES,
                    help="ask: edits and commands wait for your approval; auto: allow everything "
                         "(default: the template's, else OpenCode's rules)")
    sp.add_argument("--env", "--environment", dest="environment", choices=api.TARGET_TYPES,
                    help="where the agent runs (default: the template's, else worktree; "
                         "container: its own container from the agent image; "
                         "cloud: a Cloudflare Container behind Palot's Worker, see `palot cloud`)")
    sp.add_argument("--budget-usd", type=float, help=_help(api.SpawnRequest, "budget_usd"))
    sp.add_argument("--budget-tokens", type=int, help=_help(api.SpawnRequest, "budget_tokens"))
    _add_container_options(sp)
    sp.add_argument("--wait", action="store_true", help="wait until the agent settles")
    sp.add_argument("--timeout", type=float, default=600, help="with --wait: seconds at most (default 600)")

    rt = asub.add_parser("retry", help="a new agent from the same prompt, base commit and options "
                                       "(the old one is left as it is)")
    rt.add_argument("agent")
    rc = asub.add_parser("request-changes", help="send the agent review comments on its diff as one prompt",
                         description="Each comment is PATH:LINE:TEXT or PATH:FIRST-LAST:TEXT, on a file and lines of "
                                     "the agent's diff (`palot agents diff AGENT`).")
    rc.add_argument("agent")
    rc.add_argument("--comment", dest="comments", action="append", metavar="PATH:LINE:TEXT",
                    help="a review comment, e.g. 'src/app.py:12:use a constant' (repeat)")
    rc.add_argument("--comments-file", metavar="FILE",
                    help='a JSON list of comments: [{"path": …, "line": …, "end_line"?: …, "comment": …}]')
    rc.add_argument("--note", help=_help(api.RequestChangesRequest, "note"))
    bk = asub.add_parser("bulk", help="archive, abort or destroy every agent the filters select (a plan first)")
    bk.add_argument("operation", choices=api.BULK_OPERATIONS)
    _add_bulk_options(bk)
    bk.add_argument("--force", action="store_true", help=_help(api.BulkRequest, "force"))

    ap = asub.add_parser("apply", help="apply the agent's changes to your checkout")
    ap.add_argument("agent")
    ap.add_argument("--path", help="only this file (relative to the project)")
    for name, helptext in (("abort", "stop the current turn (with filters instead of AGENT: of every agent they "
                                     "select)"),
                           ("archive", "stop the agent, remove its environment, keep its branch (with filters "
                                       "instead of AGENT: every agent they select)")):
        one = asub.add_parser(name, help=helptext)
        one.add_argument("agent", nargs="?")
        _add_bulk_options(one)
    for name, helptext in (("show", "one agent with its activity"),
                           ("messages", "the agent's conversation"),
                           ("env", "the agent's environment: state, directory, resources"),
                           ("moves", "the agent's moves between environments"),
                           ("pause", "save a cloud agent's code and conversation and stop its environment (no "
                                     "running costs)"),
                           ("resume", "start a paused cloud agent again, its code and conversation put back")):
        asub.add_parser(name, help=helptext).add_argument("agent")
    pr = asub.add_parser("prompt", help="send the agent another prompt")
    pr.add_argument("agent")
    pr.add_argument("text")
    pr.add_argument("--model", help="provider/model for this turn")
    rp = asub.add_parser("reply", help="answer a pending permission request")
    rp.add_argument("agent")
    rp.add_argument("reply", choices=api.REPLIES)
    rp.add_argument("--permission-id", help="which request (needed when several are pending)")
    rp.add_argument("--message", help="a note to the agent with a rejection")
    wt = asub.add_parser("wait", help="wait until the agent settles")
    wt.add_argument("agent")
    wt.add_argument("--timeout", type=float, default=600, help="seconds at most (default 600)")
    wt.add_argument("--until", action="append", choices=[s.value for s in api.AgentStatus],
                    help="a status to wait for (repeat; default: any settled one)")
    act = asub.add_parser("activity", help="the agent's structured activity")
    act.add_argument("agent")
    act.add_argument("--since", type=int, default=0, help="skip the first N items (a cursor)")
    df = asub.add_parser("diff", help="the agent's changes against its base commit")
    df.add_argument("agent")
    df.add_argument("--path", help="only this file")
    df.add_argument("--stat", action="store_true", help="file list only")
    prp = asub.add_parser("pr", help="push the agent's branch and open a PR (with gh when installed)")
    prp.add_argument("agent")
    prp.add_argument("--title")
    prp.add_argument("--body", help="the PR's description")
    prp.add_argument("--remote", default="origin")
    prp.add_argument("--base", help="branch the PR targets (default: the repository's default)")
    mv = asub.add_parser("move", help="move the agent to another environment, with its code and conversation")
    mv.add_argument("agent")
    mv.add_argument("target", choices=api.TARGET_TYPES, help="the new environment")
    _add_container_options(mv)
    mv.add_argument("--resume", action=argparse.BooleanOptionalAction, default=None,
                    help="send the agent a note to carry on (default: only if the move stopped a turn)")
    ds = asub.add_parser("destroy", help="remove the agent, its worktree and branch (with filters instead of AGENT: "
                                         "of every agent they select)")
    ds.add_argument("agent", nargs="?")
    ds.add_argument("--force", action="store_true", help="even if its changes were never applied or merged")
    _add_bulk_options(ds)
    au = asub.add_parser("audit", help="the audit log, oldest first")
    au.add_argument("agent", nargs="?", help="only this agent's events")
    au.add_argument("--limit", type=int, default=200, help="at most this many entries (default 200)")
    bu = asub.add_parser("budget", help="set the agent's budget (USD and/or tokens); a paused agent may go on")
    bu.add_argument("agent")
    bu.add_argument("usd", nargs="?", type=float, help=_help(api.BudgetRequest, "usd") + ", e.g. 1.50")
    bu.add_argument("--tokens", type=int, help=_help(api.BudgetRequest, "tokens"))
