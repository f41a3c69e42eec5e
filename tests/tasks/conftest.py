from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))  # `task_helpers` is importable here and on workers


@pytest.fixture(scope="module")
def executor() -> Iterator[object]:
    """One local cluster (2 workers) shared by a module's tests that kill nothing."""
    from shoal.tasks import Executor

    with Executor(workers=2) as ex:
        yield ex
