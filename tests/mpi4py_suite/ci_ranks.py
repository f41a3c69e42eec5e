"""At which rank counts CI runs each file of mpi4py's suite (``--mpi4py-ranks``).

.ci/run runs the whole suite on two Pythons and gives each its own rank counts (2 on one,
1, 3 and 4 on the other): mpi4py's figures are the runtime's, not the interpreter's, so
each file runs at each of its counts once a CI run.  The table (``conformance.py``) still
measures and records every count of every file.
"""

from __future__ import annotations

import conformance  # (the folder is not a package: the tests put it on sys.path)
import pytest

# Files whose tests talk to no other rank (they name no communicator, or only COMM_SELF,
# and never the size of the world): every rank runs the same local work, so more ranks
# sharing CI's 2 cores add minutes (test_util_dtlib alone is some 25 CPU-seconds a rank)
# and no coverage.  CI runs them at 1 rank.
CI_RANKS = {"test_util_dtlib": (1,), "test_datatype": (1,), "test_pack": (1,)}
# What a file that talks to other ranks, or asks how many there are, must name.
TALKING_NAMES = ("COMM_WORLD", "Intracomm", "Intercomm", "Create_group", "Create_intercomm",
                 "Create_cart", "Create_graph", "Create_dist_graph", "Split", "Merge",
                 "Spawn", "Connect", "Accept", "mpi4py.futures", "Get_parent")


def chosen_counts(chosen: str | None) -> set[int] | None:
    """The rank counts ``--mpi4py-ranks`` gives ("2,4"), None for every count."""
    if not chosen:
        return None
    try:
        return {int(n) for n in chosen.split(",")}
    except ValueError:
        raise pytest.UsageError(
            f"--mpi4py-ranks={chosen}: give rank counts as numbers, e.g. 2 or 1,2") from None


def ci_ranks(case: conformance.Case, chosen: str | None = None) -> tuple[int, ...]:
    """The rank counts CI runs ``case`` at in a run given ``--mpi4py-ranks`` ``chosen``
    (none: the case is not in that run)."""
    ranks = CI_RANKS.get(case.key, case.ranks)
    wanted = chosen_counts(chosen)
    return ranks if wanted is None else tuple(n for n in ranks if n in wanted)
