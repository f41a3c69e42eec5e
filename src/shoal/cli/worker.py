"""``shoal worker --master HOST[:PORT]``: run the master's jobs on this machine.

PORT is the master's REST port (7450); workers link to its worker port, PORT + 1
unless ``--worker-port`` says otherwise.  Login, as for beacons: the password
from ``$SHOAL_PASSWORD`` (or ``--password-env VAR``), or with ``--key`` this
machine's identity, the master's key being checked against ``known_hosts``
(add it with ``shoal worker trust HOST:WORKERPORT KEYLINE``, the key line
from ``shoal master key``).  The worker's id is kept in its state folder per
``--name``, so a restarted worker is the same worker, and two workers with
different names on one machine are two workers; a second one with the same
name refuses to start.  A master that refuses the worker (its id or name is
already online elsewhere) stops it with that one line.  Next to the jobs it runs executors'
Python tasks (``shoal.Executor("shoal://MASTER:TASKPORT")``) in ``--task-slots``
processes (one per core; 0: none), logged in to the master's task port with the
same password or key.  SIGTERM or SIGINT stops it, killing its jobs and task
processes first.
"""

from __future__ import annotations

import argparse
import os
import re
import socket
from typing import TYPE_CHECKING

from shoal import ports
from shoal.cli import CliParser, command
from shoal.cli._types import remote_port
from shoal.errors import ConfigurationError

if TYPE_CHECKING:
    from shoal.security import ClientConfig

PROG = "shoal worker"
DEFAULT_REST_PORT = ports.MASTER
_ADDRESS = re.compile(r"^(?:[a-z]+://)?(\[[^\]]+\]|[^:/\[\]]+)(?::(\d+))?/?$")


def parse_master(text: str) -> tuple[str, int]:
    """``host``, ``host:port`` or ``http(s)://host:port`` -> (host, REST port)."""
    match = _ADDRESS.match(text.strip())
    if not match or (match.group(2) and not 0 < int(match.group(2)) < 65536):
        raise ConfigurationError(f"--master {text!r}: expected HOST or HOST:PORT "
                                 "(e.g. lab1:7450)")
    return match.group(1).strip("[]"), int(match.group(2) or DEFAULT_REST_PORT)


def _slots(text: str) -> int:
    if not text.isdigit():
        raise argparse.ArgumentTypeError(f"expected a number of processes (0: none), "
                                         f"not {text!r}")
    return int(text)


def _trust_parser() -> CliParser:
    parser = CliParser(prog=f"{PROG} trust", description="Pin a master's key, for workers "
                       "that log in with --key: its logins are checked against it.")
    parser.add_argument("address", metavar="HOST:WORKERPORT",
                        help=f"the master's worker port, e.g. lab1:{ports.MASTER_WORKERS}")
    parser.add_argument("keyline", nargs="+", help="the line `shoal master key` printed")
    return parser


def _parser() -> CliParser:
    parser = CliParser(prog=PROG, description="Run the master's jobs on this machine. Also: "
                       f"{PROG} trust --help.")
    parser.add_argument("--master", metavar="HOST[:PORT]",
                        help=f"the master (REST port {ports.MASTER})")
    parser.add_argument("--worker-port", type=remote_port,
                        help="the master's worker port (PORT + 1)")
    parser.add_argument("--name", default="", help="the name shown (default: the hostname)")
    parser.add_argument("--password-env", default="SHOAL_PASSWORD", metavar="VAR",
                        help="the variable holding the master's worker password")
    parser.add_argument("--master-silence", type=float, default=15.0,
                        help=argparse.SUPPRESS)  # seconds without a word from the master (tests)
    parser.add_argument("--task-slots", type=_slots, metavar="N",
                        help="processes running executors' Python tasks (default: one per "
                        "core; 0: none)")
    parser.add_argument("--process-tracking", choices=("auto", "cgroup", "subreaper"),
                        default="auto", help="how every process of a job is tracked and "
                        "killed: a cgroup v2 per job, or its supervisor as subreaper "
                        "(auto: cgroups where the worker may make them)")
    parser.add_argument("--key", action="store_true",
                        help="log in with this machine's key instead of a password")
    return parser


@command("worker", "run a cluster master's jobs on this machine")
def main(argv: list[str]) -> int:
    from shoal.cluster.paths import ClusterPaths

    if argv[:1] == ["trust"]:
        trust = _trust_parser().parse_args(argv[1:])
        return _trust(ClusterPaths.default(), trust.address, " ".join(trust.keyline))
    args = _parser().parse_args(argv)
    paths = ClusterPaths.default()
    if not args.master:
        raise ConfigurationError("say which master: --master HOST[:PORT]")
    host, rest_port = parse_master(args.master)
    port = args.worker_port or rest_port + 1
    login = _login(paths, args, f"{host}:{port}")
    import asyncio
    import logging
    import signal

    from shoal.cluster.worker.agent import WorkerAgent, WorkerSettings
    from shoal.cluster.worker.identity import WorkerIdentity
    from shoal.cluster.worker.tracking import ProcessTracking, state_key
    from shoal.tasks.protocol import default_slots

    identity = WorkerIdentity(paths, args.name or socket.gethostname())  # one per name
    try:
        logging.basicConfig(level=logging.INFO, force=True,
                            format="%(asctime)s %(name)s %(levelname)s %(message)s")
        settings = WorkerSettings(host=host, port=port, worker_id=identity.id,
                                  name=identity.name, login=login,
                                  master_silence_s=args.master_silence,
                                  task_slots=default_slots() if args.task_slots is None
                                  else args.task_slots, process_tracking=args.process_tracking,
                                  tracking_key=state_key(paths.node.state_dir))
        tracking = ProcessTracking(settings.process_tracking, settings.worker_id,
                                   settings.tracking_key)

        async def run() -> None:
            stop = asyncio.Event()
            loop = asyncio.get_running_loop()
            for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
                loop.add_signal_handler(signum, stop.set)
            await WorkerAgent(settings, tracking).run(stop)

        asyncio.run(run())
    finally:
        identity.release()
    return 0


def _login(paths: object, args: argparse.Namespace, server: str) -> ClientConfig:
    from shoal.cluster.paths import ClusterPaths
    from shoal.security import ClientConfig, KnownHosts

    assert isinstance(paths, ClusterPaths)
    name = args.name or socket.gethostname()
    if args.key:
        from shoal.node.config import load_identity

        return ClientConfig(identity=load_identity(paths.node), name=name, server_name=server,
                            host_keys=KnownHosts(paths.node.known_hosts_file))
    password = os.environ.get(args.password_env)
    if not password:
        raise ConfigurationError(f"set ${args.password_env} to the master's worker password "
                                 "(`shoal master password` on the master), or use --key")
    return ClientConfig(password=password, name=name)


def _trust(paths: object, address: str, keyline: str) -> int:
    from shoal.cluster.paths import ClusterPaths
    from shoal.security import KnownHosts, fingerprint, parse_public_key

    assert isinstance(paths, ClusterPaths)
    key, comment = parse_public_key(keyline)
    KnownHosts(paths.node.known_hosts_file).add(address, key, comment)
    print(f"trusting {fingerprint(key)} for {address}")
    return 0
