"""Functions the tests run as tasks (importable by the workers: the local cluster
gets the test process's sys.path)."""

from __future__ import annotations

import os
import time
from pathlib import Path

from shoal.tasks import Task, TaskSystem, remote


def square(x: int) -> int:
    return x * x


def add(x: int, y: int) -> int:
    return x + y


def fail_on(x: int, bad: int) -> int:
    if x == bad:
        raise ValueError(f"bad item {x}")
    return x


def sleep_then(seconds: float, value: object = None) -> object:
    time.sleep(seconds)
    return value


def mark_and_sleep(folder: str, name: str, seconds: float, again: float = 0.0) -> str:
    """Write this process's pid to folder/name.<attempt>, then sleep: a task to kill.

    The first attempt sleeps ``seconds``, later ones ``again``.
    """
    base = Path(folder)
    attempt = len(list(base.glob(f"{name}.*"))) + 1
    # Written whole, then named: a test that sees the file reads the pid, never "".
    partial = base / f".{name}.{os.getpid()}.partial"
    partial.write_text(str(os.getpid()))
    os.replace(partial, base / f"{name}.{attempt}")
    time.sleep(seconds if attempt == 1 else again)
    return f"{name} ran {attempt} time(s)"


def kill_own_process() -> None:
    os.kill(os.getpid(), 9)


def pid() -> int:
    return os.getpid()


def find_in_range(lo: int, hi: int, target: int) -> int | None:
    time.sleep(0.01)
    return target if lo <= target < hi else None


class Cleaned(Task):
    """A Task whose clean_up leaves proof on the worker: a file named after the task."""

    def __init__(self, folder: str, name: str, fn, *args) -> None:
        super().__init__(fn, *args)
        self.folder = folder
        self.name = name
        self.seen: list[tuple[object, str | None]] = []   # what finished() was given

    def clean_up(self) -> None:
        Path(self.folder, f"{self.name}.clean").write_text(str(os.getpid()))

    def finished(self, result, error) -> None:
        self.seen.append((result, None if error is None else type(error).__name__))


class CallableTask:
    """Concurrent's style: any object with __call__, clean_up and finished."""

    def __init__(self, folder: str, value: int) -> None:
        self.folder = folder
        self.value = value
        self.finished_with: object = None

    def __call__(self) -> int:
        return self.value * 10

    def clean_up(self) -> None:
        Path(self.folder, f"callable-{self.value}.clean").write_text(str(os.getpid()))

    def finished(self, result, error) -> None:
        self.finished_with = (result, error)


class BadCleanUp(Task):
    def clean_up(self) -> None:
        raise RuntimeError("clean_up failed")


class BadFinished(Task):
    def finished(self, result, error) -> None:
        raise LookupError(f"finished failed with {result}")


def wait_for_file(path: str, value: object = None, within: float = 60.0) -> object:
    """Wait (in a task) until ``path`` exists: a task that runs as long as a test wants."""
    deadline = time.monotonic() + within
    while not Path(path).exists():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{path} did not appear within {within:g} s")
        time.sleep(0.02)
    return value


class Waiting(TaskSystem):
    """A task system with one task that runs until the file ``gate`` appears."""

    name = "waiting"

    def __init__(self, gate: str) -> None:
        self.gate = gate
        self.result: object = None

    def generate_tasks(self):
        return [Task(wait_for_file, self.gate, "opened")]

    def task_finished(self, task, result, error):
        self.result = error if error is not None else result

    def is_complete(self):
        return self.result is not None

    def gather_result(self):
        return self.result


class Controlled(TaskSystem):
    """A task system steered by remote calls: it runs until stop() (or the gate opens)."""

    name = "controlled"

    def __init__(self, gate: str) -> None:
        self.gate = gate
        self.count = 0
        self.values: list[object] = []
        self.expected = 1
        self.stopped = False

    def generate_tasks(self):
        return [Task(wait_for_file, self.gate, "gate")]

    def task_finished(self, task, result, error):
        self.values.append(result if error is None else repr(error))

    def is_complete(self):
        return self.stopped and len(self.values) == self.expected

    def gather_result(self):
        return self.count, sorted(self.values, key=str)

    @remote
    def add(self, n: int = 1) -> int:
        """Add n to the count; the new count."""
        self.count += n
        return self.count

    @remote(json=True)
    def progress(self) -> dict:
        """How far it got.

        (Only this first paragraph is the doc clients see.)"""
        return {"count": self.count, "values": len(self.values)}

    @remote(json=True, name="fail")
    def fail_now(self, why: str = "bad call") -> None:
        raise ValueError(why)

    @remote(json=True)
    def as_set(self) -> set:
        return {1, 2}

    @remote
    def more(self, n: int) -> int:
        """Submit n more tasks from the system's thread."""
        for i in range(n):
            self.submit(Task(square, i))
        self.expected += n
        return n

    @remote(json=True)
    def stop(self) -> bool:
        self.stopped = True
        Path(self.gate).touch()
        return True

    @remote
    def thread(self) -> str:
        import threading

        return threading.current_thread().name

    def not_remote(self) -> str:
        return "never callable"


def long_or_short(gate: str | None) -> str:
    """With a gate: wait (up to 20 s) for it to open, a long task; without: 10 ms."""
    if gate:
        wait_for_file(gate, within=20.0)
        return "long"
    time.sleep(0.01)
    return "short"
