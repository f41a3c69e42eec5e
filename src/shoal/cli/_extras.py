"""Which extra to install when a command meets a package its install lacks.

shoal's base install (``pip install shoal``) runs ``shoal run`` and every command's
``--help``; the other faces need an extra (``pip install 'shoal[cluster]'``).  A command
that imports a missing package ends in one line naming the extra that brings it, never a
traceback::

    shoal master: needs the cluster extra (httpx is not installed): pip install 'shoal[cluster]'

The extras and what they hold are read from shoal's installed metadata, so this stays
true to ``pyproject.toml`` (``shoal[beacon]`` inside ``cluster`` counts too).  Imported only
on that error path: it costs nothing on a command's way in.

(The leading underscore keeps this module out of the subcommand list.)
"""

from __future__ import annotations

import json
import re
from importlib import metadata

# Extras that are no face's: never the answer to "what should I install".
_NOT_ADVICE = frozenset({"test", "bench", "all"})
# Distributions whose import name is not their normalised name.
_IMPORT_NAMES = {"pyyaml": "yaml", "pillow": "PIL", "mpich": ""}
_REQUIREMENT = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)\s*(?:\[([^\]]*)\])?")
_EXTRA_MARKER = re.compile(r"""extra\s*==\s*["']([^"']+)["']""")


def _import_name(distribution: str) -> str:
    name = re.sub(r"[-_.]+", "_", distribution).lower()
    return _IMPORT_NAMES.get(name, name)


def extras_modules(requires: list[str], project: str = "shoal") -> dict[str, set[str]]:
    """Each extra's top-level import names, from ``Requires-Dist`` lines.

    An extra that names the project itself (``shoal[beacon]; extra == "cluster"``)
    holds the modules of the extras it names as well.
    """
    direct: dict[str, set[str]] = {}
    nested: dict[str, set[str]] = {}
    for line in requires:
        requirement, _, marker = line.partition(";")
        found = _EXTRA_MARKER.search(marker)
        named = _REQUIREMENT.match(requirement)
        if not found or not named:
            continue
        extra, distribution = found.group(1), named.group(1)
        if re.sub(r"[-_.]+", "-", distribution).lower() == project:
            inner = {e.strip() for e in (named.group(2) or "").split(",") if e.strip()}
            nested.setdefault(extra, set()).update(inner)
        elif _import_name(distribution):
            direct.setdefault(extra, set()).add(_import_name(distribution))

    def closure(extra: str, seen: frozenset[str] = frozenset()) -> set[str]:
        modules = set(direct.get(extra, ()))
        for inner in nested.get(extra, ()):
            if inner not in seen:
                modules |= closure(inner, seen | {extra})
        return modules

    return {extra: closure(extra) for extra in set(direct) | set(nested)}


def extra_for(own: str | None, missing: str, extras: dict[str, set[str]]) -> str | None:
    """The extra to install when the top-level module ``missing`` is absent.

    ``own`` is the extra of the command's face (None: the base install's commands): that
    one when it holds the module, else the smallest extra that does.  None when no extra
    names the module: nothing to install explains it (a bug, or a user's own import).
    """
    if own is not None and missing in extras.get(own, ()):
        return own
    holders = sorted((len(modules), extra) for extra, modules in extras.items()
                     if missing in modules and extra not in _NOT_ADVICE)
    return holders[0][1] if holders else None


def _install_hint(extra: str) -> str:
    """``pip install 'shoal[X]'``, or ``pip install -e 'FOLDER[X]'`` for a source checkout."""
    try:
        text = metadata.distribution("shoal").read_text("direct_url.json") or ""
    except metadata.PackageNotFoundError:
        text = ""
    try:
        origin = json.loads(text) if text else {}
    except ValueError:
        origin = {}
    url = origin.get("url", "") if isinstance(origin, dict) else ""
    if url.startswith("file://") and origin.get("dir_info", {}).get("editable"):
        return f"pip install -e '{url[len('file://'):]}[{extra}]'"
    return f"pip install 'shoal[{extra}]'"


def missing_extra_message(command: str, own: str | None,
                          error: ModuleNotFoundError) -> str | None:
    """The one line for ``shoal <command>`` (of the face whose extra is ``own``) that failed
    importing a missing package; None when no extra explains it (a bug, not an install to
    complete)."""
    missing = (error.name or "").split(".")[0]
    if not missing or missing == "shoal":
        return None
    try:
        requires = metadata.requires("shoal") or []
    except metadata.PackageNotFoundError:  # run from a source tree that was never installed
        requires = []
    extra = extra_for(own, missing, extras_modules(requires))
    if extra is None:
        return None
    return (f"shoal {command}: needs the {extra} extra ({missing} is not installed): "
            f"{_install_hint(extra)}")
