"""The launcher's parts on their own: line splitting, control events, argument splitting."""

from __future__ import annotations

import io
import os
import sys

import pytest

from shoal.cli.run import split_argv
from shoal.launch import control
from shoal.launch.output import PARTIAL_LINE_DELAY, LineStream, Sink

pytestmark = pytest.mark.timeout(30)


def _stream(tag: bool = True) -> tuple[LineStream, io.BytesIO]:
    buffer = io.BytesIO()
    return LineStream(3, Sink(buffer), tag), buffer


def test_complete_lines_go_out_at_once_with_the_rank_tag() -> None:
    stream, out = _stream()
    stream.feed(b"one\ntwo\nthr", now=0.0)
    assert out.getvalue() == b"[3] one\n[3] two\n"
    stream.feed(b"ee\n", now=0.01)
    assert out.getvalue() == b"[3] one\n[3] two\n[3] three\n"


def test_a_partial_line_goes_out_after_a_short_wait_and_its_rest_gets_no_second_tag() -> None:
    stream, out = _stream()
    stream.feed(b"Name? ", now=0.0)
    stream.flush_stale(now=PARTIAL_LINE_DELAY / 2)
    assert out.getvalue() == b""
    stream.flush_stale(now=PARTIAL_LINE_DELAY)
    assert out.getvalue() == b"[3] Name? "
    stream.feed(b"Ann\nnext\n", now=1.0)
    assert out.getvalue() == b"[3] Name? Ann\n[3] next\n"


def test_untagged_output_is_passed_through_unchanged() -> None:
    stream, out = _stream(tag=False)
    stream.feed(b"a\nb", now=0.0)
    stream.flush()
    assert out.getvalue() == b"a\nb"


def test_captured_output_is_kept_apart_until_the_capture_ends() -> None:
    stream, out = _stream()
    stream.start_capture()
    stream.feed(b"stack\n", now=0.0)
    assert out.getvalue() == b""
    assert stream.end_capture() == b"stack\n"


def test_a_closed_sink_drops_output_instead_of_failing() -> None:
    buffer = io.BytesIO()
    sink = Sink(buffer)
    buffer.close()
    sink.write(b"lost\n")  # no exception


def test_control_lines_become_events_and_garbage_is_ignored() -> None:
    reader = control.ControlReader(rank=1)
    events = reader.feed(b'{"event": "error", "traceback": "tb"}\nnot json\n{"eve')
    assert events == [control.ControlEvent(1, "error", {"traceback": "tb"})]
    assert reader.feed(b'nt": "abort", "code": 3}\n') == [
        control.ControlEvent(1, "abort", {"code": 3})]
    assert reader.feed(b'{"event": "later"}') == []
    assert reader.finish() == [control.ControlEvent(1, "later", {})]


def test_report_writes_one_json_line_to_the_control_pipe(monkeypatch: pytest.MonkeyPatch
                                                         ) -> None:
    read_end, write_end = os.pipe()
    try:
        monkeypatch.setenv(control.ENV_VAR, str(write_end))
        control._forget()
        control.report("custom", value=[1, 2], other=object)
        data = os.read(read_end, 65536)
        events = control.ControlReader(0).feed(data)
        assert events[0].event == "custom" and events[0].fields["value"] == [1, 2]
        assert data.count(b"\n") == 1
    finally:
        control._forget()
        os.close(read_end)
        os.close(write_end)


def test_report_does_nothing_without_a_control_channel(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(control.ENV_VAR, raising=False)
    control._forget()
    try:
        control.report("error", traceback="x")
        assert not control.available()
    finally:
        control._forget()


def test_report_ignores_a_control_fd_that_is_not_a_pipe(monkeypatch: pytest.MonkeyPatch,
                                                        tmp_path: object) -> None:
    with open(os.devnull, "wb") as handle:
        monkeypatch.setenv(control.ENV_VAR, str(handle.fileno()))
        control._forget()
        try:
            assert not control.available()
        finally:
            control._forget()


@pytest.mark.parametrize(("argv", "expected"), [
    (["-n", "4", "prog.py", "-n", "2"], (["-n", "4"], "prog.py", None, ["-n", "2"])),
    (["--np=4", "--tag-output", "p.py"], (["--np=4", "--tag-output"], "p.py", None, [])),
    (["-n", "2", "-m", "pkg.mod", "--x"], (["-n", "2"], None, "pkg.mod", ["--x"])),
    (["-mpkg", "a"], ([], None, "pkg", ["a"])),
    (["--module=pkg", "a"], ([], None, "pkg", ["a"])),
    (["--env", "A=1", "--", "-weird.py", "x"], (["--env", "A=1"], "-weird.py", None, ["x"])),
    (["-n", "2"], (["-n", "2"], None, None, [])),
    # mpiexec's habit: the interpreter before the program is Python's command line
    (["-n", "2", "python", "p.py", "a"], (["-n", "2"], "p.py", None, ["a"])),
    (["-n", "2", "python3", "-u", "-m", "pkg", "a"], (["-n", "2"], None, "pkg", ["a"])),
    ([sys.executable, "-mpkg"], ([], None, "pkg", [])),
])
def test_shoal_options_end_where_the_program_begins(
        argv: list[str], expected: tuple[list[str], str | None, str | None, list[str]]) -> None:
    assert split_argv(argv) == expected


def _progress(*events: str) -> control.RankProgress:
    progress = control.RankProgress()
    for name in events:
        progress.observe(control.ControlEvent(0, name))
    return progress


@pytest.mark.parametrize(("events", "returncode", "others", "ending"), [
    # Joined and left without finalizing: breaks the job while others run, whatever the status.
    (("init",), 0, True, control.Ending.BROKEN),
    (("init",), 3, True, control.Ending.BROKEN),
    (("init",), -9, True, control.Ending.BROKEN),
    # ... but alone at the end only its status counts.
    (("init",), 0, False, control.Ending.CLEAN),
    (("init",), 3, False, control.Ending.FAILED),
    # Finalized: its part is done, the others run on.
    (("init", "finalized"), 0, True, control.Ending.CLEAN),
    (("init", "finalized"), 3, True, control.Ending.FAILED),
    (("init", "finalized"), -11, True, control.Ending.FAILED),
    # Never joined: may end first; only a crash ends the job.
    ((), 0, True, control.Ending.CLEAN),
    ((), 3, True, control.Ending.FAILED),
    ((), -11, True, control.Ending.BROKEN),
    ((), -11, False, control.Ending.FAILED),
    # Unknown events change nothing.
    (("later", "init"), 0, True, control.Ending.BROKEN),
])
def test_judge_exit_says_what_a_ranks_exit_means_for_the_job(
        events: tuple[str, ...], returncode: int, others: bool,
        ending: control.Ending) -> None:
    assert control.judge_exit(_progress(*events), returncode, others) is ending
