"""The local launcher: N ranks of one program on this machine, watched until they end.

Each rank is ``python -m shoal.launch.bootstrap -- prog.py args`` in its own
session (so it and anything it starts can be killed as one process group, and a
Ctrl-C on the terminal reaches the launcher only).  The launcher reads every
rank's stdout, stderr and control pipe in one ``selectors`` loop on the calling
thread, and decides the job's exit status:

* 0 when every rank exits 0;
* otherwise the status of the first rank that failed (an uncaught exception is
  1, KeyboardInterrupt 130, a signal N is 128 + N; a rank that left without
  finalizing with status 0 counts as 1);
* the code of the first ``Abort(code)``; 124 on ``--timeout``; 2 for a usage
  error found by a rank; 128 + N when the launcher itself gets signal N.

When a rank fails, :func:`shoal.launch.control.judge_exit` says whether the others
are stopped: at once after an uncaught exception, an ``Abort``, a crash, or a rank
that left the job's communication without finalizing while others ran; not when it
had finished its part (finalized) or never joined, as MPICH does.

Stopping means SIGTERM to each rank's process group, then SIGKILL
:data:`KILL_AFTER` seconds later to whatever is left.
"""

from __future__ import annotations

import os
import select
import selectors
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import FrameType
from typing import IO, TYPE_CHECKING, BinaryIO

from shoal.errors import ConfigurationError, LaunchError
from shoal.launch import control
from shoal.launch.bytecode import ensure_compiled
from shoal.launch.output import LineStream, Sink
from shoal.transport.shm import ShmJob

if TYPE_CHECKING:
    from shoal.security import JobKey
    from shoal.transport.rendezvous import RendezvousServer

KILL_AFTER = 1.0          # seconds between SIGTERM and SIGKILL
STACK_WAIT = 0.5          # seconds to collect faulthandler dumps on --timeout
DRAIN_AFTER_EXIT = 1.0    # seconds to wait for pipes held open by escaped processes
_TICK = 0.05              # the loop looks at processes, clocks and signals this often
_STOP_SIGNALS = tuple(getattr(signal, name) for name in ("SIGINT", "SIGTERM", "SIGHUP")
                      if hasattr(signal, name))


@dataclass(frozen=True)
class LaunchOptions:
    """What to run and how: the parsed form of ``shoal run``."""

    nprocs: int
    program: str | None = None   # a script path, or None with ``module``
    module: str | None = None    # ``-m module``
    args: Sequence[str] = ()
    tag_output: bool = False
    timeout: float | None = None
    env: Mapping[str, str] = field(default_factory=dict)
    transport: str = "shm"       # or "tcp": encrypted links over 127.0.0.1

    def __post_init__(self) -> None:
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


@dataclass
class JobResult:
    """How a job ended."""

    status: int                       # the launcher's exit status
    returncodes: list[int | None]     # each rank's, as subprocess reports it
    reason: str = "finished"          # finished, failed, abort, timeout, usage, signal


def exit_status(returncode: int) -> int:
    """A shell-style status: a death by signal N is 128 + N."""
    return 128 - returncode if returncode < 0 else returncode


@dataclass
class _Rank:
    rank: int
    proc: subprocess.Popen[bytes]
    streams: dict[int, LineStream]
    reader: control.ControlReader
    control_fd: int
    pipes: dict[int, IO[bytes]]      # stdout and stderr by fd, to close at EOF
    returncode: int | None = None
    progress: control.RankProgress = field(default_factory=control.RankProgress)

    @property
    def running(self) -> bool:
        return self.returncode is None


class LocalJob:
    """One run of :class:`LaunchOptions`; use :func:`run_job`."""

    def __init__(self, options: LaunchOptions, stdout: BinaryIO, stderr: BinaryIO) -> None:
        self.options = options
        self.out = Sink(stdout)
        self.err = Sink(stderr)
        self.job_id = uuid.uuid4().hex
        self.ranks: list[_Rank] = []
        self._selector = selectors.DefaultSelector()
        self._shm: ShmJob | None = None
        self._rendezvous: RendezvousServer | None = None  # --transport tcp
        self._job_key: JobKey | None = None
        self._verdict: tuple[int, str] | None = None   # (status, reason), first one wins
        self._kill_at: float | None = None            # when to SIGKILL what is left
        self._stacks_at: float | None = None          # when to print the --timeout report
        self._blocked: dict[int, tuple[str, float]] = {}
        self._signal: int | None = None
        self._signals_seen = 0
        self._start_time = time.monotonic()

    # -- starting ----------------------------------------------------------------

    def start(self) -> None:
        _raise_fd_limit(self.options.nprocs)
        ensure_compiled()
        self._shm = ShmJob.create(self.options.nprocs)
        if self.options.transport == "tcp":
            from shoal.security import JobKey
            from shoal.transport.rendezvous import RendezvousServer

            self._job_key = JobKey.generate(self.job_id)
            self._rendezvous = RendezvousServer(self._job_key, self.options.nprocs).start()
        try:
            for rank in range(self.options.nprocs):
                self.ranks.append(self._spawn(rank))
            # The ranks hold their own copies now; ours would keep pipes open.
            self._shm.close_rank_fds()
        except BaseException:
            self._kill_everything()
            self._close()
            raise
        self._start_time = time.monotonic()

    def _rank_env(self, rank: int) -> dict[str, str]:
        env = dict(os.environ)
        env["PYTHONUNBUFFERED"] = "1"  # output streams live; a user --env may override
        env.update(self.options.env)
        assert self._shm is not None
        env.update(self._shm.rank_env(rank))
        env.update(SHOAL_RANK=str(rank), SHOAL_SIZE=str(self.options.nprocs),
                   SHOAL_JOB_ID=self.job_id, SHOAL_LAUNCHER_PID=str(os.getpid()))
        if self._rendezvous is not None:
            env.update(SHOAL_TRANSPORT="tcp", SHOAL_RENDEZVOUS=self._rendezvous.address_text,
                       SHOAL_TCP_HOST="127.0.0.1")
        return env

    def _spawn(self, rank: int) -> _Rank:
        assert self._shm is not None
        read_end, write_end = control.open_channel()
        env = self._rank_env(rank)
        env[control.ENV_VAR] = str(write_end)
        key_fds: tuple[int, ...] = ()
        if self._job_key is not None:  # the key goes through a pipe, never the environment
            key_fds = os.pipe()
            env["SHOAL_JOB_KEY_FD"] = str(key_fds[0])
        argv = [sys.executable, "-m", "shoal.launch.bootstrap", "--",
                *self.options.target_argv()]
        try:
            # Started from this thread, which lives as long as the job: the
            # ranks' PR_SET_PDEATHSIG fires when the *thread* that forked them ends.
            proc = subprocess.Popen(
                argv, env=env, stdin=None if rank == 0 else subprocess.DEVNULL,
                stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True,
                pass_fds=(write_end, *key_fds[:1], *self._shm.rank_fds(rank)))
            if self._job_key is not None:
                os.write(key_fds[1], self._job_key.hex().encode())
        except OSError as exc:
            os.close(read_end)
            raise LaunchError(f"could not start rank {rank}: {exc}") from exc
        finally:
            os.close(write_end)
            for fd in key_fds:
                os.close(fd)
        assert proc.stdout is not None and proc.stderr is not None
        streams: dict[int, LineStream] = {}
        pipes: dict[int, IO[bytes]] = {}
        for pipe, sink in ((proc.stdout, self.out), (proc.stderr, self.err)):
            fd = pipe.fileno()
            os.set_blocking(fd, False)
            streams[fd] = LineStream(rank, sink, self.options.tag_output)
            pipes[fd] = pipe
        entry = _Rank(rank, proc, streams, control.ControlReader(rank), read_end, pipes)
        for fd in (*streams, read_end):
            self._selector.register(fd, selectors.EVENT_READ, entry)
        return entry

    # -- the loop ----------------------------------------------------------------

    def wait(self) -> JobResult:
        previous = self._catch_signals()
        try:
            while any(r.running for r in self.ranks):
                self._read(_TICK)
                now = time.monotonic()
                for stream in self._all_streams():
                    stream.flush_stale(now)
                self._reap()
                self._check_signal()
                self._check_timeout(now)
                self._check_kill(now)
            self._drain()
        finally:
            self._restore_signals(previous)
            self._kill_everything()
            self._close()
        status, reason = self._verdict or (0, "finished")
        return JobResult(status, [r.returncode for r in self.ranks], reason)

    def _all_streams(self) -> list[LineStream]:
        return [s for r in self.ranks for s in r.streams.values()]

    def _read(self, timeout: float) -> None:
        for key, _ in self._selector.select(timeout):
            entry: _Rank = key.data
            self._read_fd(entry, int(key.fd))

    def _read_fd(self, entry: _Rank, fd: int) -> None:
        try:
            data = os.read(fd, 65536)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        now = time.monotonic()
        stream = entry.streams.get(fd)
        if data:
            if stream is not None:
                stream.feed(data, now)
            else:
                for event in entry.reader.feed(data):
                    self._on_event(entry, event)
            return
        # End of file: the rank (and everything in its group) closed this pipe.
        self._selector.unregister(fd)
        if stream is not None:
            stream.flush()
            del entry.streams[fd]
            entry.pipes.pop(fd).close()
        else:
            for event in entry.reader.finish():
                self._on_event(entry, event)
            os.close(fd)
            entry.control_fd = -1

    def _drain_rank(self, entry: _Rank) -> None:
        """Read what a rank has written so far, so its last words come out in order."""
        for _ in range(64):  # bounded: a process that keeps writing cannot hold us here
            fds = [fd for fd in (*entry.streams, entry.control_fd) if fd >= 0]
            if not fds:
                return
            poller = select.poll()
            for fd in fds:
                poller.register(fd, select.POLLIN)
            ready = poller.poll(0)
            if not ready:
                return
            for fd, _ in ready:
                if fd in entry.streams or fd == entry.control_fd:
                    self._read_fd(entry, fd)

    def _drain(self) -> None:
        """After the last rank ended: take what is left in the pipes, briefly."""
        deadline = time.monotonic() + DRAIN_AFTER_EXIT
        while self._selector.get_map() and time.monotonic() < deadline:
            self._read(_TICK)
        for stream in self._all_streams():
            stream.flush()

    def _reap(self) -> None:
        ended = []
        for entry in self.ranks:
            if not entry.running:
                continue
            pid = entry.proc.pid
            try:
                # WNOWAIT: look without reaping, so the process group still
                # exists (with the zombie leader in it) while we kill whatever
                # the rank left behind; no pid can be reused before we reap.
                exited = os.waitid(os.P_PID, pid,
                                   os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None
            except ChildProcessError:
                exited = True  # reaped elsewhere already; Popen.wait copes with that
            if not exited:
                continue
            _killpg(pid, signal.SIGKILL)
            entry.returncode = entry.proc.wait()
            self._drain_rank(entry)
            ended.append(entry)
        # Judged together: ranks that ended at the same moment were not "still running".
        for entry in ended:
            self._on_exit(entry)

    # -- what happened -----------------------------------------------------------

    def _decide(self, status: int, reason: str) -> bool:
        """Record the job's outcome if none is recorded yet; True if this one counts."""
        if self._verdict is not None:
            return False
        self._verdict = (status, reason)
        return True

    def _on_exit(self, entry: _Rank) -> None:
        code = entry.returncode
        assert code is not None
        if self._kill_at is not None or self._stacks_at is not None:
            return  # the job is being stopped: ranks end because we end them
        others = [r.rank for r in self.ranks if r.running]
        ending = control.judge_exit(entry.progress, code, bool(others))
        if ending is control.Ending.CLEAN:
            return
        how = (f"was killed by {_signal_name(-code)}" if code < 0
               else f"exited with status {code}")
        if ending is control.Ending.FAILED:
            # It finished its part (or never took part): the others run on.
            self._decide(exit_status(code), "failed")
            self.err.message(f"shoal: rank {entry.rank} {how}")
            return
        self._decide(exit_status(code) or 1, "failed")
        if code >= 0:
            how += " without finalizing"
        self.err.message(f"shoal: rank {entry.rank} {how} while {_rank_list(others)} "
                         f"{'was' if len(others) == 1 else 'were'} still running; "
                         f"stopping {'it' if len(others) == 1 else 'them'}")
        self._stop()

    def _on_event(self, entry: _Rank, event: control.ControlEvent) -> None:
        entry.progress.observe(event)
        fields = event.fields
        if event.event == control.ERROR:
            if self._decide(_as_int(fields.get("status"), 1), "failed"):
                text = str(fields.get("traceback", "")).rstrip("\n")
                self.err.message(f"shoal: rank {event.rank} failed:\n{text}")
                # The failing rank is exiting by itself; give it until the SIGKILL.
                self._stop(spare=event.rank)
            else:
                # One line, not N tracebacks, when several ranks fail alike.
                summary = str(fields.get("exception", "an exception")).splitlines()
                self.err.message(f"shoal: rank {event.rank} also failed: "
                                 f"{summary[0] if summary else 'an exception'}")
        elif event.event == control.ABORT:
            code = _as_int(fields.get("code"), 1)
            if self._decide(code, "abort"):
                message = str(fields.get("message") or "")
                self.err.message(f"shoal: rank {event.rank} called Abort({code})"
                                 + (f": {message}" if message else ""))
                self._stop()
        elif event.event == control.USAGE and self._decide(2, "usage"):
            self.err.message(f"shoal run: error: {fields.get('message', 'bad usage')}")
            self._stop()
        # Any other event is for a newer launcher: ignore it.

    def _stop(self, spare: int | None = None) -> None:
        """SIGTERM every running rank's group now (but ``spare``), SIGKILL later."""
        for entry in self.ranks:
            if entry.running and entry.rank != spare:
                _killpg(entry.proc.pid, signal.SIGTERM)
        if self._kill_at is None:
            self._kill_at = time.monotonic() + KILL_AFTER

    def _check_kill(self, now: float) -> None:
        if self._kill_at is not None and now >= self._kill_at:
            for entry in self.ranks:
                if entry.running:
                    _killpg(entry.proc.pid, signal.SIGKILL)

    # -- --timeout -----------------------------------------------------------------

    def _check_timeout(self, now: float) -> None:
        timeout = self.options.timeout
        if self._stacks_at is not None:
            if now >= self._stacks_at:
                self._stacks_at = None
                self._report_timeout()
                self._stop()
            return
        if timeout is None or now - self._start_time < timeout:
            return
        if not self._decide(124, "timeout"):
            return
        assert self._shm is not None
        self._blocked = self._shm.blocked_calls()
        # Ask each live rank for its Python stacks (faulthandler, set up by the
        # bootstrap) and keep its stderr apart for a moment to collect them.
        for entry in self.ranks:
            if entry.running:
                for stream in entry.streams.values():
                    if stream.sink is self.err:
                        stream.start_capture()
                _kill(entry.proc.pid, signal.SIGUSR1)
        self._stacks_at = now + STACK_WAIT

    def _report_timeout(self) -> None:
        lines = [f"shoal: timed out after {self.options.timeout:g} s; the ranks were:"]
        stacks: list[tuple[int, bytes]] = []
        for entry in self.ranks:
            captured = b""
            for stream in entry.streams.values():
                if stream.captured is not None:
                    captured += stream.end_capture()
            if entry.rank in self._blocked:
                call, seconds = self._blocked[entry.rank]
                lines.append(f"  rank {entry.rank}: blocked in {call} for {seconds:.1f} s")
            elif entry.running:
                lines.append(f"  rank {entry.rank}: running")
            else:
                lines.append(f"  rank {entry.rank}: finished with status "
                             f"{exit_status(entry.returncode or 0)}")
            if captured:
                stacks.append((entry.rank, captured))
        self.err.message("\n".join(lines))
        for rank, text in stacks:
            self.err.message(f"shoal: rank {rank} stack:")
            self.err.write(_without_bootstrap_frames(text))

    # -- signals to the launcher ---------------------------------------------------

    def _catch_signals(self) -> dict[int, object]:
        previous: dict[int, object] = {}
        try:
            for signum in _STOP_SIGNALS:
                previous[signum] = signal.signal(signum, self._on_signal)
        except ValueError:
            pass  # not the main thread: the caller handles signals
        return previous

    def _restore_signals(self, previous: dict[int, object]) -> None:
        for signum, handler in previous.items():
            signal.signal(signum, handler)  # type: ignore[arg-type]

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        # Only note it: the loop acts within one tick, outside the handler.
        self._signal = signum
        self._signals_seen += 1

    def _check_signal(self) -> None:
        if self._signal is None:
            return
        signum, self._signal = self._signal, None
        if self._decide(128 + signum, "signal"):
            self.err.message(f"shoal: got {_signal_name(signum)}, stopping all ranks")
        if self._signals_seen > 1:
            self._kill_at = time.monotonic()  # asked twice: no more patience
        self._stop()

    # -- the end -------------------------------------------------------------------

    def _kill_everything(self) -> None:
        for entry in self.ranks:
            if entry.running:
                _killpg(entry.proc.pid, signal.SIGKILL)
                entry.returncode = entry.proc.wait()

    def _close(self) -> None:
        for entry in self.ranks:
            for pipe in entry.pipes.values():
                pipe.close()
            entry.pipes.clear()
            if entry.control_fd >= 0:
                os.close(entry.control_fd)
                entry.control_fd = -1
        self._selector.close()
        if self._shm is not None:
            self._shm.close()
            self._shm = None
        if self._rendezvous is not None:
            self._rendezvous.close()


def run_job(options: LaunchOptions, stdout: BinaryIO | None = None,
            stderr: BinaryIO | None = None) -> JobResult:
    """Run a job to its end; output goes to ``stdout``/``stderr`` (default: this process's)."""
    job = LocalJob(options, stdout or sys.stdout.buffer, stderr or sys.stderr.buffer)
    job.start()
    return job.wait()


def _raise_fd_limit(nprocs: int) -> None:
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


def _without_bootstrap_frames(dump: bytes) -> bytes:
    """A faulthandler dump minus the frames every rank has below the program."""
    own = (b"shoal/launch/bootstrap.py\"", b"\"<frozen runpy>\"")
    lines = [line for line in dump.splitlines(keepends=True)
             if not any(marker in line for marker in own)]
    text = b"".join(lines)
    return text if text.endswith(b"\n") else text + b"\n"


def _rank_list(ranks: Sequence[int]) -> str:
    """``rank 0``, ``ranks 0 and 2``, ``ranks 0, 2-5 and 9``: runs of ranks shortened."""
    runs: list[list[int]] = []
    for rank in sorted(ranks):
        if runs and rank == runs[-1][1] + 1:
            runs[-1][1] = rank
        else:
            runs.append([rank, rank])
    parts = [str(a) if a == b else f"{a}, {b}" if b == a + 1 else f"{a}-{b}" for a, b in runs]
    if len(ranks) == 1:
        return f"rank {parts[0]}"
    text = ", ".join(parts)
    head, sep, last = text.rpartition(", ")
    return f"ranks {head} and {last}" if sep else f"ranks {text}"


def _killpg(pgid: int, signum: int) -> None:
    try:
        os.killpg(pgid, signum)
    except (ProcessLookupError, PermissionError):
        pass


def _kill(pid: int, signum: int) -> None:
    try:
        os.kill(pid, signum)
    except (ProcessLookupError, PermissionError):
        pass


def _signal_name(signum: int) -> str:
    try:
        return signal.Signals(signum).name
    except ValueError:
        return f"signal {signum}"


def _as_int(value: object, default: int) -> int:
    try:
        return int(value)  # type: ignore[call-overload]
    except (TypeError, ValueError):
        return default
