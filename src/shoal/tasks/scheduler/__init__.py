"""The pure scheduler (:mod:`.state`) and its policies (:mod:`.policies`)."""

from __future__ import annotations

from shoal.tasks.scheduler.policies import (
    POLICIES,
    FastestFirstPolicy,
    LeastLoadedPolicy,
    Policy,
    PullPolicy,
    policy_class,
)
from shoal.tasks.scheduler.state import Scheduler

__all__ = ["POLICIES", "FastestFirstPolicy", "LeastLoadedPolicy", "Policy", "PullPolicy",
           "Scheduler", "policy_class"]
