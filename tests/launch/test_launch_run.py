"""`shoal run` runs N ranks of a program the way `python prog.py` would run one."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from launch_helpers import PROGRAMS, RunShoal, clean_env

pytestmark = pytest.mark.timeout(60)


def _records(stdout: str) -> list[dict[str, object]]:
    return sorted((json.loads(line) for line in stdout.splitlines()),
                  key=lambda r: str(r.get("rank")))


def test_every_rank_runs_with_its_rank_size_and_job_id(run_shoal: RunShoal) -> None:
    done = run_shoal("run", "-n", "3", "whoami.py")
    assert done.returncode == 0, done.stderr
    records = _records(done.stdout)
    assert [r["rank"] for r in records] == ["0", "1", "2"]
    assert {r["size"] for r in records} == {"3"}
    assert len({r["job"] for r in records}) == 1
    assert len(str(records[0]["job"])) == 32
    assert all(r["control"] and r["unbuffered"] == "1" for r in records)


def test_a_rank_sees_the_argv_path_and_file_that_python_prog_py_gives(
        run_shoal: RunShoal) -> None:
    alone = subprocess.run([sys.executable, "programs/whoami.py", "a", "--b"],
                           cwd=PROGRAMS.parent, env=clean_env(), capture_output=True,
                           text=True, timeout=30)
    launched = subprocess.run(
        [sys.executable, "-m", "shoal", "run", "-n", "1", "programs/whoami.py", "a", "--b"],
        cwd=PROGRAMS.parent, env=clean_env(), capture_output=True, text=True, timeout=30)
    assert alone.returncode == 0 and launched.returncode == 0, launched.stderr
    want, got = json.loads(alone.stdout), json.loads(launched.stdout)
    for key in ("argv", "path0", "file", "name"):
        assert got[key] == want[key], key


def test_mpiexecs_habit_of_naming_python_before_the_program_runs_the_program(
        run_shoal: RunShoal) -> None:
    done = run_shoal("run", "-n", "2", "python3", "-u", "whoami.py", "x")
    assert done.returncode == 0, done.stderr
    records = _records(done.stdout)
    assert [r["rank"] for r in records] == ["0", "1"]
    assert all(r["argv"] == ["whoami.py", "x"] for r in records), records


def test_a_program_started_by_plain_python_runs_as_one_rank_without_shoal_variables() -> None:
    done = subprocess.run([sys.executable, "whoami.py"], cwd=PROGRAMS, env=clean_env(),
                          capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stderr
    record = json.loads(done.stdout)
    assert record["rank"] is None and record["control"] is None


def test_a_module_runs_with_dash_m_as_python_dash_m_would(run_shoal: RunShoal) -> None:
    done = run_shoal("run", "-n", "2", "-m", "pkgprog", "x", "--flag")
    assert done.returncode == 0, done.stderr
    records = _records(done.stdout)
    assert [r["rank"] for r in records] == ["0", "1"]
    assert records[0]["argv"] == [str(PROGRAMS / "pkgprog" / "__main__.py"), "x", "--flag"]
    assert records[0]["name"] == "__main__"
    assert records[0]["path0"] == str(PROGRAMS)


def test_the_exit_status_is_zero_when_every_rank_exits_zero(run_shoal: RunShoal) -> None:
    assert run_shoal("run", "-n", "2", "exit_with.py", "9", "0").returncode == 0


def test_the_exit_status_is_the_failing_ranks_status(run_shoal: RunShoal) -> None:
    done = run_shoal("run", "-n", "3", "exit_with.py", "1", "7")
    assert done.returncode == 7
    assert "rank 1 exited with status 7" in done.stderr


def test_a_message_given_to_sys_exit_is_printed_and_the_status_is_one(
        run_shoal: RunShoal) -> None:
    done = run_shoal("run", "-n", "1", "exit_message.py")
    assert done.returncode == 1
    assert "no can do" in done.stderr


def test_keyboard_interrupt_in_a_rank_gives_status_130(run_shoal: RunShoal) -> None:
    assert run_shoal("run", "-n", "1", "interrupted.py").returncode == 130


def test_stdin_goes_to_rank_zero_and_the_others_read_nothing(run_shoal: RunShoal) -> None:
    done = run_shoal("run", "-n", "2", "read_stdin.py", input="some input\n")
    assert done.returncode == 0, done.stderr
    lines = sorted(done.stdout.splitlines())
    assert lines == ["rank 0 read 'some input\\n'", "rank 1 read ''"]


def test_tag_output_starts_every_line_with_the_rank_in_brackets(run_shoal: RunShoal) -> None:
    done = run_shoal("run", "-n", "2", "--tag-output", "read_stdin.py", input="")
    assert done.returncode == 0, done.stderr
    assert sorted(done.stdout.splitlines()) == ["[0] rank 0 read ''", "[1] rank 1 read ''"]


def test_env_options_set_variables_in_every_rank(run_shoal: RunShoal) -> None:
    done = run_shoal("run", "-n", "2", "--env", "GREETING=hi=there", "whoami.py")
    assert done.returncode == 0, done.stderr
    assert {r["greeting"] for r in _records(done.stdout)} == {"hi=there"}


def test_options_after_the_program_belong_to_the_program(run_shoal: RunShoal) -> None:
    done = run_shoal("run", "-n", "1", "whoami.py", "-n", "5", "--timeout", "x", "--help")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["argv"] == ["whoami.py", "-n", "5", "--timeout", "x",
                                               "--help"]


def test_a_process_started_by_a_rank_does_not_outlive_the_job(run_shoal: RunShoal) -> None:
    # The no_leftover_processes fixture fails the test if the `sleep 60` survives.
    done = run_shoal("run", "-n", "1", "leave_child.py")
    assert done.returncode == 0, done.stderr
    assert done.stdout == "started a child\n"
