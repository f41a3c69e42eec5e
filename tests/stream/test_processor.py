"""Finding a module's processor, here and on a volunteer that only has its source."""

from __future__ import annotations

import pytest
from stream_helpers import module

from shoal.stream.errors import ProcessorError
from shoal.stream.processor import from_source, load


def test_the_decorated_function_is_the_processor():
    found = load(module("square"))
    assert found.function_name == "square" and found.function(7) == 49
    assert "@shoal.stream.processor" in found.source


def test_a_function_named_process_is_the_processor_without_a_decorator():
    assert load(module("flaky")).function_name == "process"


def test_modules_without_one_or_with_two_are_refused():
    with pytest.raises(ProcessorError, match="has no processor"):
        load(module("nothing"))
    with pytest.raises(ProcessorError, match="several functions"):
        load(module("two_marked"))


def test_a_volunteer_rebuilds_the_processor_from_source():
    function = from_source("remote_square", load(module("square")).source, "square")
    assert function(5) == 25
    with pytest.raises(ProcessorError, match="does not run here: ModuleNotFoundError"):
        from_source("remote_broken", "import a_module_that_does_not_exist\n", "process")
