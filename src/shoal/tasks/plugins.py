"""Entry points: how plugins add scheduler policies, codecs and task hooks.

Groups: ``shoal.schedulers`` (a :class:`~shoal.tasks.scheduler.policies.Policy`
subclass), ``shoal.codecs`` (a :class:`~shoal.tasks.codecs.Codec` subclass),
``shoal.task_hooks`` (a :class:`~shoal.tasks.hooks.TaskHooks` subclass, every
one of them is installed in a service that asks for plugin hooks).
"""

from __future__ import annotations

from typing import Any


def _entries(group: str) -> list[Any]:
    # Imported here: importlib.metadata costs milliseconds that `import shoal` must not pay.
    from importlib.metadata import entry_points

    return list(entry_points(group=group))


def load_entry_point(group: str, name: str) -> Any | None:
    """The object the entry point ``name`` of ``group`` names, or None."""
    for entry in _entries(group):
        if entry.name == name:
            return entry.load()
    return None


def load_all(group: str) -> dict[str, Any]:
    """Every entry point of ``group``, loaded, by name."""
    return {entry.name: entry.load() for entry in _entries(group)}
