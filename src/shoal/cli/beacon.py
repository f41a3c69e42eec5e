"""``shoal beacon (up | down | status | password | key | authorize)``."""

from __future__ import annotations

import argparse
import getpass
import json
import os
import signal
import sys
import time
from collections.abc import Callable

from shoal import ports
from shoal.cli import CliParser, command, usage_error
from shoal.cli._types import port
from shoal.errors import ConfigurationError

PROG = "shoal beacon"


def _parser() -> CliParser:
    parser = CliParser(prog=PROG, description="Run ranks of other machines' jobs on this one, "
                       "for runners who know the password or hold an authorized key.")
    sub = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    up = sub.add_parser("up", help="start the beacon (in the background unless --foreground)",
                        description="Start the beacon (in the background unless --foreground); "
                                    "it returns once the beacon listens.")
    up.add_argument("--bind", metavar="ADDR", help="the address to listen on "
                                                   "(default: beacon.toml, else 0.0.0.0)")
    up.add_argument("--port", type=port, help="the port to listen on (default: beacon.toml, "
                                               f"else {ports.BEACON}; 0 picks a free one)")
    # The old name of --bind: --host now means the hosts to run on, everywhere.
    up.add_argument("--host", dest="old_host", nargs="?", const="", help=argparse.SUPPRESS)
    up.add_argument("--foreground", action="store_true",
                    help="stay in this terminal, logging to it too (for systemd)")
    up.add_argument("--quiet", action="store_true", help=argparse.SUPPRESS)
    sub.add_parser("down", help="stop the beacon (its jobs are killed)",
                   description="Stop the beacon; its jobs' ranks are killed first.")
    status = sub.add_parser("status", help="is it running; its jobs, ranks and runners",
                            description="Say whether the beacon runs, with its jobs, ranks, "
                                        "runners and authorized keys (no login needed).")
    status.add_argument("--json", action="store_true", help="print it as JSON")
    password = sub.add_parser("password", help="set or change the password",
                              description="Set or change the beacon password; new logins "
                                          "use it at once.")
    password.add_argument("--stdin", action="store_true",
                          help="read it from the first line of stdin, not the terminal")
    sub.add_parser("key", help="print this machine's public key line",
                   description="Print this machine's public key line (made on first use).")
    authorize = sub.add_parser("authorize", help="let the holder of a key run jobs here",
                               description="Let the holder of a public key run jobs on "
                                           "this beacon.")
    authorize.add_argument("keyfile", metavar="KEYFILE",
                           help="a public key file (e.g. a runner's identity.pub), - for stdin")
    return parser


@command("beacon", "run jobs of authenticated runners on this machine")
def main(argv: list[str]) -> int:
    args = _parser().parse_args(argv)
    from shoal.node.config import BeaconPaths

    paths = BeaconPaths.default()
    action = args.action
    if action == "up":
        return _up(paths, args)
    if action == "down":
        from shoal.node.daemon import stop

        pid = stop(paths)
        print("no beacon was running" if pid is None else f"beacon (pid {pid}) stopped")
        return 0
    if action == "status":
        return _quiet_on_broken_pipe(lambda: _status(paths, args.json))
    if action == "password":
        return _password(paths, args.stdin)
    if action == "key":
        from shoal.node.config import load_identity

        print(load_identity(paths).public_line())
        return 0
    return _authorize(paths, args.keyfile)


def _up(paths: object, args: argparse.Namespace) -> int:
    from shoal.node import daemon
    from shoal.node.config import BeaconPaths, load_settings

    assert isinstance(paths, BeaconPaths)
    if args.old_host is not None:
        usage_error(f"{PROG} up", "--host is the hosts to run on (mpiexec's meaning); use "
                                  "--bind ADDR to choose the address to listen on")
    settings = load_settings(paths)
    host = args.bind if args.bind is not None else settings.host
    port = args.port if args.port is not None else settings.port
    if args.foreground:
        return daemon.run_foreground(paths, host, port, quiet=args.quiet)
    pid, bound = daemon.start_background(paths, host, port)
    print(f"beacon up: pid {pid}, listening on {host}:{bound}; log: {paths.log_file}")
    return 0


def _quiet_on_broken_pipe(report: Callable[[], int]) -> int:
    """Run ``report``; a reader that stopped reading (``| head``) ends it quietly, as Unix
    tools end (status 141, killed by SIGPIPE's number), without a traceback."""
    try:
        status = report()
        sys.stdout.flush()
        return status
    except BrokenPipeError:
        # Python would flush stdout again at exit and fail the same way: point it at
        # /dev/null first.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
        return 128 + signal.SIGPIPE


def _status(paths: object, as_json: bool) -> int:
    from shoal.node import daemon
    from shoal.node.config import BeaconPaths, read_password
    from shoal.security import AuthorizedKeys, fingerprint, parse_public_key

    assert isinstance(paths, BeaconPaths)
    current = daemon.running(paths)
    live: dict[str, object] = {}
    if current is not None:
        try:
            live = json.loads(paths.status_file.read_text())
        except (OSError, ValueError):
            live = {}
    keys = []
    if paths.authorized_keys_file.exists():
        AuthorizedKeys.from_file(paths.authorized_keys_file)  # warns about bad lines
        for line in paths.authorized_keys_file.read_text().splitlines():
            if line.strip() and not line.lstrip().startswith("#"):
                try:
                    raw, comment = parse_public_key(line)
                except ConfigurationError:
                    continue
                keys.append({"fingerprint": fingerprint(raw), "comment": comment})
    report = {"running": current is not None, "pid": current and current[0],
              "port": current and current[1], "password_set": read_password(paths) is not None,
              "authorized_keys": keys, "jobs": live.get("jobs", []),
              "runners": live.get("runners", [])}
    if as_json:
        print(json.dumps(report, indent=2))
        return 0 if current else 3
    if current is None:
        print("beacon: not running")
    else:
        since = live.get("started")
        age = f", up {time.time() - since:.0f} s" if isinstance(since, (int, float)) else ""
        print(f"beacon: running, pid {current[0]}, port {current[1]}{age}")
    print(f"password login: {'on' if report['password_set'] else 'off'}")
    print(f"authorized keys: {len(keys)}")
    for key in keys:
        print(f"  {key['fingerprint']} {key['comment']}")
    for runner in report["runners"]:  # type: ignore[attr-defined]
        print(f"runner connected: {runner['runner'] or '?'} from {runner['address']} "
              f"({runner['login']})")
    for job in report["jobs"]:  # type: ignore[attr-defined]
        print(f"job {job['job']} of {job['runner'] or '?'}: ranks {job['ranks']} of "
              f"{job['size']}, running {job['running']}")
    return 0 if current else 3  # 3: "not running", as init scripts say


def _password(paths: object, from_stdin: bool) -> int:
    from shoal.node.config import BeaconPaths, set_password

    assert isinstance(paths, BeaconPaths)
    if from_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = getpass.getpass("new beacon password: ")
        if getpass.getpass("again: ") != password:
            raise ConfigurationError("the two passwords differ; nothing changed")
    if len(password) < 8:
        raise ConfigurationError("use a password of at least 8 characters")
    paths.ensure()
    set_password(paths, password)
    print(f"password set ({paths.password_file}, readable by you only)")
    return 0


def _authorize(paths: object, keyfile: str) -> int:
    from shoal.node.config import BeaconPaths, authorize

    assert isinstance(paths, BeaconPaths)
    try:
        if keyfile == "-":
            text = sys.stdin.read()
        else:
            with open(keyfile) as source:
                text = source.read()
    except OSError as exc:
        raise ConfigurationError(f"cannot read {keyfile}: {exc.strerror}") from None
    lines = [ln for ln in text.splitlines() if ln.strip() and not ln.startswith("#")]
    if not lines:
        raise ConfigurationError(f"{keyfile} holds no public key line")
    paths.ensure()
    for line in lines:
        print(f"authorized {authorize(paths, line)}")
    return 0
