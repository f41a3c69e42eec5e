"""Pando's examples/square.js in Python: each item squared, written callback-style as Pando's
``function (x, cb)``.

    shoal stream examples/stream/square.py 1 2 3 4 5 6 7 8 9 10
    seq 1 1000 | shoal stream examples/stream/square.py --stdin

Pando's square waits a second before it calls ``cb`` (setTimeout); a Python processor may
call ``cb`` later too, from another thread, on processes and machines (a browser's Python
has no threads: there ``cb`` is called at once, or later from asyncio's loop).
"""


def process(x, cb):
    cb(None, x * x)
