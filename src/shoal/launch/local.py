"""The local launcher: N ranks of one program on this machine, watched until they end.

Each rank is ``python -m shoal.launch.bootstrap -- prog.py args`` in its own
session (so it and anything it starts can be killed as one process group, and a
Ctrl-C on the terminal reaches the launcher only), or the same forked by the
fork server (:mod:`shoal.launch.forkserver`), which saves each rank Python's
start-up.  The launcher reads every rank's stdout, stderr and control pipe, and
notices each rank's end, in one ``selectors`` loop on the calling thread, and
decides the job's exit status:

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
from collections.abc import Sequence
from types import FrameType
from typing import TYPE_CHECKING, BinaryIO, Protocol

from shoal.errors import LaunchError
from shoal.launch import control, forkserver, triage
from shoal.launch.bytecode import ensure_compiled
from shoal.launch.options import LaunchOptions, raise_fd_limit
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


__all__ = ["JobResult", "LaunchOptions", "LocalJob", "exit_status", "run_job"]


class JobResult:
    """How a job ended."""

    __slots__ = ("status", "returncodes", "reason")

    def __init__(self, status: int, returncodes: list[int | None],
                 reason: str = "finished") -> None:
        self.status = status              # the launcher's exit status
        self.returncodes = returncodes    # each rank's, as subprocess reports it
        self.reason = reason              # finished, failed, abort, timeout, usage, signal

    def __repr__(self) -> str:
        return f"JobResult({self.status!r}, {self.returncodes!r}, {self.reason!r})"


def exit_status(returncode: int) -> int:
    """A shell-style status: a death by signal N is 128 + N."""
    return 128 - returncode if returncode < 0 else returncode


class _Process(Protocol):
    """A started rank, whoever started it."""

    pid: int

    def ended(self) -> int | None:
        """Its return code if it has ended (what it left in its group is killed), else None."""

    def wait(self) -> int:
        """Its return code, once it has ended."""


class _Child:
    """A rank started as a child of the launcher (``python -m shoal.launch.bootstrap``)."""

    def __init__(self, popen: subprocess.Popen[bytes]) -> None:
        self.popen = popen
        self.pid = popen.pid

    def ended(self) -> int | None:
        try:
            # WNOWAIT: look without reaping, so the process group still
            # exists (with the zombie leader in it) while we kill whatever
            # the rank left behind; no pid can be reused before we reap.
            exited = os.waitid(os.P_PID, self.pid,
                               os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None
        except ChildProcessError:
            exited = True  # reaped elsewhere already; Popen.wait copes with that
        if not exited:
            return None
        _killpg(self.pid, signal.SIGKILL)
        return self.popen.wait()

    def wait(self) -> int:
        return self.popen.wait()


class _Forked:
    """A rank forked by the fork server, which reports its end (and kills its group)."""

    def __init__(self, server: forkserver.ForkServer, rank: int, pid: int) -> None:
        self.server = server
        self.rank = rank
        self.pid = pid

    def ended(self) -> int | None:
        code = self.server.returncodes.get(self.rank)
        if code is not None:
            self.server.release(self.rank)
        return code

    def wait(self) -> int:
        code = self.server.wait_for(self.rank, KILL_AFTER)
        if code is None:  # the server is stuck or gone: its death kills the rank
            self.server.kill()
            return -signal.SIGKILL
        self.server.release(self.rank)
        return code


class _Rank:
    def __init__(self, rank: int, proc: _Process, streams: dict[int, LineStream],
                 control_fd: int, pidfd: int) -> None:
        self.rank = rank
        self.proc = proc
        self.streams = streams            # stdout and stderr by fd (closed at EOF)
        self.reader = control.ControlReader(rank)
        self.control_fd = control_fd
        self.pidfd = pidfd                # readable when the rank ends (launcher's children)
        self.returncode: int | None = None
        self.progress = control.RankProgress()

    @property
    def running(self) -> bool:
        return self.returncode is None


class _Pipes:
    """The launcher's ends and the rank's ends of one rank's pipes."""

    def __init__(self, stdout: tuple[int, int], stderr: tuple[int, int],
                 control: tuple[int, int], key: tuple[int, int] | None) -> None:
        self.stdout = stdout
        self.stderr = stderr
        self.control = control
        self.key = key                    # the job key for --transport tcp

    def rank_ends(self) -> list[int]:
        return [self.stdout[1], self.stderr[1], self.control[1],
                *(self.key[:1] if self.key else ())]

    def close_rank_ends(self) -> None:
        for fd in self.rank_ends():
            os.close(fd)
        if self.key is not None:
            os.close(self.key[1])

    def close_all(self) -> None:
        self.close_rank_ends()
        for fd in (self.stdout[0], self.stderr[0], self.control[0]):
            os.close(fd)


class LocalJob:
    """One run of :class:`LaunchOptions`; use :func:`run_job`."""

    def __init__(self, options: LaunchOptions, stdout: BinaryIO, stderr: BinaryIO,
                 server: forkserver.ForkServer | None = None) -> None:
        self.options = options
        self.out = Sink(stdout)
        self.err = Sink(stderr)
        self.job_id = os.urandom(16).hex()  # as uuid4().hex, without importing uuid
        self.ranks: list[_Rank] = []
        self._selector = selectors.DefaultSelector()
        self._shm: ShmJob | None = None
        self._rendezvous: RendezvousServer | None = None  # --transport tcp
        self._job_key: JobKey | None = None
        self._verdict: tuple[int, str] | None = None   # (status, reason), first one wins
        self._kill_at: float | None = None            # when to SIGKILL what is left
        self._stacks_at: float | None = None          # when to print the --timeout report
        self._blocked: dict[int, tuple[str, float]] = {}
        self._server = server  # started early by the caller, or by _fork_ranks
        self._signal: int | None = None
        self._signals_seen = 0
        self._start_time = time.monotonic()
        self._held = triage.Triage()  # lost-peer reports waiting a moment for their cause

    # -- starting ----------------------------------------------------------------

    def start(self) -> None:
        raise_fd_limit(self.options.nprocs)
        ensure_compiled()
        self._shm = ShmJob.create(self.options.nprocs)
        if self.options.transport == "tcp":
            from shoal.security import JobKey
            from shoal.transport.rendezvous import RendezvousServer

            self._job_key = JobKey.generate(self.job_id)
            self._rendezvous = RendezvousServer(self._job_key, self.options.nprocs).start()
        pipes: list[_Pipes] = []
        try:
            pipes = [self._open_pipes() for _ in range(self.options.nprocs)]
            if self._server is not None or forkserver.wanted(self.options.nprocs):
                self._fork_ranks(pipes)
            else:
                for rank, rank_pipes in enumerate(pipes):
                    self._spawn(rank, rank_pipes)
            for rank_pipes in pipes:
                if rank_pipes.key is not None and self._job_key is not None:
                    os.write(rank_pipes.key[1], self._job_key.hex().encode())
        except BaseException:
            for rank_pipes in pipes[len(self.ranks):]:
                rank_pipes.close_all()
            self._kill_everything()
            self._close()
            raise
        finally:
            # The ranks hold their own copies now; ours would keep pipes open.
            for rank_pipes in pipes[:len(self.ranks)]:
                rank_pipes.close_rank_ends()
            if self._shm is not None:
                self._shm.close_rank_fds()
        self._start_time = time.monotonic()

    def _common_env(self) -> dict[str, str]:
        """The environment every rank shares."""
        env = forkserver.shared_env(self.options)
        env["SHOAL_JOB_ID"] = self.job_id
        if self._rendezvous is not None:
            env.update(SHOAL_TRANSPORT="tcp", SHOAL_RENDEZVOUS=self._rendezvous.address_text,
                       SHOAL_TCP_HOST="127.0.0.1")
        return env

    def _rank_env(self, rank: int, pipes: _Pipes) -> dict[str, str]:
        assert self._shm is not None
        env = self._common_env()
        env.update(self._shm.rank_env(rank))
        env.update(SHOAL_RANK=str(rank))
        env[control.ENV_VAR] = str(pipes.control[1])
        if pipes.key is not None:  # the key goes through a pipe, never the environment
            env["SHOAL_JOB_KEY_FD"] = str(pipes.key[0])
        return env

    def _open_pipes(self) -> _Pipes:
        opened: list[int] = []
        try:
            for _ in range(3 if self._job_key is None else 4):
                opened.extend(os.pipe())
        except OSError as exc:
            for fd in opened:
                os.close(fd)
            raise LaunchError(f"could not start the ranks: {exc}") from exc
        for fd in opened[0:6:2]:  # the launcher's read ends are multiplexed
            os.set_blocking(fd, False)
        pairs = [(opened[i], opened[i + 1]) for i in range(0, len(opened), 2)]
        return _Pipes(pairs[0], pairs[1], pairs[2], pairs[3] if len(pairs) > 3 else None)

    def _spawn(self, rank: int, pipes: _Pipes) -> None:
        """Start one rank as a child of the launcher."""
        assert self._shm is not None
        argv = [sys.executable, "-m", "shoal.launch.bootstrap", "--",
                *self.options.target_argv()]
        try:
            # Started from this thread, which lives as long as the job: the
            # ranks' PR_SET_PDEATHSIG fires when the *thread* that forked them ends.
            proc = subprocess.Popen(
                argv, env=self._rank_env(rank, pipes),
                stdin=None if rank == 0 else subprocess.DEVNULL,
                stdout=pipes.stdout[1], stderr=pipes.stderr[1], start_new_session=True,
                pass_fds=(*pipes.rank_ends()[2:], *self._shm.rank_fds(rank)))
        except OSError as exc:
            raise LaunchError(f"could not start rank {rank}: {exc}") from exc
        pidfd = -1
        if hasattr(os, "pidfd_open"):
            try:
                pidfd = os.pidfd_open(proc.pid)
            except OSError:
                pass  # then the loop's tick notices the end
        self._add_rank(rank, _Child(proc), pipes, pidfd)

    def _fork_ranks(self, pipes: list[_Pipes]) -> None:
        """Start every rank through a fork server."""
        assert self._shm is not None
        n = self.options.nprocs
        if self._server is None:
            try:
                self._server = forkserver.start(self.options)
            except OSError as exc:
                raise LaunchError(f"could not start the ranks: {exc}") from exc
        common = self._server.env
        keeps = [(*pipes[r].rank_ends()[2:], *self._shm.rank_fds(r)) for r in range(n)]
        shared = set(keeps[0]).intersection(*keeps[1:])
        specs = []
        for rank in range(n):
            env = self._rank_env(rank, pipes[rank])
            specs.append({
                "rank": rank, "argv": ["--", *self.options.target_argv()],
                "env": {k: v for k, v in env.items() if common.get(k) != v},
                "stdin": rank == 0, "stdout": pipes[rank].stdout[1],
                "stderr": pipes[rank].stderr[1],
                "keep": [fd for fd in keeps[rank] if fd not in shared]})
        every = sorted({fd for keep in keeps for fd in keep}
                       | {fd for p in pipes for fd in p.rank_ends()[:2]})
        try:
            pids = self._server.start_ranks(specs, sorted(shared), every)
        except (OSError, forkserver.ForkServerError) as exc:
            raise LaunchError(f"could not start the ranks: {exc}") from exc
        for rank in range(n):
            self._add_rank(rank, _Forked(self._server, rank, pids[rank]), pipes[rank], -1)
        self._selector.register(self._server.reports, selectors.EVENT_READ, self._server)

    def _add_rank(self, rank: int, proc: _Process, pipes: _Pipes, pidfd: int) -> None:
        streams = {pipes.stdout[0]: LineStream(rank, self.out, self.options.tag_output),
                   pipes.stderr[0]: LineStream(rank, self.err, self.options.tag_output)}
        entry = _Rank(rank, proc, streams, pipes.control[0], pidfd)
        self.ranks.append(entry)
        for fd in (*streams, pipes.control[0], *([pidfd] if pidfd >= 0 else [])):
            self._selector.register(fd, selectors.EVENT_READ, entry)

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
                self._check_held(now)
            if self._verdict is None and self._held.held:  # all ended within the grace
                self._report_held()
            if self._server is not None and self._server.reports in self._selector.get_map():
                self._selector.unregister(self._server.reports)  # it has nothing more to say
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
            if isinstance(key.data, forkserver.ForkServer):
                if not key.data.feed():
                    self._on_server_gone()
            elif key.fd != key.data.pidfd:  # a pidfd only wakes the loop up: _reap looks
                self._read_fd(key.data, int(key.fd))

    def _on_server_gone(self) -> None:
        """The fork server died (its ranks die with it): say so, and end the job."""
        assert self._server is not None
        self._selector.unregister(self._server.reports)
        for entry in self.ranks:
            if entry.running and entry.rank not in self._server.returncodes:
                _killpg(entry.proc.pid, signal.SIGKILL)
                self._server.returncodes[entry.rank] = -signal.SIGKILL
        if self._decide(1, "failed"):
            self.err.message("shoal: the fork server that started the ranks died; "
                             "stopping the job")

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
            os.close(fd)
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
            code = entry.proc.ended()
            if code is None:
                continue
            entry.returncode = code
            self._forget_pidfd(entry)
            self._drain_rank(entry)
            ended.append(entry)
        # Judged together: ranks that ended at the same moment were not "still running".
        for entry in ended:
            self._on_exit(entry)

    # -- what happened -----------------------------------------------------------

    @property
    def _stopping(self) -> bool:
        """Whether the job is being ended (every rank is or will be signalled)."""
        return self._kill_at is not None or self._stacks_at is not None

    def _decide(self, status: int, reason: str, ends_job: bool = False) -> bool:
        """Record the job's outcome if none is recorded yet; True if this one counts.

        The first failing rank's status stands; only what ends the job from outside
        (``ends_job``: --timeout, a signal to the launcher) replaces the status of a
        rank that failed while the others ran on.
        """
        replaces = (ends_job and self._verdict is not None and self._verdict[1] == "failed"
                    and not self._stopping)
        if self._verdict is not None and not replaces:
            return False
        self._verdict = (status, reason)
        return True

    def _on_exit(self, entry: _Rank) -> None:
        code = entry.returncode
        assert code is not None
        if self._stopping or self._held.holds(entry.rank):
            return  # being stopped (we end them), or it reported already
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
            if fields.get("lost_peer") is True and not self._stopping:
                # Probably a consequence (a peer's link ended): wait a moment for the cause.
                self._held.hold(triage.Held(
                    rank=event.rank, where="", status=_as_int(fields.get("status"), 1),
                    traceback=str(fields.get("traceback", "")).rstrip("\n"),
                    summary=_first_line(fields.get("exception")), since=time.monotonic()))
            elif not self._stopping:
                self._decide(_as_int(fields.get("status"), 1), "failed")
                text = str(fields.get("traceback", "")).rstrip("\n")
                self.err.message(f"shoal: rank {event.rank} failed:\n{text}")
                # The failing rank is exiting by itself; give it until the SIGKILL.
                self._stop(spare=event.rank)
            else:
                # One line, not N tracebacks, when several ranks fail alike.
                self.err.message(f"shoal: rank {event.rank} also failed: "
                                 f"{_first_line(fields.get('exception'))}")
        elif event.event == control.ABORT:
            code = _as_int(fields.get("code"), 1)
            if not self._stopping:
                self._decide(code, "abort")
                message = str(fields.get("message") or "")
                self.err.message(f"shoal: rank {event.rank} called Abort({code})"
                                 + (f": {message}" if message else ""))
                self._stop()
        elif event.event == control.USAGE and not self._stopping:
            self._decide(2, "usage")
            self.err.message(f"shoal run: error: {fields.get('message', 'bad usage')}")
            self._stop()
        # Any other event is for a newer launcher: ignore it.

    def _check_held(self, now: float) -> None:
        if self._held.due(now) is None:
            return
        if self._verdict is None:
            self._stop(spare=self._report_held())
        else:  # a rank failed after finalizing meanwhile: these come after it
            for report in self._held.release():
                self.err.message(f"shoal: rank {report.rank} also failed: {report.summary}")

    def _report_held(self) -> int:
        """No cause came for the held lost-peer reports: the first is the job's failure."""
        first, *others = self._held.release()
        self._decide(first.status, "failed")
        self.err.message(f"shoal: rank {first.rank} failed:\n{first.traceback}")
        for report in others:
            self.err.message(f"shoal: rank {report.rank} also failed: {report.summary}")
        return first.rank

    def _stop(self, spare: int | None = None) -> None:
        """SIGTERM every running rank's group now (but ``spare``), SIGKILL later."""
        for report in self._held.release():  # consequences of the cause just reported
            self.err.message(f"shoal: rank {report.rank} also failed: {report.summary}")
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
        if self._stopping:
            return
        self._decide(124, "timeout", ends_job=True)
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
        if self._decide(128 + signum, "signal", ends_job=True):
            self.err.message(f"shoal: got {_signal_name(signum)}, stopping all ranks")
        if self._signals_seen > 1:
            self._kill_at = time.monotonic()  # asked twice: no more patience
        self._stop()

    # -- the end -------------------------------------------------------------------

    def _kill_everything(self) -> None:
        for entry in self.ranks:
            if entry.running:
                _killpg(entry.proc.pid, signal.SIGKILL)
        for entry in self.ranks:
            if entry.running:
                entry.returncode = entry.proc.wait()

    def _forget_pidfd(self, entry: _Rank) -> None:
        if entry.pidfd >= 0:
            self._selector.unregister(entry.pidfd)
            os.close(entry.pidfd)
            entry.pidfd = -1

    def _close(self) -> None:
        for entry in self.ranks:
            for fd in entry.streams:
                os.close(fd)
            entry.streams.clear()
            if entry.control_fd >= 0:
                os.close(entry.control_fd)
                entry.control_fd = -1
            self._forget_pidfd(entry)
        self._selector.close()
        if self._server is not None:
            self._server.close()
            self._server = None
        if self._shm is not None:
            self._shm.close()
            self._shm = None
        if self._rendezvous is not None:
            self._rendezvous.close()


def run_job(options: LaunchOptions, stdout: BinaryIO | None = None,
            stderr: BinaryIO | None = None,
            server: forkserver.ForkServer | None = None) -> JobResult:
    """Run a job to its end; output goes to ``stdout``/``stderr`` (default: this process's).

    ``server``: a fork server started early for this job (:func:`forkserver.start_for`);
    the job owns it from here, and closes it whether it uses it or not."""
    job = LocalJob(options, stdout or sys.stdout.buffer, stderr or sys.stderr.buffer, server)
    job.start()
    return job.wait()


def _without_bootstrap_frames(dump: bytes) -> bytes:
    """A faulthandler dump minus the frames every rank has below the program."""
    own = (b"shoal/launch/bootstrap.py\"", b"shoal/launch/forkserver.py\"",
           b"\"<frozen runpy>\"")
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


def _first_line(exception: object) -> str:
    lines = str(exception or "an exception").splitlines()
    return lines[0] if lines else "an exception"


def _as_int(value: object, default: int) -> int:
    try:
        return int(value)  # type: ignore[call-overload]
    except (TypeError, ValueError):
        return default
