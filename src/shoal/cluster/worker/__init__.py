"""The worker: runs on each machine, links to the master and runs what it is sent.

* :mod:`~shoal.cluster.worker.health`: CPU, memory, load, disk, network and
  temperature samples (psutil);
* :mod:`~shoal.cluster.worker.jobs`: one command in its own session, its
  output kept until the master has it, its end (exit code or signal);
* :mod:`~shoal.cluster.worker.agent`: the link, reconnection with back-off,
  heartbeats, re-reporting jobs after a reconnection.
"""

from __future__ import annotations
