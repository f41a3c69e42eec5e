"""``shoal tasks (serve | agent)``: the task service and a task agent, standalone.

::

    SHOAL_PASSWORD=secret shoal tasks serve [--bind 0.0.0.0] [--port 7452]
    SHOAL_PASSWORD=secret shoal tasks agent shoal://master:7452 --slots 8

(``shoal master`` and ``shoal worker`` run the same two objects inside the
cluster.)  The password comes from ``--password-file`` or ``$SHOAL_PASSWORD``
(``$SHOAL_TASKS_PASSWORD`` is still read, with a warning), never from the
command line, which other users can read.  Defaults for every option may be
written in ``tasks.toml`` (tables ``[serve]`` and ``[agent]``) in shoal's
config folder, or in ``--config FILE`` (:mod:`shoal.settings_file`).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from pathlib import Path

from shoal import ports, settings_file
from shoal.cli import CliParser, command
from shoal.cli._types import port, positive_int, seconds
from shoal.errors import ConfigurationError

PROG = "shoal tasks"
CONFIG_FILE = "tasks.toml"   # [serve] and [agent]: defaults for the options (settings_file)
SERVE_DESCRIPTION = (
    "Run the task service: executors (shoal.Executor('shoal://HOST:PORT')) submit tasks and "
    "task systems to it, and agents (shoal tasks agent) run them. Every connection logs in "
    "with the password ($SHOAL_PASSWORD or --password-file) over an encrypted channel.")
AGENT_DESCRIPTION = (
    "Run a task agent: log in to a task service and run its tasks in --slots worker "
    "processes on this machine, until the service goes away or the agent is stopped.")


def _parser() -> tuple[CliParser, dict[str, CliParser]]:
    parser = CliParser(prog=PROG, description="Run the task service, or a task agent.")
    sub = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    serve = sub.add_parser("serve", help="schedule tasks of executors onto agents",
                           description=SERVE_DESCRIPTION)
    serve.add_argument("--bind", default="0.0.0.0", metavar="ADDR",
                       help="the address to listen on (0.0.0.0)")
    serve.add_argument("--port", type=port, default=ports.TASKS,
                       help=f"the port to listen on ({ports.TASKS}; 0 picks a free one)")
    serve.add_argument("--scheduler", default="pull", metavar="NAME",
                       help="policy: pull, least-loaded, fastest-first, or a plugin's")
    serve.add_argument("--heartbeat-timeout", type=seconds, default=10.0, metavar="S",
                       help="drop an agent silent this long and retry its tasks (10)")
    serve.add_argument("--keep-results", type=seconds, default=600.0, metavar="S",
                       help="keep results this long for executors that fetch them later (600)")
    serve.add_argument("--max-kept", type=positive_int, default=200_000, metavar="N",
                       help="keep at most N results for later fetches (200000)")
    serve.add_argument("--hooks", action="append", default=[], metavar="NAME[,NAME]",
                       help="install these task hooks published under shoal.task_hooks")
    serve.add_argument("--plugin-hooks", action="store_true",
                       help="install every task hook published under shoal.task_hooks")
    agent = sub.add_parser("agent", help="run tasks of a service in worker processes",
                           description=AGENT_DESCRIPTION)
    agent.add_argument("address", help="the service: shoal://HOST:PORT")
    agent.add_argument("--slots", type=positive_int,
                       help="worker processes (default: one per core)")
    agent.add_argument("--name", help="this agent's name (default: host-pid)")
    for name, each in (("serve", serve), ("agent", agent)):
        each.add_argument("--password-file", type=Path, metavar="FILE",
                          help="read the password from FILE (else $SHOAL_PASSWORD)")
        each.add_argument("--quiet", action="store_true", help="log warnings only")
        settings_file.add_config_option(each, CONFIG_FILE, name)
    return parser, {"serve": serve, "agent": agent}


def _refuse_old_options(argv: list[str]) -> None:
    """``serve --host ADDR`` meant the listening address; the contract's one-line error."""
    if argv[:1] == ["serve"] and any(a == "--host" or a.startswith("--host=") for a in argv):
        sys.stderr.write(f"{PROG} serve: --host is the hosts to run on (mpiexec's meaning); "
                         "use --bind ADDR to choose the address to listen on\n")
        raise SystemExit(2)


def _password(path: Path | None) -> str:
    if path is not None:
        try:
            text = path.read_text().splitlines()
        except OSError as exc:
            raise ConfigurationError(f"cannot read the password file: {exc}") from None
        if text and text[0]:
            return text[0]
        raise ConfigurationError(f"{path} is empty: write the password on its first line")
    from shoal.tasks.protocol import PASSWORD_ENV, env_password

    value, notice = env_password()
    if notice:
        print(f"{PROG}: {notice}", file=sys.stderr, flush=True)
    if not value:
        raise ConfigurationError(f"set a password: --password-file FILE or ${PASSWORD_ENV}")
    return value


@command("tasks", "the task service (serve) and task agents (agent), standalone")
def main(argv: list[str]) -> int:
    _refuse_old_options(argv)
    parser, actions = _parser()
    settings = None
    if argv and argv[0] in actions:
        settings = settings_file.load_defaults(actions[argv[0]], argv[1:], CONFIG_FILE, argv[0])
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING if args.quiet else logging.INFO,
                        format="%(asctime)s %(name)s %(levelname)s %(message)s")
    if settings is not None:
        logging.getLogger("shoal.tasks").info("defaults from %s", settings)
    password = _password(args.password_file)
    try:
        if args.action == "serve":
            asyncio.run(_serve(args, password))
        else:
            asyncio.run(_agent(args, password))
    except KeyboardInterrupt:
        return 130
    return 0


async def _serve(args: argparse.Namespace, password: str) -> None:
    import signal

    from shoal.tasks.hooks import named_hooks
    from shoal.tasks.service import TaskService

    names = [name.strip() for each in args.hooks for name in each.split(",") if name.strip()]
    try:
        service = TaskService(password=password, scheduler=args.scheduler,
                              heartbeat_timeout=args.heartbeat_timeout,
                              keep_results=args.keep_results, max_kept=args.max_kept,
                              hooks=named_hooks(names), use_plugin_hooks=args.plugin_hooks)
    except (LookupError, TypeError) as exc:
        raise ConfigurationError(str(exc)) from None
    try:
        bound = await service.start(args.bind, args.port)
    except OSError as exc:
        raise ConfigurationError(f"cannot listen on {args.bind}:{args.port} "
                                 f"({exc.strerror or exc}): choose another --port or "
                                 "--bind") from None
    print(f"task service listening on shoal://{args.bind}:{bound} "
          f"(scheduler {args.scheduler})", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    await stop.wait()
    await service.stop()


async def _agent(args: argparse.Namespace, password: str) -> None:
    import signal

    from shoal.tasks.agent import TaskAgent

    agent = TaskAgent(args.address, args.slots, args.name, password=password)
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, lambda: loop.create_task(agent.stop()))
    print(f"task agent {agent.name}: connecting to {args.address}, {agent.slots} worker "
          f"process(es)", flush=True)
    await agent.run()
