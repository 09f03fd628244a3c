"""``palot``: the command line, thin over the core. Every command takes ``--json``."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from rich.text import Text

from . import render
from .agents import Agent, AgentStatus
from .core import Palot
from .errors import PalotError
from .install import doctor
from .paths import PalotPaths
from .servers import ServerManager

# Strings print as written (agent titles, paths and errors may contain "[/x]"); style goes in ``Text``.
console = render.console()
err_console = render.console(stderr=True)


def _dump(value: Any) -> None:
    def default(o: Any) -> Any:
        if hasattr(o, "model_dump"):
            return o.model_dump(mode="json")
        raise TypeError(type(o).__name__)

    print(json.dumps(value, default=default, indent=2))


async def _with_palot(fn: Callable[[Palot], Awaitable[Any]]) -> Any:
    # Supervision is the long-lived processes' job (`palot up`, front ends); one-shot commands just attach.
    palot = Palot(attach_any=True, supervise=False)
    await palot.start()
    try:
        return await fn(palot)
    finally:
        await palot.close()


# --- commands ------------------------------------------------------------------


def cmd_doctor(args: argparse.Namespace) -> int:
    paths = PalotPaths.default()
    checks = doctor(paths, fix=args.fix, progress=(lambda m: None) if args.quiet else err_console.print)
    running = ServerManager.read_running(paths)
    if args.json:
        _dump({"checks": [c.__dict__ for c in checks],
               "server": {"url": running.url, "pid": running.pid} if running else None})
    elif not args.quiet or not all(c.ok for c in checks):
        for c in checks:
            line = Text.assemble(("✓", "green") if c.ok else ("✕", "red"), f" {c.name:9} {c.detail}")
            if c.fix:
                line.append_text(Text.assemble("\n  ", ("fix:", "yellow"), f" {c.fix}"))
            console.print(line)
        console.print(f"  server    {running.url + f' (pid {running.pid})' if running else 'not running'}")
    return 0 if all(c.ok for c in checks) else 1


def cmd_up(args: argparse.Namespace) -> int:
    async def run() -> Any:
        manager = ServerManager(PalotPaths.default(), isolated=args.isolated, scripted=args.scripted,
                                port=args.port, supervise=False)
        state = await manager.start()
        await manager.close()
        return manager, state

    manager, state = asyncio.run(run())
    info = {"url": state.url, "pid": state.pid, "attached": manager.attached, "version": state.version,
            "scripted": bool(manager.scripted), "isolated": manager.isolated}
    if args.json:
        _dump(info)
    else:
        verb = "already running" if manager.attached else "started"
        console.print(f"OpenCode {state.version} {verb} at {state.url} (pid {state.pid})"
                      + (" with the scripted model" if manager.scripted else ""))
    return 0


def cmd_down(args: argparse.Namespace) -> int:
    paths = PalotPaths.default()
    running = ServerManager.read_running(paths)
    asyncio.run(ServerManager(paths, supervise=False).stop())
    if args.json:
        _dump({"stopped": bool(running)})
    else:
        console.print("stopped the shared OpenCode server" if running else "no Palot server was running")
    return 0


def cmd_agents(args: argparse.Namespace) -> int:
    action = args.action

    async def run(palot: Palot) -> Any:
        a = palot.agents
        if action == "list":
            return a.list(project=args.project, status=args.status, environment=args.env,
                          include_archived=args.all)
        if action == "show":
            agent = await a.get(args.agent)
            return {"agent": agent, "activity": await a.activity(agent.id)}
        if action == "spawn":
            progress = (lambda m: None) if args.json else (lambda m: err_console.print(Text(m, "bright_black")))
            agent = await a.spawn(args.project, args.prompt, title=args.title, model=args.model,
                                  base_branch=args.base_branch, branch=args.branch, setup_script=args.setup,
                                  permission_mode=args.permission, environment=args.env,
                                  options=_container_options(args), progress=progress)
            if args.wait:
                agent = await a.wait(agent.id, timeout=args.timeout)
            return agent
        if action == "prompt":
            return await a.prompt(args.agent, args.text)
        if action == "abort":
            return await a.abort(args.agent)
        if action == "reply":
            return await a.reply_permission(args.agent, args.reply, permission_id=args.permission_id)
        if action == "wait":
            return await a.wait(args.agent, timeout=args.timeout)
        if action == "activity":
            return await a.activity(args.agent, since=args.since)
        if action == "diff":
            return await a.diff(args.agent, path=args.path)
        if action == "apply":
            return {"applied": await a.apply(args.agent)}
        if action == "archive":
            return await a.archive(args.agent)
        if action == "pr":
            return await a.create_pr(args.agent, title=args.title, remote=args.remote, base=args.base)
        if action == "env":
            return await a.environment(args.agent)
        if action == "destroy":
            await a.destroy(args.agent, force=args.force)
            return {"destroyed": args.agent}
        if action == "move":
            progress = (lambda m: None) if args.json else (lambda m: err_console.print(Text(m, "bright_black")))
            return await a.move(args.agent, args.target, options=_container_options(args), resume=args.resume,
                                progress=progress)
        if action == "moves":
            return palot.migrations.history(args.agent)
        raise AssertionError(action)

    result = asyncio.run(_with_palot(run))
    if args.json:
        _dump(result)
    else:
        _print_result(action, result, args)
    return _outcome_code(args, result)


#: Exit codes (README: "Exit codes"). 2 is any error Palot refused or could not carry out (see ``main``).
EXIT_OK, EXIT_FAILED, EXIT_ERROR, EXIT_STILL_RUNNING, EXIT_BUG = 0, 1, 2, 3, 70


def _outcome_code(args: argparse.Namespace, result: Any) -> int:
    """Non-zero when what a command waited for did not go well: the agent failed, or is still running."""
    waited = args.action == "wait" or (args.action == "spawn" and args.wait)
    if not waited or not isinstance(result, Agent):
        return EXIT_OK
    if result.status == AgentStatus.FAILED:
        return EXIT_FAILED
    return EXIT_STILL_RUNNING if result.status.active else EXIT_OK


def _container_options(args: argparse.Namespace) -> dict[str, Any] | None:
    """The container options given on the command line (spawn, move), or None."""
    options = {k: v for k, v in (("memory", args.memory), ("cpus", args.cpus), ("pids", args.pids),
                                 ("network", args.network), ("ports", args.port)) if v}
    return options or None


def _add_container_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--memory", help="container memory limit, e.g. 2g")
    parser.add_argument("--cpus", type=float, help="container CPU limit, e.g. 1.5")
    parser.add_argument("--pids", type=int, help="container process limit")
    parser.add_argument("--network", choices=["full", "none"], help="container network (default full)")
    parser.add_argument("--port", type=int, action="append", help="container port to publish on 127.0.0.1 (repeat)")


def _print_result(action: str, result: Any, args: argparse.Namespace) -> None:
    if action == "list":
        console.print(render.agents_table(result) if result else "no agents yet — `palot agents spawn PATH PROMPT`")
    elif action == "show":
        agent = result["agent"]
        console.print(render.agents_table([agent]))
        env = agent.environment
        console.print(f"directory: {env.directory}"
                      + (f" (on this machine: {env.host_path})" if env.host_path and env.host_path != env.directory
                         else ""))
        if env.unavailable:
            console.print(Text(env.unavailable, "yellow"))
        if agent.environment.branch:
            console.print(f"branch: {agent.environment.branch}")
        if agent.error:
            console.print(Text.assemble(("error:", "red"), f" {agent.error}"))
        for p in agent.permissions:
            console.print(Text.assemble(("waiting for permission", "yellow"), f" {p.id}: {p.summary} — "
                                        f"`palot agents reply {agent.id} once|always|reject`"))
        for item in result["activity"]:
            console.print(render.activity_line(item))
    elif action == "activity":
        for item in result:
            console.print(render.activity_line(item))
    elif action == "diff":
        console.print(render.diff_summary(result))
        if not args.stat:
            console.print(render.patch_text(result.patch))
    elif action == "apply":
        console.print(f"applied {len(result['applied'])} files to your checkout: {', '.join(result['applied'])}")
    elif action == "destroy":
        console.print(f"destroyed {result['destroyed']}")
    elif action == "pr":
        console.print(result.message)
    elif action == "move":
        console.print(f"moved {result.agent_id} from its {result.source} to a {result.target} in {result.seconds:.1f} s: "
                      f"{result.directory} on {result.branch}, {result.messages} messages, "
                      f"{result.files_changed} changed files"
                      + (f", restarted: {'; '.join(result.processes_restarted)}" if result.processes_restarted else "")
                      + (" — resumed with a note" if result.resumed else ""))
    elif action == "moves":
        for m in result:
            console.print(f"{m.id} {m.manifest['source']['type']} → {m.target_type}: {m.state}"
                          + (f" ({m.error})" if m.error else ""))
        if not result:
            console.print("this agent has never moved")
    elif action == "env":
        console.print(f"{result.type} {result.state} at {result.directory} on {result.branch}"
                      + (f" — {result.resources}" if result.resources else ""))
    else:
        console.print(render.agents_table([result]))


def cmd_models(args: argparse.Namespace) -> int:
    models = asyncio.run(_with_palot(lambda palot: palot.agents.models(args.project)))
    if args.json:
        _dump({"models": models})
    else:
        for name in models:
            console.print(name)
        if not models:
            console.print("no models: add a provider to your OpenCode config (`opencode auth login`)")
    return 0


def cmd_images(args: argparse.Namespace) -> int:
    from .images import build_agent_image, image_status
    from .paths import cache_dir

    if args.action == "build":
        progress = (lambda m: None) if args.json else err_console.print
        build_agent_image(PalotPaths.default(), cache=cache_dir(), progress=progress)
    status = image_status()
    if args.json:
        _dump(status.__dict__)
    else:
        state = "current" if status.current else "outdated (run `palot images build`)" if status.present else \
            "missing (run `palot images build`)"
        console.print(f"{status.image}: {state}; offline base image {'present' if status.base_present else 'absent'}")
    return 0


def cmd_cloud(args: argparse.Namespace) -> int:
    from .cloud import config as cloud_config
    from .cloud import manage
    from .store import Store

    paths = PalotPaths.default()
    paths.ensure()
    progress = (lambda m: None) if args.json else err_console.print
    if args.action == "deploy":
        from .cloud.deploy import deploy

        cfg = deploy(paths, progress=progress)
        result: Any = {"url": cfg.url, "deployed": True}
    elif args.action == "connect":
        token = args.token or os.environ.get("PALOT_CLOUD_TOKEN") or (sys.stdin.readline().strip()
                                                                       if not sys.stdin.isatty() else "")
        # Proven first (reachable, token accepted), saved after: a bad URL or token changes nothing.
        result = asyncio.run(manage.status(cloud_config.CloudConfig(cloud_config.check_url(args.url), token),
                                           Store(paths.store)))
        cloud_config.save(paths, args.url, token)
    elif args.action == "status":
        result = asyncio.run(manage.status(cloud_config.load(paths), Store(paths.store)))
    else:  # destroy-all
        if not args.yes:
            raise PalotError("destroy-all removes every cloud environment and the agents' unpublished work in them",
                             "run `palot cloud destroy-all --yes` if that is what you want")
        result = {"destroyed": asyncio.run(manage.destroy_all(cloud_config.load(paths), Store(paths.store)))}
    if args.json:
        _dump(result)
    elif args.action in ("status", "connect"):
        console.print(f"Worker {result['url']}: {result['worker'].get('instance_type')} instances, "
                      f"sleep after {result['worker'].get('sleep_after')}")
        for e in result["environments"]:
            cost = e["cost_usd_estimate"]
            console.print(f"  {e['id']} {e['status']} agent={e['agent_id'] or '-'} {e['instance_type']} "
                          f"{e['running_seconds']:.0f} s" + (f" ≤ ${cost:.4f}" if cost is not None else ""))
        console.print(f"estimated cost so far: ≤ ${result['total_cost_usd_estimate']:.4f}")
    elif args.action == "deploy":
        console.print(f"deployed: {result['url']} (token saved, encrypted)")
    else:
        console.print(f"destroyed {len(result['destroyed'])} cloud environment(s)")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from .demo import run_demo

    return asyncio.run(run_demo(keep=args.keep, console=console))


# --- parser --------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="palot", description="A control plane for OpenCode coding agents.")
    sub = p.add_subparsers(dest="command", required=True)

    d = sub.add_parser("doctor", help="check (and with --fix install) OpenCode, ripgrep and git")
    d.add_argument("--fix", action="store_true", help="install what is missing")
    d.add_argument("--quiet", action="store_true", help="print only problems")
    d.set_defaults(func=cmd_doctor)

    u = sub.add_parser("up", help="start the shared OpenCode server (or report the running one)")
    u.add_argument("--scripted", nargs="?", const="demo", metavar="SCRIPT",
                   help="use Palot's scripted model (default script: demo) instead of your providers")
    u.add_argument("--isolated", action="store_true", help="give OpenCode its own config and data under Palot's dir")
    u.add_argument("--port", type=int, help="port on 127.0.0.1 (default: a free one)")
    u.set_defaults(func=cmd_up)

    dn = sub.add_parser("down", help="stop the shared OpenCode server")
    dn.set_defaults(func=cmd_down)

    demo = sub.add_parser("demo", help="run two agents on a sample project offline, with the scripted model")
    demo.add_argument("--keep", action="store_true", help="leave the demo's server running at the end")
    demo.set_defaults(func=cmd_demo)

    mo = sub.add_parser("models", help="the provider/model names agents can use (for --model)")
    mo.add_argument("project", nargs="?", help="a project's path (its opencode.json may add models; default: here)")
    mo.set_defaults(func=cmd_models)

    im = sub.add_parser("images", help="the container agent image: status, or build it (offline too)")
    im.add_argument("action", choices=["status", "build"])
    im.set_defaults(func=cmd_images)

    ag = sub.add_parser("agents", help="list, spawn, steer and review agents")
    asub = ag.add_subparsers(dest="action", required=True)
    ls = asub.add_parser("list", help="agents across all projects")
    ls.add_argument("--project", help="a project's path, name or id")
    ls.add_argument("--status", action="append", help="running, waiting, paused, completed, failed, archived …")
    ls.add_argument("--env", help="worktree, container, cloud or external")
    ls.add_argument("--all", action="store_true", help="include archived agents")
    sp = asub.add_parser("spawn", help="start an agent in a new worktree, container or cloud environment")
    sp.add_argument("project", help="path of a git repository")
    sp.add_argument("prompt", help="what the agent should work on")
    sp.add_argument("--title")
    sp.add_argument("--model", help="provider/model from your OpenCode config")
    sp.add_argument("--base-branch", help="branch or commit to start from (default: HEAD)")
    sp.add_argument("--branch", help="branch to create (default: palot/<slug of the title>)")
    sp.add_argument("--setup", help="a bash script run in the new worktree first")
    sp.add_argument("--permission", default="default", choices=["default", "ask", "auto"],
                    help="ask: edits and commands wait for your approval; auto: allow everything")
    sp.add_argument("--env", default="worktree", choices=["worktree", "container", "cloud"],
                    help="where the agent runs (container: its own container from the agent image; "
                         "cloud: a Cloudflare Container behind Palot's Worker, see `palot cloud`)")
    _add_container_options(sp)
    sp.add_argument("--wait", action="store_true", help="wait until the agent settles")
    sp.add_argument("--timeout", type=float, default=600)
    for name, helptext in (("show", "one agent with its activity"), ("abort", "stop the current turn"),
                           ("apply", "apply the agent's changes to your checkout"),
                           ("archive", "stop the agent, remove its worktree, keep its branch")):
        asub.add_parser(name, help=helptext).add_argument("agent")
    pr = asub.add_parser("prompt", help="send the agent another prompt")
    pr.add_argument("agent")
    pr.add_argument("text")
    rp = asub.add_parser("reply", help="answer a pending permission request")
    rp.add_argument("agent")
    rp.add_argument("reply", choices=["once", "always", "reject"])
    rp.add_argument("--permission-id")
    wt = asub.add_parser("wait", help="wait until the agent settles")
    wt.add_argument("agent")
    wt.add_argument("--timeout", type=float, default=600)
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
    prp.add_argument("--remote", default="origin")
    prp.add_argument("--base", help="branch the PR targets (default: the repository's default)")
    asub.add_parser("env", help="the agent's environment: state, directory, resources").add_argument("agent")
    mv = asub.add_parser("move", help="move the agent to another environment, with its code and conversation")
    mv.add_argument("agent")
    mv.add_argument("target", choices=["worktree", "container", "cloud"], help="the new environment")
    _add_container_options(mv)
    mv.add_argument("--resume", action=argparse.BooleanOptionalAction, default=None,
                    help="send the agent a note to carry on (default: only if the move stopped a turn)")
    asub.add_parser("moves", help="the agent's moves between environments").add_argument("agent")
    ds = asub.add_parser("destroy", help="remove the agent, its worktree and branch")
    ds.add_argument("agent")
    ds.add_argument("--force", action="store_true", help="even if its changes were never applied or merged")
    ag.set_defaults(func=cmd_agents)

    cl = sub.add_parser("cloud", help="the cloud tier: deploy Palot's Worker, connect to it, status and costs")
    csub = cl.add_subparsers(dest="action", required=True)
    csub.add_parser("deploy", help="deploy the Worker with your wrangler login and remember it")
    cc = csub.add_parser("connect", help="use an already deployed Worker")
    cc.add_argument("url", help="the Worker's https://… URL")
    cc.add_argument("--token", help="its PALOT_TOKEN (default: $PALOT_CLOUD_TOKEN or one line on stdin)")
    csub.add_parser("status", help="the Worker, its environments, their running time and estimated cost")
    da = csub.add_parser("destroy-all", help="destroy every cloud environment (stops all cloud costs)")
    da.add_argument("--yes", action="store_true", help="really do it")
    cl.set_defaults(func=cmd_cloud)

    for sp_ in (d, u, dn, demo, mo, im, *asub.choices.values(), *csub.choices.values()):
        sp_.add_argument("--json", action="store_true", help="machine-readable output")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except PalotError as e:
        _print_error(args, e)
        return EXIT_ERROR
    except KeyboardInterrupt:
        return 130
    except Exception as e:  # noqa: BLE001 - a bug: one line for the person, the traceback in a file
        log_file = _log_traceback(e)
        _print_error(args, PalotError(f"palot failed unexpectedly ({type(e).__name__}: {str(e)[:300]})",
                                      f"this is a bug in Palot; the details are in {log_file}"), code="bug")
        return EXIT_BUG


def _print_error(args: argparse.Namespace, e: PalotError, code: str | None = None) -> None:
    if getattr(args, "json", False):
        print(json.dumps({"error": {"code": code or e.code, "message": e.message, "fix": e.fix}}))
    else:
        # Not wrapped: paths and commands in errors are copied from the terminal.
        err_console.print(Text.assemble(("error:", "red"), f" {e.message}",
                                        *(("\n", ("fix:", "yellow"), f" {e.fix}") if e.fix else ())), soft_wrap=True)


def _log_traceback(e: BaseException) -> str:
    import tempfile
    import traceback

    text = "".join(traceback.format_exception(e))
    for folder in (PalotPaths.default().home / "logs", Path(tempfile.gettempdir())):
        try:
            folder.mkdir(parents=True, exist_ok=True)
            path = folder / "palot-cli-error.log"
            with open(path, "a") as fh:
                fh.write(f"--- {' '.join(sys.argv)}\n{text}\n")
            return str(path)
        except OSError:
            continue
    return "no file (no folder was writable)"


if __name__ == "__main__":
    sys.exit(main())
