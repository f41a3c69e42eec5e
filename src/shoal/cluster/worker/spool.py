"""A job's output stream kept in an unnamed temporary file until the master has it.

Output may arrive while the master is unreachable, and a job may print
gigabytes: keeping it in memory would let one job exhaust the worker.  The
file has no name (``TemporaryFile``), so nothing is left behind however the
worker ends.
"""

from __future__ import annotations

import os
import tempfile


class Spool:
    def __init__(self) -> None:
        self._file = tempfile.TemporaryFile(prefix="shoal-job-")  # noqa: SIM115 - closed in close()
        self.size = 0

    def append(self, data: bytes) -> None:
        os.pwrite(self._file.fileno(), data, self.size)
        self.size += len(data)

    def read(self, offset: int, limit: int) -> bytes:
        return os.pread(self._file.fileno(), min(limit, self.size - offset), offset)

    def close(self) -> None:
        self._file.close()

    def __len__(self) -> int:
        return self.size
