"""The Mandelbrot set in Concurrent's two flavours, plain tasks and a task system.

    python examples/tasks/mandelbrot.py                      # 1536 x 1024, a local cluster
    python examples/tasks/mandelbrot.py --flavour system --width 384 --height 256
    SHOAL_PASSWORD=... python examples/tasks/mandelbrot.py --address shoal://master:7452

Concurrent's sample, as it shipped it: the region -2..1 x -1..1 at 1536 x 1024
pixels, 20 iterations a pixel, one column per task, in two flavours:

* ``tasks`` (its ``MandlebrotSimpleNode``): the client makes a task object per
  column and submits each; the task's ``finished()`` puts its column into the
  image on the client as it arrives, its ``clean_up()`` drops its input on the
  worker;
* ``system`` (its ``MandlebrotTaskSystem``): a task system on the service makes
  the column tasks, collects them and sends the whole image back; its
  ``progress()`` is a remote method a client (or the REST API, on a cluster)
  can call while it runs.

Both are timed next to the sequential run (and to ``ex.map``, shoal's shortest
way); the image is checked against the sequential one and written as a PNG
(zlib and struct alone, no Pillow).
"""

from __future__ import annotations

import argparse
import functools
import struct
import time
import zlib

import shoal

REGION = (-2.0, 1.0, -1.0, 1.0)   # Concurrent's min_x, max_x, min_y, max_y


def column(x: int, width: int, height: int, iterations: int) -> bytes:
    """Grey levels of one column: how fast each point escapes (Concurrent's do_mandel)."""
    min_x, max_x, min_y, max_y = REGION
    cr = min_x + x * (max_x - min_x) / width
    out = bytearray(height)
    for y in range(height):
        ci = min_y + y * (max_y - min_y) / height
        zr = zi = 0.0
        n = 0
        while n < iterations and zr * zr + zi * zi < 4.0:
            zr, zi = zr * zr - zi * zi + cr, 2.0 * zr * zi + ci
            n += 1
        out[y] = 255 - (255 * n) // iterations
    return bytes(out)


class ColumnTask(shoal.Task):
    """One column (Concurrent's MandlebrotTask): computed on a worker, put in place here."""

    def __init__(self, image: list[bytes | None] | None, x: int, width: int, height: int,
                 iterations: int) -> None:
        super().__init__(column, x, width, height, iterations)
        self.image = image      # the client's image: it stays here (see __getstate__)
        self.x = x

    def __getstate__(self) -> dict[str, object]:
        state = dict(self.__dict__)
        state["image"] = None   # the worker needs the column's numbers, not the image
        return state

    def clean_up(self) -> None:
        """On the worker, after the call: drop the input (Concurrent's clean_up did)."""
        self.args = ()

    def finished(self, result: bytes, error: BaseException | None) -> None:
        """On the submitting side, with the column: put it in the client's image (in a
        task system, on the service, the system's task_finished collects it instead)."""
        if error is not None:
            raise error
        if self.image is not None:
            self.image[self.x] = result


class MandelbrotSystem(shoal.TaskSystem):
    """Concurrent's MandlebrotTaskSystem: runs on the service, one task per column."""

    name = "mandelbrot"

    def __init__(self, width: int, height: int, iterations: int) -> None:
        self.width, self.height, self.iterations = width, height, iterations
        self.columns: dict[int, bytes] = {}

    def generate_tasks(self):
        return [ColumnTask(None, x, self.width, self.height, self.iterations)
                for x in range(self.width)]

    def task_finished(self, task, result, error):
        if error is not None:
            raise error
        self.columns[task.x] = result

    def is_complete(self):
        return len(self.columns) == self.width

    def gather_result(self):
        return [self.columns[x] for x in range(self.width)]

    @shoal.remote(json=True)
    def progress(self) -> dict[str, int]:
        """Columns done so far, of how many."""
        return {"done": len(self.columns), "of": self.width}


def write_png(path: str, columns: list[bytes], width: int, height: int) -> None:
    """An 8-bit greyscale PNG, rows built from the columns."""
    rows = b"".join(b"\x00" + bytes(columns[x][y] for x in range(width)) for y in range(height))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    with open(path, "wb") as out:
        out.write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header)
                  + chunk(b"IDAT", zlib.compress(rows, 6)) + chunk(b"IEND", b""))


def plain_tasks(ex: shoal.Executor, w: int, h: int, it: int) -> list[bytes]:
    image: list[bytes | None] = [None] * w
    futures = [ex.submit(ColumnTask(image, x, w, h, it)) for x in range(w)]
    for future in futures:
        future.result()        # finished() has put the column in place by now
    assert all(c is not None for c in image)
    return image  # type: ignore[return-value]


def task_system(ex: shoal.Executor, w: int, h: int, it: int) -> list[bytes]:
    running = ex.submit_system(MandelbrotSystem(w, h, it))
    ex.call(running, "progress")   # a remote method, while the system runs
    return running.result()        # type: ignore[no-any-return]


def mapped(ex: shoal.Executor, w: int, h: int, it: int) -> list[bytes]:
    return list(ex.map(functools.partial(column, width=w, height=h, iterations=it), range(w)))


FLAVOURS = {"tasks": plain_tasks, "system": task_system, "map": mapped}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--width", type=int, default=1536)
    parser.add_argument("--height", type=int, default=1024)
    parser.add_argument("--iterations", type=int, default=20)
    parser.add_argument("--flavour", choices=[*FLAVOURS, "all"], default="all",
                        help="Concurrent's two (tasks, system), shoal's map, or all (default)")
    parser.add_argument("--address", help="a task service (default: a local cluster)")
    parser.add_argument("--out", default="mandelbrot.png")
    args = parser.parse_args()
    w, h, it = args.width, args.height, args.iterations

    start = time.perf_counter()
    expected = [column(x, w, h, it) for x in range(w)]
    sequential = time.perf_counter() - start

    chosen = list(FLAVOURS) if args.flavour == "all" else [args.flavour]
    timings = {}
    with shoal.Executor(args.address) as ex:  # a remote service: password in $SHOAL_PASSWORD
        ex.submit(column, 0, 1, 1, 1).result()  # the cluster is up and warm
        workers = sum(a["slots"] for a in ex.status()["agents"])
        for flavour in chosen:
            start = time.perf_counter()
            columns = FLAVOURS[flavour](ex, w, h, it)
            timings[flavour] = time.perf_counter() - start
            assert columns == expected, f"the {flavour} image differs from the sequential one"
    write_png(args.out, expected, w, h)
    print(f"{w} x {h}, {it} iterations, {w} tasks (a column each) on {workers} workers; "
          f"wrote {args.out}")
    print(f"{'sequential':<12} {sequential:8.2f} s")
    for flavour, seconds in timings.items():
        print(f"{flavour:<12} {seconds:8.2f} s   speed-up {sequential / seconds:.2f}x")


if __name__ == "__main__":
    main()
