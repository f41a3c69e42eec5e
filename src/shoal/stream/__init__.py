"""Streams: ordered processing of a stream of values by volunteers that come and go.

A module names the function that turns one value into one result::

    import shoal

    @shoal.stream.processor
    def square(x):
        return x * x

and ``seq 1 100 | shoal stream square.py --stdin`` prints the squares in input order,
computed by local processes, other machines (``shoal volunteer URL``) and browsers.
Inside the function, ``shoal.report(cpu_time=..., items=...)`` feeds the monitor.

This package is imported by every volunteer and by ``import shoal``'s lazy facade, so it
stays light: the coordinator, the web server and the volunteers live in submodules.
"""

from __future__ import annotations

from shoal.stream.processor import processor
from shoal.stream.reporting import report

__all__ = ["processor", "report"]
