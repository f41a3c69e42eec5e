"""Compile shoal's own modules once, so N ranks do not each compile them.

Python normally caches bytecode in ``__pycache__`` on first import, but not
when ``PYTHONDONTWRITEBYTECODE`` is set (common in containers and CI): then
every rank of every job compiles every shoal module again, which costs tens
of milliseconds of start-up per rank.  The launcher compiles them once; an
up-to-date cache costs only a few ``stat`` calls.  A read-only installation
is left as it is.
"""

from __future__ import annotations

import compileall
import os
import sys

_done = False


def ensure_compiled() -> None:
    """Write missing or stale ``.pyc`` files for the shoal package (best effort)."""
    global _done
    if _done or not sys.dont_write_bytecode:
        _done = True
        return  # Python writes the cache itself on first import.
    _done = True
    package = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    try:
        compileall.compile_dir(package, quiet=2, workers=1)
    except OSError:
        pass  # a read-only installation: ranks compile in memory as before
