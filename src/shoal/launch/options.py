"""What a local job is: :class:`LaunchOptions`, the parsed form of ``shoal run``.

Kept apart from :mod:`shoal.launch.local` and light to import (no dataclasses, as in
:mod:`shoal.launch.control`): the command line builds the options and starts the fork
server from them before the launcher's own modules are imported, so that the server's
start-up runs beside the launcher's (benchmarks/startup.py).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from shoal.errors import ConfigurationError


class LaunchOptions:
    """What to run and how: the parsed form of ``shoal run``."""

    __slots__ = ("nprocs", "program", "module", "args", "tag_output", "timeout", "env",
                 "transport")

    def __init__(self, nprocs: int, program: str | None = None, module: str | None = None,
                 args: Sequence[str] = (), tag_output: bool = False,
                 timeout: float | None = None, env: Mapping[str, str] | None = None,
                 transport: str = "shm") -> None:
        self.nprocs = nprocs
        self.program = program          # a script path, or None with ``module``
        self.module = module            # ``-m module``
        self.args = args
        self.tag_output = tag_output
        self.timeout = timeout
        self.env: Mapping[str, str] = dict(env or {})
        self.transport = transport      # or "tcp": encrypted links over 127.0.0.1
        if self.nprocs < 1:
            raise ConfigurationError(f"-n must be at least 1, not {self.nprocs}")
        if (self.program is None) == (self.module is None):
            raise ConfigurationError("give a program or a module (-m), not both or neither")
        if self.timeout is not None and self.timeout <= 0:
            raise ConfigurationError(f"--timeout must be positive, not {self.timeout}")

    def target_argv(self) -> list[str]:
        """What follows ``python`` to run the program: ``prog.py args`` or ``-m mod args``."""
        head = ["-m", self.module] if self.module is not None else [str(self.program)]
        return [*head, *self.args]


def raise_fd_limit(nprocs: int) -> None:
    """Make room for the pipes of a big job: about 5 per rank here, N + 4 in each rank."""
    try:
        import resource
    except ImportError:  # pragma: no cover - not POSIX
        return
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = 6 * nprocs + 64
    if soft != resource.RLIM_INFINITY and soft < wanted:
        new = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (new, hard))
        except (ValueError, OSError):
            pass  # then spawning fails with a clear LaunchError instead
