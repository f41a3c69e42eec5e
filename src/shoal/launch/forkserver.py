"""The fork server: one interpreter that imports the rank's runtime once and forks every rank.

Starting N ranks as N fresh interpreters makes each one pay Python's start-up and the
import of shoal's MPI runtime (some 50-70 ms of CPU each): on a machine with fewer
cores than ranks, that is most of a small job's wall time.  Instead the launcher starts

    python -m shoal.launch.forkserver REQUESTS REPORTS -- prog.py args

once (the program is named only so that ``ps`` and ``pkill -f prog.py`` find the
server and its ranks, whose command line is the server's), with the environment
every rank shares, as soon as the command line is parsed: the server imports
:data:`PRELOAD` while the launcher imports its own modules and sets the job up (its
shared memory, every rank's pipes).  Then the launcher hands it the job on the
``REQUESTS`` socket: the job's descriptors (``SCM_RIGHTS``, up to
:data:`FDS_PER_MESSAGE` on each NUL byte), then one JSON line that names them by the
launcher's numbers.  The server forks one child per rank; each child becomes what
``python -m shoal.launch.bootstrap -- prog.py`` would have been:

* a session of its own (``setsid``), stdin from the launcher (rank 0) or /dev/null,
  stdout and stderr on its own pipes, only its own descriptors open, each at the
  launcher's number for it, which its environment names;
* its own variables (``SHOAL_RANK``, its control and doorbell descriptors) on top of
  the shared environment the server itself was started with, so everything the
  interpreter reads at start-up (``PYTHON*`` variables, ``-X`` options) is what a
  fresh rank would have read;
* it dies with the server (``PR_SET_PDEATHSIG``), which dies with the launcher, and
  runs the program from the top of the server's ``__main__``, so the interpreter's
  normal exit (threads joined, ``atexit``, flushing, module teardown) follows.

The preloaded objects are frozen out of the cyclic garbage collector before the forks
(``gc.freeze``, as the :mod:`gc` documentation advises for fork servers): a rank's
collections then never write to the pages it shares with the server, which halves
what a rank costs.

Nothing per rank is imported before the fork: :data:`PRELOAD` holds no module that
reads ``SHOAL_RANK`` when imported (``shoal.MPI`` and ``shoal.spmd.mpi`` build
``COMM_WORLD`` from it, so each rank imports those itself, cheaply).  The one
difference from fresh interpreters: the ranks share the server's string-hash seed
(``PYTHONHASHSEED``), as forked processes do.

The server reports on the ``REPORTS`` pipe, one JSON line each: ``{"started": rank,
"pid": pid}`` (or ``{"failed": rank, "error": text}``) for every rank in order, then
``{"exited": rank, "returncode": code}`` as each one ends (as :mod:`subprocess` gives
it: a death by signal N is -N), after killing what the rank left in its process
group.  An ended rank stays unreaped (a zombie keeps its pid, so the launcher never
signals a stranger) until the launcher, having taken note, writes ``reap RANK`` on
``REQUESTS``.  When the launcher closes ``REQUESTS`` the server kills what is left,
reaps everything and exits (at once, where that comes before the job: the launcher
could not set the job up).

:class:`ForkServer` is the launcher's side; :func:`start_for` starts one for a job.
``SHOAL_FORK_SERVER=0`` turns the server off (every rank is then its own
``python -m shoal.launch.bootstrap``); it is off where Linux's ``pidfd_open`` is
missing, and a one-rank job does without it.
"""

from __future__ import annotations

import json
import os
import selectors
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from typing import Any

from shoal.launch.options import LaunchOptions, raise_fd_limit

ENV_VAR = "SHOAL_FORK_SERVER"
# What a rank of an MPI program imports, and nothing that reads SHOAL_RANK at import.
PRELOAD = ("shoal.launch.bootstrap", "shoal.spmd.world", "shoal.spmd.backend",
           "shoal.spmd.topo", "shoal.spmd.intercomm", "shoal.spmd.absent", "shoal.spmd.klyng",
           "shoal.spmd.environment", "shoal.compat.hook", "socket")
START_TIMEOUT = 60.0   # seconds for the server to start every rank
FDS_PER_MESSAGE = 250  # descriptors on one NUL byte (the kernel takes 253 at most)


def wanted(nprocs: int = 2) -> bool:
    """Whether to start ``nprocs`` ranks through a fork server: on Linux with pidfds,
    unless turned off, for two ranks or more (one rank is quicker started directly)."""
    if nprocs < 2 or os.environ.get(ENV_VAR, "1").strip() == "0":
        return False
    return sys.platform.startswith("linux") and hasattr(os, "pidfd_open") \
        and hasattr(os, "P_PIDFD")


# -- the launcher's side ---------------------------------------------------------------


class ForkServerError(Exception):
    """The fork server could not start a rank (or died); the message says why."""


def shared_env(options: LaunchOptions) -> dict[str, str]:
    """The environment every rank of ``options``' job starts from, known before the job
    is set up: this process's, unbuffered output, the user's ``--env``, the job's size
    and the launcher's pid.  The launcher adds what each rank has of its own."""
    env = dict(os.environ)
    env["PYTHONUNBUFFERED"] = "1"  # output streams live; a user --env may override
    env.update(options.env)
    env.update(SHOAL_SIZE=str(options.nprocs), SHOAL_LAUNCHER_PID=str(os.getpid()))
    return env


def start_for(options: LaunchOptions) -> ForkServer | None:
    """A fork server for the job of ``options``, started now so that its imports run
    beside the launcher's; None where the job does without one (:func:`wanted`)."""
    return start(options) if wanted(options.nprocs) else None


def start(options: LaunchOptions) -> ForkServer:
    """A fork server for the job of ``options``."""
    raise_fd_limit(options.nprocs)  # before the server starts: it inherits the limit
    return ForkServer(shared_env(options), options.target_argv())


class ForkServer:
    """A running fork server, as the launcher sees it."""

    def __init__(self, env: Mapping[str, str], target: Sequence[str] = ()) -> None:
        self.env = dict(env)  # what every rank starts from
        self._channel, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        self._requests = self._channel.fileno()
        self.reports, reports_write = os.pipe()
        try:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "shoal.launch.forkserver", str(theirs.fileno()),
                 str(reports_write), "--", *target],
                env=self.env, stdin=None, stdout=subprocess.DEVNULL, stderr=None,
                start_new_session=True, pass_fds=(theirs.fileno(), reports_write))
        except BaseException:
            self._channel.close()
            os.close(self.reports)
            raise
        finally:
            theirs.close()
            os.close(reports_write)
        self.returncodes: dict[int, int] = {}
        self._released: set[int] = set()
        self._unsent = b""
        self._pending = b""
        self._closed = False

    def start_ranks(self, ranks: Sequence[Mapping[str, Any]], shared: Sequence[int] = (),
                    fds: Sequence[int] = ()) -> dict[int, int]:
        """Ask for every rank at once; their pids by rank once all are started.

        Each rank is ``{"rank", "argv", "env" (its variables beyond :attr:`env`),
        "stdin" (True: the launcher's), "stdout", "stderr", "keep" (descriptors it
        keeps)}``; every rank keeps ``shared`` as well.  ``fds`` are every descriptor
        the ranks name, by this process's numbers, each rank gets its own at the same
        numbers.
        """
        fds = list(fds)
        message = json.dumps({"ranks": list(ranks), "shared": list(shared),
                              "fds": fds}).encode() + b"\n"
        try:
            for first in range(0, len(fds), FDS_PER_MESSAGE):
                socket.send_fds(self._channel, [b"\0"], fds[first:first + FDS_PER_MESSAGE])
            self._channel.sendall(message)
        except OSError as exc:
            raise ForkServerError(f"the fork server is gone ({exc})") from None
        pids: dict[int, int] = {}
        deadline = time.monotonic() + START_TIMEOUT
        while len(pids) < len(ranks):
            left = deadline - time.monotonic()
            lines = self._read_lines(left) if left > 0 else None
            if lines is None:
                raise ForkServerError("the fork server stopped before starting every rank"
                                      if left > 0 else "the fork server did not answer")
            for report in lines:
                if "failed" in report:
                    raise ForkServerError(f"could not start rank {report['failed']}: "
                                          f"{report.get('error')}")
                if "started" in report:
                    pids[int(report["started"])] = int(report["pid"])
                else:
                    self._note(report)
        os.set_blocking(self.reports, False)
        # From now on the launcher must never block on the server (which may itself be
        # blocked writing reports): "reap" lines wait here when the pipe is full.
        os.set_blocking(self._requests, False)
        return pids

    def feed(self) -> bool:
        """Read what the server reported (non-blocking); False at end of file."""
        self._send(b"")
        lines = self._read_lines(None)
        for report in lines or ():
            self._note(report)
        return lines is not None

    def wait_for(self, rank: int, timeout: float) -> int | None:
        """Block until ``rank``'s exit is reported; its return code, or None in time."""
        deadline = time.monotonic() + timeout
        while rank not in self.returncodes:
            self._send(b"")
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            lines = self._read_lines(left)
            if lines is None:
                return None
            for report in lines:
                self._note(report)
        return self.returncodes[rank]

    def release(self, rank: int) -> None:
        """The launcher is done with ``rank``'s pid: the server may reap it."""
        if rank in self._released or self._closed:
            return
        self._released.add(rank)
        self._send(f"reap {rank}\n".encode())

    def _send(self, data: bytes) -> None:
        self._unsent += data
        if not self._unsent or self._closed:
            return
        try:
            self._unsent = self._unsent[os.write(self._requests, self._unsent):]
        except BlockingIOError:
            pass  # sent with the next report read
        except OSError:
            self._unsent = b""  # the server is gone: nothing left to reap

    def close(self, timeout: float = 2.0) -> None:
        """End the server: it kills what is left, reaps its children and exits."""
        if self._closed:
            return
        self._closed = True
        self._channel.close()
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()  # its ranks die with it (PR_SET_PDEATHSIG)
            self.proc.wait()
        os.close(self.reports)

    def kill(self) -> None:
        """Kill the server now; its ranks die with it."""
        if self.proc.poll() is None:
            self.proc.kill()

    def _note(self, report: dict[str, Any]) -> None:
        if "exited" in report:
            self.returncodes[int(report["exited"])] = int(report["returncode"])

    def _read_lines(self, timeout: float | None) -> list[dict[str, Any]] | None:
        """Whole report lines: wait up to ``timeout`` (None: do not wait); None at EOF."""
        if timeout is not None:
            with selectors.DefaultSelector() as selector:
                selector.register(self.reports, selectors.EVENT_READ)
                if not selector.select(timeout):
                    return []
        try:
            data = os.read(self.reports, 65536)
        except BlockingIOError:
            return []
        if not data:
            return None
        *lines, self._pending = (self._pending + data).split(b"\n")
        return [json.loads(line) for line in lines if line.strip()]


# -- the server's side -------------------------------------------------------------------


def _report(fd: int, **fields: Any) -> None:
    data = json.dumps(fields).encode() + b"\n"
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def _read_job(requests: int) -> tuple[dict[str, Any], dict[int, int]] | None:
    """The job, and its descriptors: the launcher's number -> this process's; None when
    the launcher closed ``requests`` first."""
    channel = socket.socket(fileno=requests)
    received: list[int] = []
    try:
        while True:  # the descriptors, a NUL byte each batch, then the JSON line
            data, fds, flags, _ = socket.recv_fds(channel, 1, FDS_PER_MESSAGE)
            received.extend(fds)
            if flags & socket.MSG_CTRUNC:
                raise OSError("could not take the job's descriptors (too many open files?)")
            if data != b"\0":
                break
        while data and not data.endswith(b"\n"):
            chunk = channel.recv(1 << 20)
            data = data + chunk if chunk else b""
        job: dict[str, Any] | None = json.loads(data) if data else None
        if job is None or len(job["fds"]) != len(received):
            for fd in received:
                os.close(fd)
            return None  # the launcher changed its mind (or died)
        return job, dict(zip(job["fds"], received, strict=True))
    finally:
        channel.detach()  # the fd stays open: the server watches it for "reap" lines


def _become_rank(spec: Mapping[str, Any], shared: Sequence[int], server: int,
                 fds: Mapping[int, int], close: Sequence[int]) -> None:
    """In the child: the process a fresh ``python -m shoal.launch.bootstrap`` would be,
    with its descriptors (``fds``: the launcher's number -> ours) at the launcher's
    numbers and nothing else of ``close`` open."""
    import fcntl

    from shoal.launch import bootstrap, control

    os.setsid()
    bootstrap.die_with_parent(server)
    if not spec["stdin"]:
        devnull = os.open(os.devnull, os.O_RDONLY)
        os.dup2(devnull, 0)
        os.close(devnull)
    wanted = {1: fds[spec["stdout"]], 2: fds[spec["stderr"]],
              **{number: fds[number] for number in (*spec["keep"], *shared)}}
    # Out of the way of every number first (a wanted number may be one of ours), ...
    above = max((*wanted, *close, 2)) + 1
    moved = {number: fcntl.fcntl(have, fcntl.F_DUPFD_CLOEXEC, above)
             for number, have in wanted.items()}
    for fd in close:  # the job's descriptors as we hold them, the server's own
        try:
            os.close(fd)
        except OSError:
            pass
    for number, have in moved.items():  # ... then each at its number, inheritable
        os.dup2(have, number)
        os.close(have)
    os.environ.update(spec["env"])
    control._forget()


def _serve(requests: int, reports: int) -> tuple[list[str], int] | int:
    """Run the server; in a forked child, return (the rank's bootstrap arguments, server)."""
    server = os.getpid()
    try:
        received = _read_job(requests)
    except (OSError, ValueError) as exc:
        _report(reports, failed=0, error=str(exc))
        return 1
    if received is None:
        return 0  # the launcher changed its mind
    job, fds = received
    specs, shared = job["ranks"], job["shared"]
    own = sorted(fds.values())
    children: dict[int, tuple[int, int]] = {}   # pidfd -> (rank, pid)
    for spec in specs:
        try:
            pid = os.fork()
        except OSError as exc:
            _report(reports, failed=spec["rank"], error=str(exc))
            break
        if pid == 0:
            try:
                _become_rank(spec, shared, server, fds,
                             [*own, requests, reports, *children])
                return list(spec["argv"]), server
            except BaseException as exc:  # never run the server's loop in a child
                try:
                    os.write(2, f"shoal: could not start rank {spec['rank']}: {exc}\n".encode())
                finally:
                    os._exit(127)
        children[os.pidfd_open(pid)] = (spec["rank"], pid)
        _report(reports, started=spec["rank"], pid=pid)
    for fd in own:  # the ranks hold their descriptors now; ours would keep pipes open
        os.close(fd)
    _watch(requests, reports, children)
    return 0


def _watch(requests: int, reports: int, children: dict[int, tuple[int, int]]) -> None:
    """Report each rank's end until the launcher closes ``requests``; then clean up."""
    selector = selectors.DefaultSelector()
    selector.register(requests, selectors.EVENT_READ)
    for pidfd in children:
        selector.register(pidfd, selectors.EVENT_READ)
    by_rank = {rank: pidfd for pidfd, (rank, _) in children.items()}
    pending = b""
    watching = True
    while watching:
        for key, _ in selector.select():
            if key.fd == requests:
                data = os.read(requests, 65536)
                if not data:
                    watching = False  # the job is over
                    continue
                *lines, pending = (pending + data).split(b"\n")
                for line in lines:  # "reap RANK": the launcher has taken note of its end
                    pidfd = by_rank.pop(int(line.split()[1]), -1)
                    if pidfd in children:
                        os.waitid(os.P_PIDFD, pidfd, os.WEXITED)
                        del children[pidfd]
                        os.close(pidfd)
                continue
            rank, pid = children[int(key.fd)]
            info = os.waitid(os.P_PIDFD, int(key.fd), os.WEXITED | os.WNOWAIT)
            if info is None:
                continue
            selector.unregister(key.fd)
            # The rank is a zombie, so its process group still exists: end whatever
            # it left running in it, as the launcher does with the ranks it starts.
            _killpg(pid, signal.SIGKILL)
            code = -info.si_status if info.si_code in _SIGNALLED else info.si_status
            try:
                _report(reports, exited=rank, returncode=code)
            except OSError:
                watching = False  # the launcher is gone
    for pidfd, (_, pid) in children.items():
        _killpg(pid, signal.SIGKILL)
        try:
            os.waitid(os.P_PIDFD, pidfd, os.WEXITED)
        except ChildProcessError:
            pass
        os.close(pidfd)


_SIGNALLED = frozenset(getattr(os, name) for name in ("CLD_KILLED", "CLD_DUMPED")
                       if hasattr(os, name))


def _killpg(pgid: int, signum: int) -> None:
    try:
        os.killpg(pgid, signum)
    except (ProcessLookupError, PermissionError):
        pass


def main(argv: Sequence[str]) -> int:
    requests, reports = int(argv[0]), int(argv[1])
    import gc
    import importlib

    # No collection may leave holes in the pages the ranks will share (gc docs).
    gc.disable()
    from shoal.launch import bootstrap

    bootstrap.die_with_parent()  # the launcher: SHOAL_LAUNCHER_PID
    from shoal.launch.preload import PRELOAD_VAR, program_preloads

    target = argv[3:] if argv[2:3] == ["--"] else argv[2:]
    for name in (*PRELOAD, *program_preloads(target, os.environ.get(PRELOAD_VAR, ""))):
        try:
            importlib.import_module(name)
        except Exception:  # only slower: the rank imports it itself
            pass
    gc.freeze()
    result = _serve(requests, reports)
    if isinstance(result, int):
        os._exit(result)  # the server: nothing to flush, no reason to tear down slowly
    rank_argv, server = result
    gc.enable()  # the rank collects as any interpreter does (what was frozen stays so)
    return bootstrap.main(rank_argv, forked_from=server)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
