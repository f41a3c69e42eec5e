"""The master's background duties, on its event loop.

* every ``flush_s``, in a thread: write the gathered output and health (:mod:`.flusher`);
* every half second: close links that fell silent (no heartbeat for
  ``offline_after_s``: offline), and make workers offline for ``lost_after_s``
  ``lost`` with their unfinished jobs;
* every ``housekeeping_s``, in a thread: roll health samples up to minutes and
  hours, and delete finished pools older than the retention.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import time

from shoal.cluster.db.models import utcnow
from shoal.cluster.master.state import MasterState

log = logging.getLogger("shoal.master")


def housekeeping(master: MasterState) -> None:
    """Rollups and retention, now.  Runs in a thread: it only uses the database (its own
    sessions), so the event loop keeps answering meanwhile."""
    rolled = master.health.downsample(utcnow())
    pruned = master.store.prune_pools(utcnow() - dt.timedelta(
        seconds=master.settings.retention_s))
    if rolled or pruned:
        log.info("housekeeping: %d health rollups, %d finished pools pruned", rolled, pruned)


async def run(master: MasterState) -> None:
    settings = master.settings
    last_check = last_housekeeping = time.monotonic()
    chores: asyncio.Task[None] | None = asyncio.create_task(asyncio.to_thread(housekeeping,
                                                                               master))
    while True:
        await asyncio.sleep(settings.flush_s)
        try:
            await master.flusher.flush_soon()
            now = time.monotonic()
            if now - last_check >= 0.5:
                last_check = now
                master.hub.check_liveness(settings.offline_after_s, settings.lost_after_s)
            if chores is not None and chores.done():
                if chores.exception() is not None:
                    log.error("housekeeping failed: %s", chores.exception())
                chores = None
            if chores is None and now - last_housekeeping >= settings.housekeeping_s:
                last_housekeeping = now
                chores = asyncio.create_task(asyncio.to_thread(housekeeping, master))
        except Exception:  # keep monitoring: one failed round must not stop the next
            log.exception("the master's monitor failed a round")
