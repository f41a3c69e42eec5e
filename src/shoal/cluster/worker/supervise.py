"""A job's supervisor: starts the job, tracks every process it makes, ends them all.

The worker runs one supervisor per job, as ``python -I -S supervise.py FD
CGROUP CWD -- COMMAND...`` (CGROUP and CWD may be empty); this file imports
only a few modules of the standard library (``-S``: no site-packages, so it
starts in about 10 ms, and ``-I``: no ``PYTHON*`` variable of the job's
environment can change it).  It
sits in a session of its own, so a signal to the worker's process group
(Ctrl-C in its terminal, ``kill -- -PGID``) does not reach it.

It starts the command as the leader of a new session and keeps track of every
process the job makes, whatever they do (``setsid``, double forks, ignoring
SIGTERM), in one of two ways:

* ``cgroup``: the job runs in a cgroup v2 of its own (CGROUP, a folder the
  supervisor makes); every process the job starts is in it, and
  ``cgroup.kill`` ends them all at once;
* ``subreaper``: the supervisor is a child subreaper (``PR_SET_CHILD_SUBREAPER``),
  so a process orphaned inside the job (a double fork, a ``setsid`` daemon) is
  re-parented to it rather than to init: the job is every descendant of the
  supervisor, found in ``/proc``, and killing is repeated until none is left.

Elsewhere than Linux only the job's process group is signalled (``group``).

The control socket (FD, one end of a socketpair with the worker) carries
lines.  The worker sends ``kill N`` (signal N to every process of the job).
The supervisor sends ``pid PID MODE`` once the command runs, or ``error
TEXT`` if it could not start; then ``exit CODE`` or ``signal N`` when the
leader ends, and ``clean`` once nothing of the job is left.  When the leader
ends, whatever it left behind is killed (SIGKILL).  When the control socket
closes (the worker stopped, or was killed with SIGKILL) or the supervisor gets
SIGTERM, it kills the whole job and exits, so no process of a job outlives its
worker.
"""

from __future__ import annotations

import contextlib
import os
import select
import signal
import sys
import time

PR_SET_CHILD_SUBREAPER = 36
CLEAN_WITHIN_S = 10.0   # how long killing what a job left behind may take
_LINUX = sys.platform.startswith("linux")


class Tracker:
    """The processes of one job: its cgroup, or the supervisor's descendants."""

    def __init__(self, cgroup: str | None) -> None:
        self.cgroup: str | None = None
        self.leader = 0
        if cgroup is not None:
            self.cgroup = _make_cgroup(cgroup)
        subreaper = _subreaper()  # in both modes: orphans of the job are reaped here
        self.mode = "cgroup" if self.cgroup else "subreaper" if subreaper else "group"

    def join(self) -> None:
        """Put the calling process (the job, before it runs the command) in the cgroup."""
        if self.cgroup is not None:
            with open(os.path.join(self.cgroup, "cgroup.procs"), "w") as procs:
                procs.write("0")

    def members(self) -> list[int]:
        if self.cgroup is not None:
            try:
                with open(os.path.join(self.cgroup, "cgroup.procs")) as procs:
                    return [int(line) for line in procs if line.strip()]
            except OSError:
                return []
        if self.mode == "subreaper":
            return _descendants(os.getpid())
        return []

    def signal(self, signum: int) -> None:
        if self.mode == "group":
            with contextlib.suppress(OSError):
                os.killpg(self.leader, signum)
            return
        if signum == signal.SIGKILL and self.cgroup is not None:
            try:  # atomic: nothing can fork its way out (Linux >= 5.14)
                with open(os.path.join(self.cgroup, "cgroup.kill"), "w") as kill:
                    kill.write("1")
                return
            except OSError:
                pass
        for pid in self.members():
            with contextlib.suppress(OSError):
                os.kill(pid, signum)

    def empty(self) -> bool:
        if self.mode == "group":
            try:
                os.killpg(self.leader, 0)
                return False
            except OSError:
                return True
        return not self.members()

    def remove(self) -> None:
        if self.cgroup is not None:
            with contextlib.suppress(OSError):
                os.rmdir(self.cgroup)


def _make_cgroup(path: str) -> str | None:
    """Make the job's cgroup (and the worker's folder, if a worker starting meanwhile
    removed it while it was empty); None where cgroups cannot be made."""
    for _ in range(2):
        try:
            os.makedirs(path)
            return path
        except FileNotFoundError:
            continue  # the folder went between making it and the job's: once more
        except OSError:
            return None  # not allowed here: the subreaper will do
    return None


def _subreaper() -> bool:
    if not _LINUX or not os.path.isdir("/proc/self"):
        return False
    try:
        import ctypes

        return ctypes.CDLL(None, use_errno=True).prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


def _descendants(root: int) -> list[int]:
    """Every live process below ``root``, from /proc (zombies are left to be reaped)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as stat:
                fields = stat.read().rsplit(b")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if fields[0] != b"Z":
            children.setdefault(int(fields[1]), []).append(int(entry))
    found, todo = [], [root]
    while todo:
        for child in children.get(todo.pop(), ()):
            found.append(child)
            todo.append(child)
    return found


def _reap(leader: int) -> int | None:
    """Collect every dead child (orphans adopted as subreaper too); the leader's status."""
    status = None
    while True:
        try:
            pid, code = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return status
        if pid == 0:
            return status
        if pid == leader:
            status = code


def _start(command: list[str], cwd: str | None, tracker: Tracker) -> int:
    """Fork the job's leader; its pid, or OSError with what failed."""
    error_r, error_w = os.pipe()  # close-on-exec: EOF without a word means exec worked
    pid = os.fork()
    if pid == 0:  # the job
        step = "cannot start the job's session"
        try:
            os.close(error_r)
            os.setsid()
            step = "cannot put the job in its cgroup"
            tracker.join()
            signal.set_wakeup_fd(-1)
            for signum in (signal.SIGINT, signal.SIGHUP, signal.SIGTERM, signal.SIGPIPE,
                           signal.SIGCHLD, signal.SIGXFSZ):
                signal.signal(signum, signal.SIG_DFL)
            signal.pthread_sigmask(signal.SIG_SETMASK, [])
            if cwd:
                step = f"cannot enter the folder {cwd!r}"
                os.chdir(cwd)
            step = f"cannot start {command[0]!r}"
            os.execvp(command[0], command)
        except OSError as exc:
            os.write(error_w, f"{step}: {exc.strerror or exc}".encode(errors="replace"))
        finally:
            os._exit(127)
    os.close(error_w)
    with os.fdopen(error_r, "rb") as pipe:
        failure = pipe.read()
    if failure:
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, 0)
        raise OSError(failure.decode(errors="replace"))
    return pid


class Supervisor:
    def __init__(self, control: int, tracker: Tracker) -> None:
        self.control = control
        self.tracker = tracker
        self.stop = False  # SIGTERM, or the worker went away
        self._buffer = b""

    def say(self, line: str) -> None:
        data = line.encode(errors="replace") + b"\n"
        with contextlib.suppress(OSError):
            while data:
                data = data[os.write(self.control, data):]

    def run(self, command: list[str], cwd: str | None) -> None:
        wake_r, wake_w = os.pipe()
        os.set_blocking(wake_w, False)
        signal.set_wakeup_fd(wake_w)
        signal.signal(signal.SIGCHLD, lambda *_: None)
        signal.signal(signal.SIGTERM, self._terminate)
        try:
            leader = self.tracker.leader = _start(command, cwd, self.tracker)
        except OSError as exc:
            self.say(f"error {exc}")
            self.tracker.remove()
            return
        self.say(f"pid {leader} {self.tracker.mode}")
        status = self._watch(leader, wake_r)
        if status is not None:
            if os.WIFSIGNALED(status):
                self.say(f"signal {os.WTERMSIG(status)}")
            else:
                self.say(f"exit {os.waitstatus_to_exitcode(status)}")
        self._clean(leader)
        self.say("clean")

    def _terminate(self, *_: object) -> None:
        self.stop = True

    def _watch(self, leader: int, wake: int) -> int | None:
        """Until the leader ends (its wait status) or the supervisor must stop (None)."""
        poll = select.poll()  # not select.select: it fails on descriptors >= 1024
        poll.register(self.control, select.POLLIN)
        poll.register(wake, select.POLLIN)
        while not self.stop:
            status = _reap(leader)
            if status is not None:
                return status
            for fd, _ in poll.poll():
                if fd == wake:
                    with contextlib.suppress(OSError):
                        os.read(wake, 512)
                else:
                    self._commands()
        return None

    def _commands(self) -> None:
        try:
            data = os.read(self.control, 4096)
        except OSError:
            data = b""
        if not data:  # the worker is gone: nothing of the job may outlive it
            self.stop = True
            return
        self._buffer += data
        while b"\n" in self._buffer:
            line, self._buffer = self._buffer.split(b"\n", 1)
            words = line.split()
            if len(words) == 2 and words[0] == b"kill" and words[1].isdigit() \
                    and 0 < int(words[1]) < 65:
                self.tracker.signal(int(words[1]))

    def _clean(self, leader: int) -> None:
        """SIGKILL every process of the job until none is left (or CLEAN_WITHIN_S)."""
        deadline = time.monotonic() + CLEAN_WITHIN_S
        pause = 0.001
        while True:
            _reap(leader)
            if self.tracker.empty() or time.monotonic() > deadline:
                break
            self.tracker.signal(signal.SIGKILL)
            time.sleep(pause)
            pause = min(pause * 2, 0.05)
        _reap(leader)
        self.tracker.remove()


def main(argv: list[str]) -> int:
    fd, cgroup, cwd, command = int(argv[0]), argv[1] or None, argv[2] or None, argv[4:]
    os.set_inheritable(fd, False)
    for signum in (signal.SIGINT, signal.SIGHUP, signal.SIGPIPE):
        signal.signal(signum, signal.SIG_IGN)
    Supervisor(fd, Tracker(cgroup)).run(command, cwd)
    os.close(fd)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
