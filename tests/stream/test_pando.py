"""What Pando's users write works as they wrote it (issue 12, Pando): processors in its
callback style, items as strings, report() with a unit's name, and its examples."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from stream_helpers import module, monitor, start, stop, stream, wait_for_url

from shoal.stream import protocol, reporting
from shoal.stream.processor import callable_of, takes_callback
from shoal.stream.stats import VolunteerStats

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "stream"

CALLBACKS = """
import threading

def process(x, cb):
    if x == 0:
        threading.Timer(0.02, cb, (None, "later, from a thread")).start()
    elif x == 1:
        cb("it went wrong")
    elif x == 2:
        cb(ValueError("processing error"))
    else:
        cb(None, x * x)
        cb(None, "a second answer is ignored")
"""


def test_which_functions_take_a_callback():
    def plain(x): ...
    def with_option(x, scale=2): ...
    def pando(x, cb): ...
    def keyword_cb(x, *, cb): ...

    assert [takes_callback(f) for f in (plain, with_option, pando, keyword_cb)] == \
        [False, False, True, False]
    assert callable_of(plain) is plain


@pytest.mark.parametrize("mode", [["--local"], ["--workers", "2"]])
def test_a_callback_style_processor_answers_at_once_or_later(tmp_path: Path, mode: list[str]):
    path = tmp_path / "pando_style.py"
    path.write_text(CALLBACKS)
    done = stream(str(path), "0", "1", "2", "3", "4", *mode, "--on-error", "report")
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [
        "later, from a thread", "error: CallbackError: it went wrong",
        "error: ValueError: processing error", "9", "16"]


def test_a_callback_style_processor_runs_on_a_machine_volunteer(tmp_path: Path):
    path = tmp_path / "pando_style.py"
    path.write_text(CALLBACKS)
    err = tmp_path / "stream.err"
    with open(err, "w") as err_file:
        root = start("stream", str(path), "0", "3", "--start-idle", "--bind", "127.0.0.1",
                     stderr=err_file)
    try:
        url = wait_for_url(err, root)
        volunteer = start("volunteer", url, "--once")
        out, _ = root.communicate(timeout=60)
        volunteer.wait(timeout=30)
    finally:
        stop(root)
    assert out.splitlines() == ["later, from a thread", "9"]


def test_strings_hands_every_item_as_the_string_it_is():
    done = stream(module("words"), "007", "1.5", "x", "--strings", "--workers", "1")
    assert done.stdout.splitlines() == ["007!", "1.5!", "X!"], done.stderr
    done = stream(module("words"), "--stdin", "--strings", "--local", stdin="007\n2\n")
    assert done.stdout.splitlines() == ["007!", "2!"], done.stderr
    done = stream(module("words"), "--stdin", "--local", stdin="007\n")
    assert done.stdout.splitlines() == ["7!"]   # without it: a number, as before
    done = stream(module("words"), "1", "--strings", "--json")
    assert done.returncode == 2 and "give --json or --strings, not both" in done.stderr


def test_report_takes_a_unit_name_that_counts_the_items():
    reporting.drain()
    reporting.report(items=3, units="Gizmos")
    reporting.report(items=4, units="Gizmos", cpu_time=0.5)
    totals = reporting.drain()
    assert totals is not None
    assert (totals.items, totals.units, totals.unit, totals.cpu_time) == (7, 7.0, "Gizmos", 0.5)
    with pytest.raises(ValueError, match="units must be a number, or a name"):
        reporting.report(units="\n")
    message = protocol.report(0.5, 0.0, 7, 7.0, "Gizmos")
    assert protocol.check_report(message)[4] == "Gizmos"
    stats = VolunteerStats()
    stats.report(0.5, 0.0, 7.0, "Gizmos")
    stats.close_interval(1.0)
    assert stats.as_json()["unit"] == "Gizmos" and stats.as_json()["units_per_s"]["max"] == 7.0


def test_the_monitor_shows_the_unit_a_processor_names(tmp_path: Path):
    err = tmp_path / "stream.err"
    with open(err, "w") as err_file:
        proc = start("stream", str(EXAMPLES / "collatz.py"), "--stdin", "--workers", "1",
                     "--bind", "127.0.0.1", "--reporting-interval", "0.1", stdin=-1,
                     stderr=err_file)
    try:
        url = wait_for_url(err, proc)
        assert proc.stdin is not None
        proc.stdin.write("".join(f"{n}\n" for n in range(1, 3000)))
        proc.stdin.flush()
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            shown = [(v["unit"], v["units_per_s"]["max"]) for v in monitor(url)["volunteers"]]
            if shown and shown[0][1] > 0:
                break
            time.sleep(0.05)
        proc.stdin.close()
        proc.wait(timeout=60)
    finally:
        stop(proc)
    assert shown[0][0] == "steps" and shown[0][1] > 0


# -- Pando's examples, as shoal ships them -------------------------------------------------
def example(name: str) -> str:
    return str(EXAMPLES / f"{name}.py")


@pytest.mark.parametrize("mode", [["--local"], ["--workers", "2", "--batch", "4"]])
def test_the_examples_compute_what_pandos_do(mode: list[str]):
    done = stream(example("square"), *map(str, range(1, 11)), *mode)
    assert done.stdout.split() == [str(i * i) for i in range(1, 11)], done.stderr
    done = stream(example("collatz"), "1", "6", "7", "27", "97", *mode)
    assert done.stdout.split() == ["0", "8", "16", "111", "118"], done.stderr
    done = stream(example("error"), "1", "2", "3", "4", *mode, "--on-error", "report")
    assert done.stdout.splitlines() == ["1", "2", "error: ValueError: processing error on 3",
                                        "4"], done.stderr
    done = stream(example("error"), "1", "2", "3", "4", *mode)
    assert done.returncode == 1 and done.stdout.split() == ["1", "2"]


def test_the_raytracer_draws_the_same_image_however_it_runs(tmp_path: Path):
    rows = [str(y) for y in range(0, 120, 7)]
    local = stream(example("raytracer"), *rows, "--local")
    spread = stream(example("raytracer"), *rows, "--workers", "2")
    assert local.returncode == spread.returncode == 0, spread.stderr
    assert local.stdout == spread.stdout
    pixels = [list(map(int, line.split())) for line in local.stdout.splitlines()]
    assert [len(p) for p in pixels] == [160 * 3] * len(rows)
    assert all(0 <= c <= 255 for p in pixels for c in p)
    assert len({tuple(p) for p in pixels}) == len(rows)   # a picture, not one colour
    assert json.dumps(pixels[0][:3]) == "[180, 214, 255]"   # the sky's top left
