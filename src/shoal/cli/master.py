"""``shoal master``: run the cluster's master; ``token``, ``password``, ``authorize``, ``key``.

::

    shoal master [--db URL] [--host H] [--port P] [--worker-port P] [--retention D]
                 [--task-port P] [--scheduler NAME]
                 [--certfile F --keyfile F]
    shoal master token create --scope read|submit|admin [--name N]
    shoal master token list | revoke ID
    shoal master password [--stdin]     what workers log in with (SPAKE2)
    shoal master authorize KEYFILE      let a worker log in with its key instead
    shoal master key                    this master's public key (for workers' known_hosts)
"""

from __future__ import annotations

import argparse
import getpass
import json
import re
import sys
from pathlib import Path

from shoal.cli import CliParser, command
from shoal.cli._types import port, seconds
from shoal.errors import ConfigurationError

PROG = "shoal master"
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


def _serve_parser() -> CliParser:
    parser = CliParser(prog=PROG, description="Run the cluster's master: the REST API (and "
                       "dashboard) on --port, workers connect to --worker-port. Also: "
                       f"{PROG} token|password|authorize|key --help")
    _db_option(parser)
    parser.add_argument("--host", default="0.0.0.0", help="the address to listen on")
    parser.add_argument("--port", type=port, default=7450, help="REST API port (7450)")
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
    parser.add_argument("--housekeeping", type=seconds, default=60.0,
                        help=argparse.SUPPRESS)  # how often rollups and retention run (tests)
    return parser


def _tools_parser() -> CliParser:
    parser = CliParser(prog=PROG)
    sub = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    token = sub.add_parser("token", help="API tokens").add_subparsers(
        dest="token_action", metavar="ACTION", required=True)
    create = token.add_parser("create", help="make a token (printed once)")
    create.add_argument("--scope", choices=("read", "submit", "admin"), required=True)
    create.add_argument("--name", default="", help="shown in pools' submitted_by")
    _db_option(create)
    listing = token.add_parser("list", help="the tokens (never their secrets)")
    listing.add_argument("--json", action="store_true")
    _db_option(listing)
    revoke = token.add_parser("revoke", help="delete a token by id")
    revoke.add_argument("id")
    _db_option(revoke)
    password = sub.add_parser("password", help="set the password workers log in with")
    password.add_argument("--stdin", action="store_true", help="read it from stdin's first line")
    authorize = sub.add_parser("authorize", help="let a worker log in with its key")
    authorize.add_argument("keyfile", help="its public key file (identity.pub), - for stdin")
    sub.add_parser("key", help="print this master's public key line")
    return parser


@command("master", "run the cluster's master (REST API, dashboard, workers' link)")
def main(argv: list[str]) -> int:
    from shoal.cluster.paths import ClusterPaths

    paths = ClusterPaths.default()
    if argv and argv[0] in _ACTIONS:
        return _tool(paths, _tools_parser().parse_args(argv))
    args = _serve_parser().parse_args(argv)
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
        db_url=args.db or paths.default_db_url(), host=args.host, port=args.port,
        worker_port=args.worker_port, task_port=args.task_port,
        task_scheduler=args.scheduler, retention_s=args.retention, certfile=args.certfile,
        keyfile=args.keyfile, password=paths.read_master_password(),
        authorized_keys=paths.authorized_keys_file, offline_after_s=args.offline_after,
        lost_after_s=args.lost_after, housekeeping_s=args.housekeeping, paths=paths)
    return serve(settings)


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
