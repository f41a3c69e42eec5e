"""``shoal master``: run the cluster's master; ``token``, ``password``, ``authorize``, ``key``.

::

    shoal master [--db URL] [--bind ADDR] [--port P] [--worker-port P] [--retention D]
                 [--task-port P] [--scheduler NAME]
                 [--certfile F --keyfile F]
    shoal master token create --scope read|submit|admin [--name N]
    shoal master token list | revoke ID
    shoal master password [--stdin]     what workers log in with (SPAKE2)
    shoal master authorize KEYFILE      let a worker log in with its key instead
    shoal master key                    this master's public key (for workers' known_hosts)

Defaults for the options may be written in ``master.toml`` (table ``[master]``)
in shoal's config folder, or in ``--config FILE`` (:mod:`shoal.settings_file`).
"""

from __future__ import annotations

import argparse
import getpass
import json
import re
import sys
from pathlib import Path

from shoal import ports, settings_file
from shoal.cli import CliParser, command
from shoal.cli._types import port, seconds
from shoal.errors import ConfigurationError

PROG = "shoal master"
CONFIG_FILE = "master.toml"   # [master]: defaults for the options (shoal.settings_file)
_ACTIONS = ("token", "password", "authorize", "key")
_DURATION = re.compile(r"^(\d+(?:\.\d+)?)([smhd]?)$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "": 86400}


def duration(text: str) -> float:
    """Seconds from ``7`` (days) or ``30s``/``15m``/``12h``/``7d``."""
    match = _DURATION.match(text.strip())
    if not match:
        raise argparse.ArgumentTypeError(f"expected a duration like 7 (days), 12h, 30m or "
                                         f"45s, not {text!r}")
    return float(match.group(1)) * _UNITS[match.group(2)]


def _db_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--db", metavar="URL", help="the database (default: SQLite in the "
                        "data folder; or postgresql+psycopg://user:pw@host/db)")


class _HostMoved(argparse.Action):
    """``--host`` means the hosts to run on (mpiexec's), never a listening address."""

    def __call__(self, parser: argparse.ArgumentParser, *_: object, **__: object) -> None:
        sys.stderr.write(f"{PROG}: --host is the hosts to run on (mpiexec's meaning); use "
                         "--bind ADDR to choose the address to listen on\n")
        raise SystemExit(2)


def _serve_parser() -> CliParser:
    parser = CliParser(prog=PROG, description="Run the cluster's master: the REST API (and "
                       "dashboard) on --port, workers connect to --worker-port. Also: "
                       f"{PROG} token|password|authorize|key --help.")
    _db_option(parser)
    parser.add_argument("--bind", default="0.0.0.0", metavar="ADDR",
                        help="the address to listen on (0.0.0.0: every interface)")
    parser.add_argument("--host", action=_HostMoved, nargs="?", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=port, default=ports.MASTER,
                        help=f"REST API port ({ports.MASTER})")
    parser.add_argument("--worker-port", type=port, help="worker port (default: --port + 1)")
    parser.add_argument("--task-port", type=port, help="the task service's port, for "
                        "shoal.Executor('shoal://HOST:PORT') (default: --port + 2)")
    parser.add_argument("--scheduler", default="pull", metavar="NAME", help="the task "
                        "service's policy: pull, least-loaded, fastest-first or a plugin's")
    parser.add_argument("--retention", type=duration, default=7 * 86400.0, metavar="D",
                        help="keep finished pools this long: days, or 12h/30m/45s (7)")
    parser.add_argument("--certfile", type=Path, help="serve HTTPS with this certificate")
    parser.add_argument("--keyfile", type=Path, help="... and this private key")
    parser.add_argument("--offline-after", type=seconds, default=10.0, metavar="S",
                        help="a worker silent this long is offline (10)")
    parser.add_argument("--lost-after", type=seconds, default=30.0, metavar="S",
                        help="an offline worker's jobs are lost after this long (30)")
    parser.add_argument("--login-budget", type=_whole, default=20, metavar="N",
                        help="failed logins and unknown tokens allowed from all addresses "
                        "together before they are refused (20)")
    parser.add_argument("--login-refill", type=_rate, default=0.2, metavar="R",
                        help="... after which R more a second are allowed (0.2)")
    parser.add_argument("--housekeeping", type=seconds, default=60.0,
                        help=argparse.SUPPRESS)  # how often rollups and retention run (tests)
    return parser


def _whole(text: str) -> int:
    value = int(text) if text.isdigit() else 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number of at least 1, not {text!r}")
    return value


def _rate(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if not value > 0:
        raise argparse.ArgumentTypeError(f"expected a rate above 0 (per second), not {text!r}")
    return value


def _sub(parent: argparse._SubParsersAction[CliParser], name: str, text: str) -> CliParser:
    """A subcommand whose one-line help is also its description."""
    parser: CliParser = parent.add_parser(name, help=text, description=text[0].upper()
                                          + text[1:] + ".")
    return parser


def _tools_parser() -> CliParser:
    parser = CliParser(prog=PROG, description="Manage the cluster's master: its API tokens, "
                       "the password and keys workers log in with.")
    sub = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    token = _sub(sub, "token", "manage the REST API's tokens (create, list, revoke)")
    tokens = token.add_subparsers(dest="token_action", metavar="ACTION", required=True)
    create = _sub(tokens, "create", "make a token of a scope and print it (only this once)")
    create.add_argument("--scope", choices=("read", "submit", "admin"), required=True,
                        help="read < submit (run, kill) < admin (also manage tokens)")
    create.add_argument("--name", default="", help="shown in pools' submitted_by")
    _db_option(create)
    listing = _sub(tokens, "list", "list the tokens: ids, names, scopes (never their secrets)")
    listing.add_argument("--json", action="store_true", help="print them as JSON")
    _db_option(listing)
    revoke = _sub(tokens, "revoke", "delete a token by id: it stops working within 2 s")
    revoke.add_argument("id", help="the token's id (`token list` shows it)")
    _db_option(revoke)
    password = _sub(sub, "password", "set the password workers log in with")
    password.add_argument("--stdin", action="store_true", help="read it from stdin's first line")
    authorize = _sub(sub, "authorize", "let a worker log in with its key instead of the password")
    authorize.add_argument("keyfile", help="its public key file (identity.pub), - for stdin")
    _sub(sub, "key", "print this master's public key line, for workers' known_hosts")
    return parser


@command("master", "run the cluster's master (REST API, dashboard, workers' link)")
def main(argv: list[str]) -> int:
    from shoal.cluster.paths import ClusterPaths

    paths = ClusterPaths.default()
    if argv and argv[0] in _ACTIONS:
        return _tool(paths, _tools_parser().parse_args(argv))
    parser = _serve_parser()
    settings_file.add_config_option(parser, CONFIG_FILE, "master")
    settings_file.load_defaults(parser, argv, CONFIG_FILE, "master")
    args = parser.parse_args(argv)
    if (args.certfile is None) != (args.keyfile is None):
        raise ConfigurationError("HTTPS needs both --certfile and --keyfile")
    from shoal.cluster.master.serve import serve
    from shoal.cluster.master.settings import MasterSettings
    from shoal.tasks.scheduler.policies import policy_class

    try:
        policy_class(args.scheduler)
    except LookupError as exc:
        raise ConfigurationError(f"--scheduler: {exc}") from None

    paths.node.ensure()
    settings = MasterSettings(
        db_url=args.db or paths.default_db_url(), host=args.bind, port=args.port,
        worker_port=args.worker_port, task_port=args.task_port,
        task_scheduler=args.scheduler, retention_s=args.retention, certfile=args.certfile,
        keyfile=args.keyfile, password=paths.read_master_password(),
        authorized_keys=paths.authorized_keys_file, offline_after_s=args.offline_after,
        lost_after_s=args.lost_after, housekeeping_s=args.housekeeping, paths=paths,
        login_budget=args.login_budget, login_refill=args.login_refill)
    if args.certfile is None and not _loopback(args.bind):
        sys.stderr.write(f"{PROG}: warning: listening on {args.bind}:{args.port} without TLS: "
                         "tokens and job output cross the network in clear; give --certfile "
                         "and --keyfile, or --bind 127.0.0.1 behind a TLS proxy\n")
    return serve(settings)


def _loopback(address: str) -> bool:
    import ipaddress

    if address == "localhost":
        return True
    try:
        return ipaddress.ip_address(address.strip("[]")).is_loopback
    except ValueError:
        return False


def _tool(paths: object, args: argparse.Namespace) -> int:
    from shoal.cluster.paths import ClusterPaths

    assert isinstance(paths, ClusterPaths)
    if args.action == "token":
        return _token(paths, args)
    if args.action == "password":
        return _password(paths, args.stdin)
    if args.action == "key":
        from shoal.node.config import load_identity

        print(load_identity(paths.node).public_line())
        return 0
    return _authorize(paths, args.keyfile)


def _token(paths: object, args: argparse.Namespace) -> int:
    from shoal.cluster.db.engine import open_database
    from shoal.cluster.db.tokens import TokenStore
    from shoal.cluster.paths import ClusterPaths

    assert isinstance(paths, ClusterPaths)
    tokens = TokenStore(open_database(args.db or paths.default_db_url()))
    if args.token_action == "create":
        info, secret = tokens.create(args.scope, args.name)
        print(secret)
        print(f"token {info.id} ({info.name}, scope {info.scope}): shown only now, keep it",
              file=sys.stderr)
    elif args.token_action == "list":
        items = tokens.list()
        if args.json:
            print(json.dumps([vars(t) for t in items], indent=2))
        for t in [] if args.json else items:
            print(f"{t.id}  {t.scope:<6}  {t.name}  created {t.created_at}"
                  f"{'  last used ' + t.last_used_at if t.last_used_at else ''}")
    else:
        tokens.revoke(args.id)
        print(f"token {args.id} revoked")
    return 0


def _password(paths: object, from_stdin: bool) -> int:
    from shoal.cluster.paths import ClusterPaths

    assert isinstance(paths, ClusterPaths)
    if from_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = getpass.getpass("new worker password: ")
        if getpass.getpass("again: ") != password:
            raise ConfigurationError("the two passwords differ; nothing changed")
    if len(password) < 8:
        raise ConfigurationError("use a password of at least 8 characters")
    paths.node.ensure()
    paths.write_master_password(password)
    print(f"worker password set ({paths.master_password_file}, readable by you only); "
          "workers give it in $SHOAL_PASSWORD")
    return 0


def _authorize(paths: object, keyfile: str) -> int:
    from shoal.cluster.paths import ClusterPaths
    from shoal.node.config import write_private
    from shoal.security import fingerprint, format_public_key, parse_public_key

    assert isinstance(paths, ClusterPaths)
    try:
        text = sys.stdin.read() if keyfile == "-" else Path(keyfile).read_text()
    except OSError as exc:
        raise ConfigurationError(f"cannot read {keyfile}: {exc.strerror}") from None
    lines = [ln for ln in text.splitlines() if ln.strip() and not ln.startswith("#")]
    if not lines:
        raise ConfigurationError(f"{keyfile} holds no public key line")
    path = paths.authorized_keys_file
    existing = path.read_text() if path.exists() else ""
    for line in lines:
        key, comment = parse_public_key(line.strip())
        if format_public_key(key) not in existing:
            existing += format_public_key(key, comment) + "\n"
        print(f"authorized worker key {fingerprint(key)}")
    write_private(path, existing.encode())
    return 0
