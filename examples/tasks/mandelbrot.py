"""The Mandelbrot set, one column per task; writes mandelbrot.png and prints the speed-up.

    python examples/tasks/mandelbrot.py                      # 1536 x 1024, a local cluster
    python examples/tasks/mandelbrot.py --width 384 --height 256 --out small.png
    SHOAL_PASSWORD=... python examples/tasks/mandelbrot.py --address shoal://master:7452

Concurrent's sample: 1536 x 1024 pixels, 20 iterations, a task per column.
The PNG is written with zlib and struct alone (no Pillow needed).
"""

from __future__ import annotations

import argparse
import functools
import struct
import time
import zlib

import shoal


def column(x: int, width: int, height: int, iterations: int) -> bytes:
    """Grey levels of one column: how fast each point escapes."""
    cr = -2.5 + 3.5 * x / width
    out = bytearray(height)
    for y in range(height):
        ci = -1.25 + 2.5 * y / height
        zr = zi = 0.0
        n = 0
        while n < iterations and zr * zr + zi * zi <= 4.0:
            zr, zi = zr * zr - zi * zi + cr, 2.0 * zr * zi + ci
            n += 1
        out[y] = 255 - (255 * n) // iterations
    return bytes(out)


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--width", type=int, default=1536)
    parser.add_argument("--height", type=int, default=1024)
    parser.add_argument("--iterations", type=int, default=20)
    parser.add_argument("--address", help="a task service (default: a local cluster)")
    parser.add_argument("--out", default="mandelbrot.png")
    args = parser.parse_args()
    w, h, it = args.width, args.height, args.iterations

    start = time.perf_counter()
    expected = [column(x, w, h, it) for x in range(w)]
    sequential = time.perf_counter() - start

    with shoal.Executor(args.address) as ex:  # a remote service: password in $SHOAL_PASSWORD
        ex.submit(column, 0, 1, 1, 1).result()  # the cluster is up and warm
        start = time.perf_counter()
        columns = list(ex.map(functools.partial(column, width=w, height=h, iterations=it),
                              range(w)))
        distributed = time.perf_counter() - start
        workers = sum(a["slots"] for a in ex.status()["agents"])
    assert columns == expected, "the distributed image differs from the sequential one"
    write_png(args.out, columns, w, h)
    print(f"{w} x {h}, {it} iterations, {w} tasks on {workers} workers: sequential "
          f"{sequential:.2f} s, distributed {distributed:.2f} s, speed-up "
          f"{sequential / distributed:.2f}x; wrote {args.out}")


if __name__ == "__main__":
    main()
