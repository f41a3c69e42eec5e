"""Beacons: a daemon on each machine that runs ranks for authenticated runners.

* :mod:`~shoal.node.config`: where the beacon keeps its files (platformdirs,
  or ``SHOAL_CONFIG_DIR``), ``beacon.toml``, the password, identity and
  authorized keys, all written with mode 0600;
* :mod:`~shoal.node.protocol`: the JSON messages exchanged over the secure
  channel (:mod:`shoal.security`), versioned, documented field by field;
* :mod:`~shoal.node.bundles`: bundles (a tar of the program's files, by
  SHA-256) and the beacon's bounded cache of them;
* :mod:`~shoal.node.jobs`: the ranks of one job, their control channels, live output
  and their end;
* :mod:`~shoal.node.runner_ranks`: the same, run by the runner itself for this
  machine when it takes part without a beacon (klyng's ``"local"``);
* :mod:`~shoal.node.server`: the asyncio server (login, rate limiting, requests);
* :mod:`~shoal.node.daemon`: ``shoal beacon up / down / status``;
* :mod:`~shoal.node.client`: :class:`~shoal.node.client.BeaconClient`, what a
  runner uses to drive a beacon.

Needs ``pip install 'shoal[beacon]'``.
"""

from __future__ import annotations
