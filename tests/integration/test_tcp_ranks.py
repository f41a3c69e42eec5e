"""Real rank processes on the encrypted TCP transport, started by a small launcher here:
a ring, an allreduce and a large exchange with ``from shoal import MPI``, first with
every rank on its own "host" (127.0.0.x), then hybrid: two hosts of two ranks each."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from shoal.security import JobKey
from shoal.transport.rendezvous import RendezvousServer
from shoal.transport.shm import ShmJob

pytestmark = pytest.mark.timeout(60)

PROGRAM = """
from shoal import MPI

comm = MPI.COMM_WORLD
rank, size = comm.Get_rank(), comm.Get_size()
token = comm.sendrecv(("token", rank), dest=(rank + 1) % size, source=(rank - 1) % size)
assert token == ("token", (rank - 1) % size), token
total = comm.allreduce(rank + 1, op=MPI.SUM)
assert total == size * (size + 1) // 2, total
big = comm.sendrecv(bytes([rank]) * 3_000_000, dest=(rank + 1) % size,
                    source=(rank - 1) % size)
assert big == bytes([(rank - 1) % size]) * 3_000_000
comm.Barrier()
print(f"rank {rank} of {size}: ring, allreduce {total} and 3 MB exchange ok", flush=True)
"""


def run_job(tmp_path: Path, transport: str, hosts: list[str],
            program: str = PROGRAM) -> list[subprocess.CompletedProcess[str]]:
    """Start one process per entry of ``hosts`` (the address it stands for), the way a
    launcher would: rendezvous in a thread, the job key through a pipe, shm per host."""
    script = tmp_path / "prog.py"
    script.write_text(program)
    size = len(hosts)
    key = JobKey.generate("test-job")
    shm: dict[str, ShmJob] = {}
    if transport == "hybrid":
        for host in sorted(set(hosts)):
            count = hosts.count(host)
            if count > 1:
                shm[host] = ShmJob.create(count)
    procs = []
    with RendezvousServer(key, size, host="127.0.0.1") as server:
        try:
            for rank, host in enumerate(hosts):
                read_end, write_end = os.pipe()
                env = dict(os.environ, SHOAL_RANK=str(rank), SHOAL_SIZE=str(size),
                           SHOAL_JOB_ID="test-job", SHOAL_TRANSPORT=transport,
                           SHOAL_RENDEZVOUS=server.address_text, SHOAL_TCP_HOST=host,
                           SHOAL_HOST_ID=host, SHOAL_JOB_KEY_FD=str(read_end))
                env.pop("SHOAL_BACKEND", None)
                fds: tuple[int, ...] = (read_end,)
                if host in shm:
                    local = [r for r, h in enumerate(hosts) if h == host].index(rank)
                    env.update(shm[host].rank_env(local))
                    fds += shm[host].rank_fds(local)
                procs.append(subprocess.Popen([sys.executable, str(script)], env=env,
                                              pass_fds=fds, stdout=subprocess.PIPE,
                                              stderr=subprocess.PIPE, text=True))
                os.close(read_end)
                os.write(write_end, key.hex().encode())  # never in argv or the environment
                os.close(write_end)
            for job in shm.values():
                job.close_rank_fds()
            results = []
            for proc in procs:
                out, err = proc.communicate(timeout=45)
                results.append(subprocess.CompletedProcess(proc.args, proc.returncode, out,
                                                           err))
            return results
        finally:
            for proc in procs:
                if proc.poll() is None:
                    proc.kill()
                    proc.wait()
            for job in shm.values():
                job.close()


def assert_all_ok(results: list[subprocess.CompletedProcess[str]]) -> None:
    size = len(results)
    for rank, result in enumerate(results):
        assert result.returncode == 0, f"rank {rank} failed:\n{result.stderr}"
        assert f"rank {rank} of {size}: ring, allreduce" in result.stdout


def test_four_ranks_on_four_hosts_run_a_ring_and_an_allreduce_over_tcp(tmp_path) -> None:
    assert_all_ok(run_job(tmp_path, "tcp", [f"127.0.0.{i}" for i in range(1, 5)]))


def test_two_hosts_of_two_ranks_run_hybrid_shm_inside_and_tcp_between(tmp_path) -> None:
    assert_all_ok(run_job(tmp_path, "hybrid", ["127.0.0.1", "127.0.0.1",
                                               "127.0.0.2", "127.0.0.2"]))


def test_a_rank_that_dies_makes_its_peers_fail_with_a_clear_error(tmp_path) -> None:
    program = """
import os
from shoal import MPI

comm = MPI.COMM_WORLD
comm.Barrier()
if comm.Get_rank() == 1:
    os._exit(3)  # no Finalize, no authenticated close
comm.recv(source=1)
"""
    results = run_job(tmp_path, "tcp", ["127.0.0.1", "127.0.0.2"], program)
    assert results[1].returncode == 3
    assert results[0].returncode != 0
    assert "PeerLostError" in results[0].stderr and "rank 1 on 127.0.0.2" in results[0].stderr


def test_shoal_run_with_transport_tcp_runs_the_program_over_encrypted_links(tmp_path) -> None:
    script = tmp_path / "prog.py"
    script.write_text(PROGRAM)
    result = subprocess.run([sys.executable, "-m", "shoal", "run", "-n", "3", "--transport",
                             "tcp", str(script)], capture_output=True, text=True, timeout=45)
    assert result.returncode == 0, result.stderr
    assert sorted(result.stdout.splitlines()) == [
        f"rank {r} of 3: ring, allreduce 6 and 3 MB exchange ok" for r in range(3)]


def test_threads_of_ranks_on_the_encrypted_transport(tmp_path: Path) -> None:
    # THREAD_MULTIPLE where the transport's sleep reads the sockets (it sleeps under the
    # engine's lock): the SPMD suite's threads program, shorter, on TCP between ranks.
    program = Path(__file__).resolve().parent.parent / "spmd" / "programs" / "threads.py"
    env = dict(os.environ, THREADS_ROUNDS="20", THREADS_ORDERED="20", SHOAL_BACKEND="shoal")
    done = subprocess.run([sys.executable, "-m", "shoal", "run", "-n", "2", "--transport", "tcp",
                           "--timeout", "50", str(program)], cwd=program.parent, env=env,
                          capture_output=True, text=True, timeout=55)
    assert done.returncode == 0, done.stderr
    assert "threads ok" in done.stdout
