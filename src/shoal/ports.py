"""The default ports of shoal's servers, written in one place.

Every command, client and guide takes its default from here (see
``docs/contracts/cli-vocabulary.md``).
"""

from __future__ import annotations

BEACON = 7447
"""A beacon: ``shoal beacon up``."""

MASTER = 7450
"""The cluster master's REST API and dashboard."""

MASTER_WORKERS = MASTER + 1
"""The master's worker link (``shoal worker``)."""

TASKS = MASTER + 2
"""The task service, inside the master or standalone (``shoal tasks serve``)."""

STREAM_SERVER = 7460
"""``shoal stream-server``."""
