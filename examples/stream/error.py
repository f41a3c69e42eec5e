"""Pando's examples/error.js in Python: a processor that fails, through its callback, as
Pando's ``cb(new Error('processing error'))``; here every multiple of 3 fails.

    shoal stream examples/stream/error.py 1 2 3 4 --on-error report   # an error line in place
    shoal stream examples/stream/error.py 1 2 3 4                     # stops at item 3, exit 1

Pando lends a failing item again and again; shoal fails it once and applies --on-error
(stop, skip, or report in its place), with the error on stderr.
"""


def process(x, cb):
    if x % 3 == 0:
        cb(ValueError(f"processing error on {x}"))
    else:
        cb(None, x)
