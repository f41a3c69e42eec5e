"""Print, as JSON, the interpreter state this process starts with: what a rank must see
the same whether the fork server forked it or it was started as its own `python`."""

import gc
import json
import os
import signal
import sys
import threading

_HANDLERS = ("SIGINT", "SIGTERM", "SIGHUP", "SIGPIPE", "SIGCHLD", "SIGUSR2", "SIGXFSZ")


def handler(name: str) -> str:
    value = signal.getsignal(getattr(signal, name))
    return getattr(value, "__name__", str(value))


def stream(s: object) -> dict[str, object]:
    return {"type": type(s).__name__, "buffer": type(getattr(s, "buffer", None)).__name__,
            "encoding": getattr(s, "encoding", None), "errors": getattr(s, "errors", None),
            "line_buffering": getattr(s, "line_buffering", None),
            "write_through": getattr(s, "write_through", None), "fileno": s.fileno()}


fds = sorted(int(fd) for fd in os.listdir("/proc/self/fd"))
print(json.dumps({
    "argv": sys.argv, "path": sys.path, "flags": list(sys.flags),
    "stdin": stream(sys.stdin), "stdout": stream(sys.stdout), "stderr": stream(sys.stderr),
    "handlers": {name: handler(name) for name in _HANDLERS},
    "gc": gc.isenabled(), "threads": threading.active_count(),
    "own_session": os.getsid(0) == os.getpid() == os.getpgrp(),
    "fds": len(fds) - 1,   # less the one listdir used
    "cwd": os.getcwd(), "umask": os.umask(0o22), "name": __name__, "file": __file__,
    "main_is_me": sys.modules["__main__"].__dict__ is globals(),
    "warnings": [str(f) for f in sys.warnoptions],
    "executable": sys.executable, "prefix": sys.prefix,
    "modules_main": sys.modules["__main__"].__spec__,
}, default=str))
