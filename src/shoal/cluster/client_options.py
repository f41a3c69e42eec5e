"""The options every cluster client command shares: ``--master URL`` and ``--token TOKEN``.

Kept apart from :mod:`shoal.cluster.client` (which needs httpx, from the cluster extra) so
that ``shoal workers|pools|pool|submit|kill --help`` work on shoal's base install, where
running them says in one line which extra to install.
"""

from __future__ import annotations

import argparse

ENV_MASTER, ENV_TOKEN, ENV_CA_CERT = "SHOAL_MASTER", "SHOAL_TOKEN", "SHOAL_CA_CERT"


def add_connection_arguments(parser: argparse.ArgumentParser) -> None:
    """``--master URL`` and ``--token TOKEN``, shared by every client command."""
    parser.add_argument("--master", metavar="URL",
                        help="the master, e.g. http://lab-master:7450 "
                             f"(default: ${ENV_MASTER}, else client.toml)")
    parser.add_argument("--token", metavar="TOKEN",
                        help=f"a token from `shoal master token create` (default: ${ENV_TOKEN}, "
                             "else client.toml)")
