"""How a futures manager reaches its workers: over an MPI communicator, or over sockets.

A manager (in the process that submits) talks to workers through a *client link*; each
worker serves through a *server link*.  Both carry Python objects (pickled):

* :class:`MpiClient` / :class:`MpiServer`: the workers are ranks of a communicator the
  manager's rank belongs to (``MPICommExecutor``, and ``shoal run -m mpi4py.futures``);
  a private duplicate of it carries the traffic, a tag per executor.
* :class:`SocketClient` / :class:`SocketServer`: the workers are a job of their own
  (``MPIPoolExecutor``'s default: :func:`spawn_job` starts ``shoal run -n N`` of the
  worker program), each connected back to the manager over a Unix socket in a private
  folder (mode 0700) and proving with a one-time token that it is the manager's: only
  then is anything it sends unpickled.
"""

from __future__ import annotations

import contextlib
import hmac
import os
import pickle
import secrets
import selectors
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

from shoal.spmd import mpi as _mpi

MPI: Any = _mpi
_HEADER = struct.Struct("!Q")
ADDRESS_VAR = "SHOAL_FUTURES_ADDRESS"
TOKEN_VAR = "SHOAL_FUTURES_TOKEN"
CONNECT_TIMEOUT = 60.0  # seconds a spawned worker has to call back


class Backoff:
    """Sleeps that grow from ~1 us to ``seconds`` while nothing happens (mpi4py's)."""

    def __init__(self, seconds: float = 0.001) -> None:
        self.tmax = max(float(seconds), 0.0)
        self.tmin = self.tmax / (1 << 10)
        self.tval = 0.0

    def reset(self) -> None:
        self.tval = 0.0

    def next(self) -> float:
        """The next interval to wait (0 right after a reset), growing to ``seconds``."""
        value = self.tval
        self.tval = min(self.tmax, max(self.tmin, self.tval * 2))
        return value

    def sleep(self) -> None:
        time.sleep(self.next())


class SerializedLock:
    """Serializes the futures' MPI calls when MPI gives less than THREAD_MULTIPLE."""

    lock: threading.Lock | None = None

    @contextlib.contextmanager
    def held(self) -> Iterator[None]:
        lock = self.lock
        if lock is None:
            yield
            return
        with lock:
            yield


serialized_lock = SerializedLock()


# -- over MPI --------------------------------------------------------------------

def _pkl5(comm: Any) -> Any:
    """``comm`` with pkl5's object messages: pickling errors are the objects' own
    (a task's ``ZeroDivisionError`` stays one), as with mpi4py's pickle."""
    from shoal.compat.mpi4py.util import pkl5

    return pkl5.Intracomm(comm)


class MpiClient:
    """The manager's side: workers are ranks ``workers`` of ``comm``; ``tag`` is ours."""

    def __init__(self, comm: Any, workers: Sequence[int], tag: int) -> None:
        self.comm = _pkl5(comm)
        self.workers = list(workers)
        self.tag = tag
        self.status = MPI.Status()
        self.pending: list[Any] = []

    def send(self, worker: int, item: Any) -> None:
        with serialized_lock.held():
            request = self.comm.issend(item, worker, self.tag)
        self.pending.append(request)
        self._reap()

    def _reap(self) -> None:
        with serialized_lock.held():
            self.pending = [r for r in self.pending if not r.test()[0]]

    def poll(self, timeout: float) -> list[tuple[int, Any]]:
        """Replies that arrived: (worker, reply); waits at most ``timeout`` for one."""
        got: list[tuple[int, Any]] = []
        deadline = time.monotonic() + timeout
        while True:
            with serialized_lock.held():
                while self.comm.iprobe(MPI.ANY_SOURCE, self.tag, self.status):
                    source = self.status.Get_source()
                    try:
                        reply = self.comm.recv(None, source, self.tag)
                    except BaseException as exc:  # an unpicklable reply
                        reply = (None, exc)
                    got.append((source, reply))
            if got or time.monotonic() >= deadline:
                break
            time.sleep(min(timeout, 0.0005))
        if self.pending:
            self._reap()
        return got

    def finish(self, drop_replies: bool = False) -> None:
        """Wait for what this link sent.  ``drop_replies``: meanwhile take and drop any
        message a worker sends, on any tag (the reply to a manager that died: the worker
        waits in its synchronous send until someone takes it)."""
        if not drop_replies:
            with serialized_lock.held():
                for request in self.pending:
                    request.wait()
            self.pending = []
            return
        while self.pending:
            with serialized_lock.held():
                while self.comm.iprobe(MPI.ANY_SOURCE, MPI.ANY_TAG, self.status):
                    source, tag = self.status.Get_source(), self.status.Get_tag()
                    with contextlib.suppress(Exception):  # unpicklable: dropped all the same
                        self.comm.recv(None, source, tag)
            self._reap()
            if self.pending:
                time.sleep(0.0005)

    def close(self) -> None:
        self.finish()


class MpiServer:
    """A worker's side over MPI: tasks come from ``manager`` on ``comm``, any tag."""

    def __init__(self, comm: Any, manager: int) -> None:
        self.comm = _pkl5(comm)
        self.manager = manager
        self.status = MPI.Status()
        self.backoff = Backoff()

    def receive(self) -> tuple[int, Any]:
        """(tag, item); an item that cannot be unpickled comes as the exception."""
        self.backoff.reset()
        while not self.comm.iprobe(self.manager, MPI.ANY_TAG, self.status):
            self.backoff.sleep()
        tag = self.status.Get_tag()
        try:
            return tag, self.comm.recv(None, self.manager, tag)
        except BaseException as exc:
            return tag, exc

    def reply(self, tag: int, item: Any) -> None:
        self.comm.ssend(item, self.manager, tag)

    def close(self) -> None:
        pass


# -- over sockets ----------------------------------------------------------------

def _send_frame(sock: socket.socket, payload: bytes) -> None:
    sock.sendall(_HEADER.pack(len(payload)) + payload)


def _recv_exact(sock: socket.socket, size: int) -> bytes | None:
    chunks: list[bytes] = []
    while size:
        chunk = sock.recv(min(size, 1 << 20))
        if not chunk:
            return None
        chunks.append(chunk)
        size -= len(chunk)
    return b"".join(chunks)


def _recv_frame(sock: socket.socket) -> bytes | None:
    head = _recv_exact(sock, _HEADER.size)
    if head is None:
        return None
    return _recv_exact(sock, _HEADER.unpack(head)[0])


def _dumps(item: Any) -> bytes:
    return pickle.dumps(item, protocol=pickle.HIGHEST_PROTOCOL)


class WorkersLost(Exception):
    """A spawned worker went away (its job ended or it crashed)."""


class SocketClient:
    """The manager's side of a spawned job: one socket per worker, rank order."""

    def __init__(self, sockets: list[socket.socket], job: subprocess.Popen[bytes],
                 folder: str) -> None:
        self.sockets = sockets
        self.workers = list(range(len(sockets)))
        self.job = job
        self.folder = folder
        self.selector = selectors.DefaultSelector()
        for worker, sock in enumerate(sockets):
            self.selector.register(sock, selectors.EVENT_READ, worker)

    def send(self, worker: int, item: Any) -> None:
        payload = _dumps(item)  # a pickling error is the caller's (the task's) to report
        try:
            _send_frame(self.sockets[worker], payload)
        except OSError as exc:
            raise WorkersLost(f"worker {worker} is gone ({exc})") from None

    def poll(self, timeout: float) -> list[tuple[int, Any]]:
        got: list[tuple[int, Any]] = []
        for key, _ in self.selector.select(timeout):
            worker = key.data
            frame = _recv_frame(self.sockets[worker])
            if frame is None:
                raise WorkersLost(f"worker {worker} closed its connection "
                                  f"(the workers' job exited with {self.job.poll()})")
            try:
                got.append((worker, pickle.loads(frame)))
            except BaseException as exc:  # an unpicklable reply fails its future
                got.append((worker, (None, exc)))
        return got

    def finish(self) -> None:
        pass

    def close(self) -> None:
        """After the stop messages: the job ends by itself; wait for it, then tidy up."""
        for sock in self.sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_WR)
        try:
            self.job.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.job.kill()
            self.job.wait()
        for sock in self.sockets:
            sock.close()
        self.selector.close()
        shutil.rmtree(self.folder, ignore_errors=True)


class SocketServer:
    """A spawned worker's side: its connection back to the manager."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock

    @classmethod
    def connect(cls, environ: Mapping[str, str] = os.environ) -> SocketServer:
        address, token = environ.get(ADDRESS_VAR), environ.get(TOKEN_VAR)
        if not address or not token:
            raise RuntimeError(f"a futures worker needs {ADDRESS_VAR} and {TOKEN_VAR}; it is "
                               "started by MPIPoolExecutor, not by hand")
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.connect(address)
        rank = int(environ.get("SHOAL_RANK", "0"))
        _send_frame(sock, token.encode() + b" " + str(rank).encode())
        return cls(sock)

    def receive(self) -> tuple[int, Any]:
        frame = _recv_frame(self.sock)
        if frame is None:  # the manager went away: stop serving
            return 0, None
        try:
            return 0, pickle.loads(frame)
        except BaseException as exc:
            return 0, exc

    def reply(self, tag: int, item: Any) -> None:
        _send_frame(self.sock, _dumps(item))

    def close(self) -> None:
        self.sock.close()


def spawn_job(count: int, python_exe: str | None, environ: Mapping[str, str],
              is_cancelled: Callable[[], bool] = lambda: False) -> SocketClient:
    """Start ``count`` workers as a ``shoal run`` job of their own; return the link.

    The job's launcher is this process's child, in its process group: a job stopped by
    its own launcher stops the workers too, and a worker whose manager dies sees its
    socket close and leaves.
    """
    folder = tempfile.mkdtemp(prefix="shoal-futures-")
    os.chmod(folder, 0o700)
    address = os.path.join(folder, "s")
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(address)
    listener.listen(count)
    token = secrets.token_hex(16)
    env = dict(environ)
    for name in ("SHOAL_RANK", "SHOAL_SIZE", "SHOAL_JOB_ID", "SHOAL_CONTROL_FD",
                 "SHOAL_LAUNCHER_PID", "SHOAL_SHM_FD", "SHOAL_DOORBELL_READ",
                 "SHOAL_DOORBELL_WRITE", "SHOAL_TRANSPORT", "SHOAL_RENDEZVOUS"):
        env.pop(name, None)
    env.update({ADDRESS_VAR: address, TOKEN_VAR: token, "SHOAL_MPI4PY": "1"})
    argv = [python_exe or sys.executable, "-m", "shoal", "run", "-n", str(count),
            "-m", "shoal.compat.mpi4py.futures.server"]
    job = subprocess.Popen(argv, env=env, stdin=subprocess.DEVNULL)
    sockets: list[socket.socket | None] = [None] * count
    try:
        deadline = time.monotonic() + CONNECT_TIMEOUT
        listener.settimeout(0.2)
        while any(s is None for s in sockets):
            if job.poll() is not None:
                raise WorkersLost(f"the workers' job exited with status {job.returncode} "
                                  "before every worker connected")
            if time.monotonic() > deadline or is_cancelled():
                raise WorkersLost(f"{count} workers did not connect within "
                                  f"{CONNECT_TIMEOUT:g} s")
            try:
                sock, _ = listener.accept()
            except TimeoutError:
                continue
            sock.settimeout(10)
            hello = _recv_frame(sock) or b""
            sock.settimeout(None)
            given, _, rank_text = hello.partition(b" ")
            rank = int(rank_text) if rank_text.isdigit() else -1
            if not hmac.compare_digest(given, token.encode()) or not 0 <= rank < count \
                    or sockets[rank] is not None:
                sock.close()  # not one of ours: ignore it
                continue
            sockets[rank] = sock
    except BaseException:
        for connected in sockets:
            if connected is not None:
                connected.close()
        if job.poll() is None:
            job.kill()
        job.wait()
        shutil.rmtree(folder, ignore_errors=True)
        raise
    finally:
        listener.close()
    return SocketClient([s for s in sockets if s is not None], job, folder)
