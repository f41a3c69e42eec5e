"""A task's remote traceback names the real file and line, also for code from ``__main__``."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

SCRIPT = textwrap.dedent('''
    import shoal


    def helper(x):
        return 1 / x


    def boom(x):
        y = x + 1
        return helper(y - 1)


    class Crash(shoal.TaskSystem):
        def generate_tasks(self):
            return [shoal.Task(boom, 0)]

        def task_finished(self, task, result, error):
            raise error


    if __name__ == "__main__":
        with shoal.Executor(workers=1) as ex:
            error = ex.submit(boom, 0).exception(60)
            print(error.__cause__.remote_traceback)
            print("=== system")
            try:
                ex.run_system(Crash(), timeout=60)
            except ZeroDivisionError as exc:
                print(exc.__cause__.remote_traceback)
''')


def test_a_main_functions_remote_traceback_shows_its_file_and_source_lines(tmp_path: Path):
    script = tmp_path / "crashing.py"
    script.write_text(SCRIPT)
    proc = subprocess.run([sys.executable, str(script)], cwd=tmp_path, capture_output=True,
                          text=True, timeout=110)
    assert proc.returncode == 0, proc.stderr
    direct, system = proc.stdout.split("=== system")
    for trace in (direct, system):
        assert "<dynamic-code>" not in trace
        assert f'File "{script}", line 11, in boom\n    return helper(y - 1)' in trace
        assert f'File "{script}", line 6, in helper\n    return 1 / x' in trace
    # The system's own frame (it re-raised the task's error) is named too.
    assert f'File "{script}", line 19, in task_finished\n    raise error' in system
