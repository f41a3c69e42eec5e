"""submit pickles a function once, and again whenever what it carries changed."""

from __future__ import annotations

import types

from shoal.tasks.functions import FunctionCache


def _namespace_function():
    space: dict[str, object] = {"k": 1}
    exec("def g(x, y=2):\n    return x + k * y\n", space)
    return space["g"], space


def test_a_function_sent_by_value_is_reused_until_what_it_reads_is_rebound():
    g, space = _namespace_function()
    cache = FunctionCache()
    cache.put(g, 7, by_value=True)
    assert cache.get(g) == 7
    space["k"] = 3                      # a global it names, rebound
    assert cache.get(g) is None
    cache.put(g, 8, by_value=True)
    g.__defaults__ = (5,)               # its defaults
    assert cache.get(g) is None
    cache.put(g, 9, by_value=True)
    assert cache.get(g) == 9


def test_a_function_sent_by_reference_and_other_callables():
    cache = FunctionCache()
    cache.put(types.SimpleNamespace, 1, by_value=False)    # not a plain function: never kept
    assert cache.get(types.SimpleNamespace) is None
    from task_helpers import square

    cache.put(square, 2, by_value=False)
    assert cache.get(square) == 2


def test_submit_sees_a_rebound_closure_and_global(executor):
    def make():
        k = 1

        def f(x):
            return x + k

        def set_k(value):
            nonlocal k
            k = value

        return f, set_k

    f, set_k = make()
    assert executor.submit(f, 1).result(60) == 2
    assert executor.submit(f, 2).result(60) == 3
    set_k(10)
    assert executor.submit(f, 1).result(60) == 11
    g, space = _namespace_function()
    assert executor.submit(g, 1).result(60) == 3
    space["k"] = 4
    assert executor.submit(g, 1).result(60) == 9
