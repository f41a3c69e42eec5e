"""`shoal stream` end to end with local volunteer processes: order, errors, modes."""

from __future__ import annotations

import json
import subprocess
import sys

from stream_helpers import LIVENESS, env, module, stream


def test_squares_of_stdin_come_out_in_input_order():
    done = stream(module("square"), "--stdin", "--workers", "2",
                  stdin="".join(f"{i}\n" for i in range(1, 401)))
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == [str(i * i) for i in range(1, 401)]


def test_order_holds_under_random_delays_and_batches():
    values = list(range(300))
    done = stream(module("jitter"), *map(str, values), "--workers", "2", "--batch", "5")
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == [str(v) for v in values]


def test_unordered_prints_results_as_they_complete():
    done = stream(module("slow_first"), *map(str, range(40)), "--workers", "2",
                  "--unordered")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.split()
    assert sorted(map(int, lines)) == list(range(40))
    assert lines[0] != "0"     # item 0 sleeps a second; the others did not wait for it


def test_local_runs_in_process_with_the_same_output():
    done = stream(module("square"), "3", "4", "2.5", "--local")
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["9", "16", "6.25"]
    assert "volunteers join" not in done.stderr   # no coordinator, no server


def test_strings_and_json_lines_are_values():
    done = stream(module("words"), "--stdin", "--workers", "1", stdin="abc\nx y\n12x\n")
    assert done.stdout.splitlines() == ["ABC!", "X Y!", "12X!"], done.stderr
    done = stream(module("words"), "--stdin", "--json", "--workers", "1",
                  stdin='{"a": 1}\n\n"s"\n')
    assert done.returncode == 0, done.stderr
    assert [json.loads(line) for line in done.stdout.splitlines()] == [{"a": "1"}, "S!"]


def test_an_async_processor_is_awaited():
    done = stream(module("waiting"), "1", "2", "-1", "--workers", "1", "--on-error", "report")
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == ["[1, 1]", "[2, 2]", "error: ValueError: negative"]


def test_a_line_that_is_not_json_is_a_failed_item_under_the_error_policy():
    lines = '1\n{"a": \n3\n'
    done = stream(module("square"), "--stdin", "--json", "--workers", "1",
                  "--on-error", "skip", stdin=lines)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["1", "9"]
    assert "item 1 " in done.stderr
    assert "failed: BadInput: input line 2 is not JSON" in done.stderr
    done = stream(module("square"), "--stdin", "--json", "--local", stdin=lines)
    assert done.returncode == 1 and done.stdout.split() == ["1"]


def test_on_error_stop_prints_results_before_the_failure_then_its_traceback():
    done = stream(module("flaky"), *map(str, range(8)), "--workers", "2")
    assert done.returncode == 1
    assert done.stdout.split() == ["1", "2", "3"]
    assert "item 3 (3) failed: ZeroDivisionError: no luck with 3" in done.stderr
    assert 'flaky.py", line 3, in process' in done.stderr


def test_on_error_skip_leaves_failed_items_out():
    done = stream(module("flaky"), *map(str, range(25)), "--workers", "2",
                  "--on-error", "skip")
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == [str(x + 1) for x in range(25) if x % 10 != 3]
    assert done.stderr.count("ZeroDivisionError: no luck") == 6   # message + traceback, x3


def test_on_error_report_prints_an_error_line_in_the_items_place():
    done = stream(module("flaky"), *map(str, range(5)), "--workers", "1",
                  "--on-error", "report")
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == ["1", "2", "3", "error: ZeroDivisionError: no luck "
                                        "with 3", "5"]
    done = stream(module("flaky"), "3", "--json", "--local", "--on-error", "report")
    assert json.loads(done.stdout) == {"error": "ZeroDivisionError: no luck with 3", "item": 3}


def test_local_mode_follows_the_error_policy_too():
    done = stream(module("flaky"), "1", "3", "4", "--local")
    assert done.returncode == 1
    assert done.stdout.split() == ["2"]
    assert "ZeroDivisionError" in done.stderr


def test_an_item_that_keeps_killing_its_volunteers_fails_instead_of_looping():
    done = stream(module("killer"), *map(str, range(8)), "--workers", "2",
                  "--on-error", "skip")
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == [str(-x) for x in range(8) if x != 5]
    assert "item 5 (5) failed: ItemLost: 3 volunteers were lost" in done.stderr


def test_a_module_without_a_processor_is_a_clear_error():
    done = stream(module("nothing"), "1")
    assert done.returncode == 2
    assert "has no processor: decorate one function with @shoal.stream.processor" \
        in done.stderr
    done = stream(module("two_marked"), "1")
    assert "marks several functions" in done.stderr and done.returncode == 2


def test_a_module_that_cannot_be_imported_is_a_clear_error():
    done = stream(module("broken"), "1")
    assert done.returncode == 2
    assert "No module named 'a_module_that_does_not_exist'" in done.stderr
    assert "Traceback" not in done.stderr
    done = stream("no/such/file.py", "1")
    assert done.returncode == 2 and "no such module file" in done.stderr


def test_no_items_is_an_empty_stream():
    done = stream(module("square"), "--workers", "1")
    assert done.returncode == 0, done.stderr
    assert done.stdout == ""


def test_a_reader_that_stops_reading_ends_the_stream_quietly():
    command = (f"seq 1 1000000 | {sys.executable} -m shoal stream {module('square')} --stdin "
               "--workers 1 --bind 127.0.0.1 | head -3; echo \"status ${PIPESTATUS[1]}\"")
    done = subprocess.run(["bash", "-c", command], capture_output=True, text=True,
                          timeout=LIVENESS, env=env())
    assert done.stdout.split() == ["1", "4", "9", "status", "0"]
    assert "Traceback" not in done.stderr and "Error" not in done.stderr
