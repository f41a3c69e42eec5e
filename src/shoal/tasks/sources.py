"""Where code sent by value came from, so remote tracebacks name real files and lines.

cloudpickle (3.1 and later) sends the code of ``__main__`` functions, lambdas
and closures with the file name ``<dynamic-code>``, so a worker's traceback
says ``File "<dynamic-code>", line 6, in boom`` and has no source line.  The
submitting side knows better: :func:`remember` is called for every code object
the codec pickles by value, and :func:`resolve` rewrites such lines of a
remote traceback to the real file, with the source line under it (read here,
where the file is).

A task system runs on the service, far from its files: the executor sends the
:func:`table` of the code it pickled along with it, and the service takes it in
(:func:`learn`), so the tracebacks made there (a remote method's, over the REST
API) are resolved the same way.
"""

from __future__ import annotations

import contextlib
import linecache
import re
import threading
import types
from collections.abc import Iterator

DYNAMIC = "<dynamic-code>"
_LINE = re.compile(r'^(?P<indent>[ \t]*)File "' + re.escape(DYNAMIC)
                   + r'", line (?P<line>\d+), in (?P<name>.+)$')
_lock = threading.Lock()
_known: dict[str, dict[tuple[str, int], int]] = {}   # name -> {(file, first line): last line}
_seen: set[tuple[str, str, int]] = set()
_lines: dict[tuple[str, int], str] = {}                 # learned from a table
_collecting = threading.local()

Table = list[tuple[str, str, int, int, list[str]]]   # (name, file, first, last, source lines)


@contextlib.contextmanager
def collecting() -> Iterator[list[types.CodeType]]:
    """The code objects remembered in this thread inside the ``with``."""
    found: list[types.CodeType] = []
    outer = getattr(_collecting, "codes", None)
    _collecting.codes = found
    try:
        yield found
    finally:
        _collecting.codes = outer


def _span(code: types.CodeType) -> int:
    lines = [line for _, _, line in code.co_lines() if line is not None]
    return max(lines, default=code.co_firstlineno)


def remember(code: types.CodeType) -> None:
    """Note where ``code`` (as it is pickled now) was written."""
    filename = code.co_filename
    if not filename or filename.startswith("<"):
        return  # itself dynamic (unpickled here, typed at a prompt): nothing to add
    codes = getattr(_collecting, "codes", None)
    if codes is not None:
        codes.append(code)
    key = (code.co_name, filename, code.co_firstlineno)
    if key in _seen:
        return
    with _lock:
        _seen.add(key)
        _known.setdefault(code.co_name, {})[(filename, code.co_firstlineno)] = _span(code)


def table(codes: list[types.CodeType]) -> Table:
    """Where ``codes`` were written, with their source lines: for :func:`learn` elsewhere."""
    out: Table = []
    done = set()
    for code in codes:
        key = (code.co_name, code.co_filename, code.co_firstlineno)
        if key in done:
            continue
        done.add(key)
        first, last = code.co_firstlineno, _span(code)
        lines = [linecache.getline(code.co_filename, n) for n in range(first, last + 1)]
        out.append((code.co_name, code.co_filename, first, last, lines))
    return out


def learn(entries: Table) -> None:
    """Take in a :func:`table` made where the code was written (the service does)."""
    with _lock:
        for name, filename, first, last, lines in entries:
            _known.setdefault(str(name), {})[(str(filename), int(first))] = int(last)
            for offset, text in enumerate(lines):
                if text:
                    _lines[(str(filename), int(first) + offset)] = str(text)


def where(name: str, line: int) -> str | None:
    """The file of the remembered function ``name`` whose code spans ``line``, if one does."""
    best: tuple[int, str] | None = None
    for (filename, first), last in _known.get(name, {}).items():
        if first <= line <= last and (best is None or first > best[0]):
            best = (first, filename)
    return best[1] if best else None


def resolve(trace: str) -> str:
    """``trace`` with each ``<dynamic-code>`` frame of known code given its file and line."""
    if DYNAMIC not in trace or not _known:
        return trace
    out = []
    for text in trace.splitlines(keepends=True):
        out.append(text)
        match = _LINE.match(text.rstrip("\r\n"))
        if match is None:
            continue
        line = int(match["line"])
        filename = where(match["name"], line)
        if filename is None:
            continue
        indent = match["indent"]
        out[-1] = f'{indent}File "{filename}", line {line}, in {match["name"]}\n'
        source = (_lines.get((filename, line)) or linecache.getline(filename, line)).strip()
        if source:
            out.append(f"{indent}  {source}\n")
    return "".join(out)
