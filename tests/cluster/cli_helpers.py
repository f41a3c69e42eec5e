"""Run the cluster's CLI commands (``shoal submit``, ``pools``, ...) as a user would."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from cluster_helpers import Master

UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


def cli(master: Master, *args: str, token: str | None = None, home: Path,
        timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """``shoal ARGS`` against ``master`` (admin token unless ``token``), to its end.

    The master and token come from the environment, as a user's shell would
    give them; ``home`` is the config folder, so no user's client.toml is read.
    COLUMNS is wide so that tables never fold an id.
    """
    env = {**os.environ, "SHOAL_CONFIG_DIR": str(home), "SHOAL_MASTER": master.url,
           "SHOAL_TOKEN": master.token if token is None else token, "COLUMNS": "200"}
    return subprocess.run([sys.executable, "-m", "shoal", *args], capture_output=True,
                          text=True, env=env, timeout=timeout, stdin=subprocess.DEVNULL)


def row_of(table: str, first_cell: str) -> str:
    """The line of a printed table whose first cell is ``first_cell``."""
    for line in table.splitlines():
        if line.split(maxsplit=1)[:1] == [first_cell]:
            return line
    raise AssertionError(f"no row for {first_cell!r} in:\n{table}")
