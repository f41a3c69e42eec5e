"""The master: REST API, worker hub, monitor and metrics.

* :mod:`~shoal.cluster.master.app`: ``create_app(settings) -> FastAPI``;
* :mod:`~shoal.cluster.master.state`: what the app holds while it runs
  (store, hub, event bus, flusher);
* :mod:`~shoal.cluster.master.hub`: the worker link server
  (:mod:`~shoal.cluster.master.link`: one worker's link, checks of its messages);
* :mod:`~shoal.cluster.master.flusher`: batched writes of output and health;
* :mod:`~shoal.cluster.master.monitor`: offline/lost workers, retention, rollups;
* :mod:`~shoal.cluster.master.routes`: one module per REST resource;
* :mod:`~shoal.cluster.master.auth`, :mod:`~shoal.cluster.master.errors`,
  :mod:`~shoal.cluster.master.schemas`, :mod:`~shoal.cluster.master.events`,
  :mod:`~shoal.cluster.master.metrics`, :mod:`~shoal.cluster.master.serve`.
"""

from __future__ import annotations
