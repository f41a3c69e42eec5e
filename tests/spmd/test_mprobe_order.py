"""A matched probe takes exactly one message: mprobe in a loop keeps MPI's order.

(The thread-safe engine's wait_until asks its done() callback again after it said True;
a probe that takes the message on every call lost one message per such repeat, so a
later mprobe got the next message, or waited forever for one already gone.)
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[2] / "src"

PROGRAM = textwrap.dedent("""
    from shoal import MPI
    comm = MPI.COMM_WORLD
    rank, size = comm.Get_rank(), comm.Get_size()
    right, left = (rank + 1) % size, (rank - 1) % size
    for i in range(1500):
        request = comm.isend((i, rank), right, 123)
        if i % 2:
            got = comm.mprobe(left, 123).recv()
        else:
            got = comm.mprobe(left, 123).irecv().wait()
        assert got == (i, left), (i, got)
        request.wait()
    print("done", rank)
""")


@pytest.mark.timeout(90)
@pytest.mark.parametrize("ranks", [2, 3])
def test_mprobe_in_a_loop_gets_every_message_in_order(tmp_path, ranks):
    (tmp_path / "prog.py").write_text(PROGRAM)
    env = {k: v for k, v in os.environ.items() if not k.startswith("SHOAL_")}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(SRC), env.get("PYTHONPATH")]))
    done = subprocess.run([sys.executable, "-m", "shoal", "run", "-n", str(ranks),
                           "--timeout", "60", "prog.py"], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=80, stdin=subprocess.DEVNULL)
    assert done.returncode == 0, done.stderr[-3000:]
    assert sorted(done.stdout.split("\n")[:-1]) == [f"done {r}" for r in range(ranks)]
