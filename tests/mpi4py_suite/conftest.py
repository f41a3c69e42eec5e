"""A run given ``--mpi4py-ranks`` (see ci_ranks.py) deselects what it does not run: the
cases of mpi4py's suite with none of their CI rank counts among those given, and the tests
marked ``mpi4py_ranks(N, ...)`` (the counts they run at) with none of theirs."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import conformance  # (the folder is not a package)
from ci_ranks import chosen_counts, ci_ranks


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "mpi4py_ranks(*counts): the rank counts a test of mpi4py's suite runs at "
        "(a run given --mpi4py-ranks without any of them leaves it out)")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    chosen = config.getoption("mpi4py_ranks")
    wanted = chosen_counts(chosen)
    if wanted is None:
        return
    keep, drop = [], []
    for item in items:
        counts: tuple[int, ...] | None = None
        case = getattr(item, "callspec", None) and item.callspec.params.get("case")
        if item.path.parent == HERE and isinstance(case, conformance.Case):
            counts = ci_ranks(case, chosen)
        elif (marker := item.get_closest_marker("mpi4py_ranks")) is not None:
            counts = tuple(n for n in marker.args if n in wanted)
        (drop if counts == () else keep).append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep
