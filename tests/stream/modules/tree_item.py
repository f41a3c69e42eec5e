"""An item of a few milliseconds, that says where it was computed: asleep on processes and
machines (it costs a busy 2-core test machine nothing), busy in a browser (Pyodide cannot
sleep in a worker)."""
import sys
import time


def process(x):
    if sys.platform == "emscripten":
        deadline = time.perf_counter() + 0.002
        while time.perf_counter() < deadline:
            pass
    else:
        time.sleep(0.003)
    return f"{x} {sys.platform}"
