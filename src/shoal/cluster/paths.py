"""Where the master and the workers keep their files.

They share the beacon's folders (:class:`shoal.node.config.BeaconPaths`, so
``SHOAL_CONFIG_DIR`` moves all of them for tests) and add:

* config: ``master-password`` (what workers log in with, mode 0600),
  ``master_authorized_keys`` (workers' public keys allowed to log in);
* state: ``worker-<name>.id`` (a worker's UUID, kept across restarts so it
  re-registers as the same worker; one per ``--name``, so two workers on one
  machine are two identities) and ``worker-<name>.lock`` (held while it runs);
  ``worker-id``, where older versions kept the only one, is taken over by the
  first name started;
* data: ``cluster.db``, the master's SQLite database (platformdirs' user data
  folder, or ``$SHOAL_CONFIG_DIR/data``).
"""

from __future__ import annotations

import os
import urllib.parse
import uuid
from dataclasses import dataclass
from pathlib import Path

from shoal.node.config import APP, ENV_DIR, BeaconPaths, read_private, write_private


@dataclass(frozen=True)
class ClusterPaths:
    node: BeaconPaths
    data_dir: Path

    @classmethod
    def default(cls) -> ClusterPaths:
        node = BeaconPaths.default()
        override = os.environ.get(ENV_DIR)
        if override:
            return cls(node, Path(override).expanduser() / "data")
        import platformdirs

        return cls(node, Path(platformdirs.user_data_dir(APP)))

    master_password_file = property(lambda self: self.node.config_dir / "master-password")
    authorized_keys_file = property(lambda self: self.node.config_dir / "master_authorized_keys")
    legacy_worker_id_file = property(lambda self: self.node.state_dir / "worker-id")
    database_file = property(lambda self: self.data_dir / "cluster.db")

    def default_db_url(self) -> str:
        self.data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        return f"sqlite:///{self.database_file}"

    def read_master_password(self) -> str | None:
        data = read_private(self.master_password_file)
        return None if data is None else data.decode().rstrip("\n")

    def write_master_password(self, password: str) -> None:
        write_private(self.master_password_file, password.encode())

    def worker_file(self, name: str, suffix: str) -> Path:
        """``worker-<name><suffix>`` in the state folder (the name quoted for a file name)."""
        return self.node.state_dir / f"worker-{urllib.parse.quote(name, safe='')}{suffix}"

    def worker_id(self, name: str) -> str:
        """The id of the worker named ``name`` on this machine, made (and kept) on first use."""
        path = self.worker_file(name, ".id")
        try:
            return str(uuid.UUID(path.read_text().strip()))
        except (OSError, ValueError):
            pass
        try:  # the one id of an older version: the first name started keeps it
            new = str(uuid.UUID(self.legacy_worker_id_file.read_text().strip()))
            self.legacy_worker_id_file.unlink()
        except (OSError, ValueError):
            new = str(uuid.uuid4())
        write_private(path, new.encode())
        return new
