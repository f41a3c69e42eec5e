"""The cluster's size limits, written once so that they agree end to end.

What the REST API accepts, the worker link carries: a pool's ``run`` message
(its command, environment and folder as the link's JSON) may be at most
``MAX_RUN`` bytes, well inside the link's ``protocol.MAX_MESSAGE`` (4 MiB), and
a request body at most ``MAX_BODY``.  A bigger one is refused at once with 413
(``body_too_large``, ``command_too_large``), never accepted and then lost on
the link.  (The worker's kernel has its own limit on a command line,
``getconf ARG_MAX``, 2 MiB on Linux with a 8 MiB stack, and at most 128 KiB per
argument: a command over it fails there with "Argument list too long".)

What one answer may hold is bounded too, whatever is stored: list endpoints
return summaries (``SUMMARY_*``) a page at a time (``MAX_PAGE``), job output is
read ``MAX_OUTPUT_READ`` bytes per stream at a time, and every event stream has
a queue of at most ``STREAM_QUEUE_BYTES`` (a client that reads slower is cut
off and reconnects) among at most ``MAX_STREAMS`` streams at once.
"""

from __future__ import annotations

from shoal.cluster import protocol

MAX_BODY = 1 << 20            # bytes of a request body (413 above)
MAX_RUN = 256 << 10           # bytes of a pool's run message on the worker link (413 above)
MAX_PAGE = 200                # items of a list answer
SUMMARY_ARG_CHARS = 200       # a pool summary's command: each argument cut to this
SUMMARY_ARGS = 20             # ... at most this many arguments
MAX_OUTPUT_READ = 1 << 20     # bytes of each stream one output answer holds (default too)
STREAM_QUEUE_BYTES = 8 << 20  # what an event stream may have waiting for its client
MAX_STREAMS = 512             # event streams open at once (503 above)
MAX_CONNECTIONS = 1024        # HTTP connections at once (uvicorn answers 503 above)

assert MAX_RUN + protocol.OUTPUT_PIECE < protocol.MAX_MESSAGE


def size_text(size: int) -> str:
    """A limit in words: ``262144`` -> ``256 KiB``."""
    if size >= 1 << 20 and size % (1 << 20) == 0:
        return f"{size >> 20} MiB"
    if size >= 1 << 10 and size % (1 << 10) == 0:
        return f"{size >> 10} KiB"
    return f"{size} bytes"
