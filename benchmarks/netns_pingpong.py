"""Ping-pong between two hosts made of network namespaces: shoal encrypted, plain
sockets, and MPICH over TCP, in one run.

    sudo python benchmarks/netns_pingpong.py [--quick] [--rounds N] [--baseline DIR] [--json FILE]

Two network namespaces joined by veth pairs on a bridge (the test network of
``tests/integration/netns.py``) stand for two machines.  Three ways across:

* **shoal**: ``shoal run -n 2 --host A:1,B:1 pingpong.py --program`` with a
  beacon in each namespace; the ranks talk over the encrypted, authenticated
  TCP link (AES-256-GCM frames) that any two hosts use.
* **plaintext sockets**: the baseline the encryption is measured against, plain
  Python TCP sockets (``TCP_NODELAY``, ``sendall``, and ``recv_into`` without
  waiting, in a loop: both ends poll, as shoal's ranks and MPICH's do, since an
  idle core that a socket must wake takes tens of microseconds) echoing the
  same message sizes with the same method.  Not shoal: what the Python side of
  a TCP ping-pong costs with no framing and no cipher.
* **MPICH**: mpi4py on MPICH over TCP, ``mpiexec -hosts A,B`` with hydra's rsh
  launcher, whose launcher command (written here) runs each proxy in its
  namespace with ``ip netns exec``.  ``MPIR_CVAR_NOLOCAL=1`` and the OFI tcp
  provider keep MPICH off shared memory, which it would otherwise find, since
  both namespaces are one machine.

The MPI program is ``pingpong.py``'s (buffer API, ``Send``/``Recv`` of uint8
arrays): latency is half the median round trip, bandwidth the size over it.
Each figure is the median over ``--rounds`` runs (3; 1 with ``--quick``) that
alternate between the three, so that a change in the machine's load falls on
all of them; the load average is printed at the start and the end.
``--baseline DIR`` adds a fourth, alternating with the others: shoal from
another checkout's ``DIR/src`` (e.g. ``git archive main src | tar -x -C DIR``),
shown as "before" beside each figure, to measure a change in one run.
Targets (issue 14, item 3): latency up to 1 KiB <= 1.5x MPICH's, bandwidth
from 64 KiB >= 0.9x.  Needs root (namespaces) and iproute2; skips with the
reason otherwise.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
# The namespace network is the tests' own, so that the benchmark measures what the
# tests exercise; it is a plain module with no test dependencies.
sys.path.insert(0, str(HERE.parent / "tests" / "integration"))
import harness
from harness import Report, Row
from netns import Host, Network, unavailable

SIZES = [4**k for k in range(12)]  # 1 B ... 4 MiB, as pingpong.py
SMALL = 1024  # up to here the latency target applies
LARGE = 64 * 1024  # from here the bandwidth target applies
LATENCY_TARGET = "<= 1.5"
BANDWIDTH_TARGET = ">= 0.9"
PASSWORD = "netns pingpong"
PORT = 7447
PLAIN_PORT = 7801
# MPICH over TCP only, however close its ranks are (see the module docstring).
MPICH_ENV = {"MPIR_CVAR_NOLOCAL": "1", "MPICH_CH4_NETMOD": "ofi", "FI_PROVIDER": "tcp",
             "SHOAL_BACKEND": "mpi"}
MPICH_LABEL = "MPICH (ch4:ofi, tcp)"


# -- the plaintext baseline ----------------------------------------------------------

def plain_server(port: int) -> None:
    """Echo length-prefixed messages back until the client hangs up."""
    listener = socket.create_server(("0.0.0.0", port))
    print("listening", flush=True)
    conn, _ = listener.accept()
    conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    buffer = bytearray(max(SIZES))
    view = memoryview(buffer)
    while True:
        head = _recv_exactly(conn, memoryview(bytearray(8)), 8)
        if head is None:
            return
        size = struct.unpack("<Q", head)[0]
        if _recv_exactly(conn, view, size) is None:
            return
        conn.sendall(view[:size])


def _recv_exactly(conn: socket.socket, view: memoryview, n: int) -> memoryview | None:
    """Read ``n`` bytes, polling the socket (a read that does not wait, in a loop)."""
    got = 0
    while got < n:
        try:
            k = conn.recv_into(view[got:n], 0, socket.MSG_DONTWAIT)
        except BlockingIOError:
            continue
        if not k:
            return None
        got += k
    return view[:n]


def plain_client(address: str, port: int, seconds: float) -> None:
    """Time round trips of each size, as pingpong.py does; print one JSON line."""
    import numpy as np

    conn = socket.create_connection((address, port), timeout=30)
    conn.settimeout(None)  # a blocking socket: MSG_DONTWAIT reads then never wait in poll
    conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    back = memoryview(bytearray(max(SIZES)))
    results: dict[str, float] = {}
    for size in SIZES:
        message = struct.pack("<Q", size) + bytes(np.arange(size, dtype=np.int64)
                                                  .astype(np.uint8))

        def exchange(message: bytes = message, size: int = size) -> None:
            conn.sendall(message)
            _recv_exactly(conn, back, size)

        warmup = 200 if size <= 65536 else 10
        start = time.perf_counter()
        for _ in range(warmup):
            exchange()
        per = (time.perf_counter() - start) / warmup
        times = []
        for _ in range(int(min(100_000, max(20, seconds / per)))):
            t0 = time.perf_counter()
            exchange()
            times.append(time.perf_counter() - t0)
        results[str(size)] = float(np.median(times)) / 2 * 1e6
    conn.close()
    print(json.dumps({"benchmark": "plain", "latency_us": {"buffer": results}}), flush=True)


# -- the two hosts -------------------------------------------------------------------

def _run(host: Host, argv: list[str], env: dict[str, str], timeout: float = 300
         ) -> subprocess.CompletedProcess[str]:
    return subprocess.run(host.command(argv), env=env, capture_output=True, text=True,
                          timeout=timeout)


@contextmanager
def beacons(hosts: list[Host], folder: Path) -> Iterator[None]:
    """A beacon in each namespace, each with its own config folder."""
    started: list[dict[str, str]] = []
    try:
        for host in hosts:
            env = dict(os.environ, SHOAL_CONFIG_DIR=str(folder / host.name))
            shoal = [sys.executable, "-m", "shoal", "beacon"]
            subprocess.run(host.command([*shoal, "password", "--stdin"]), env=env, check=True,
                           input=PASSWORD + "\n", text=True, capture_output=True, timeout=60)
            started.append(env)
            up = _run(host, [*shoal, "up", "--bind", "0.0.0.0", "--port", str(PORT)], env, 60)
            if up.returncode != 0:
                raise RuntimeError(f"the beacon in {host.name} did not start: {up.stderr}")
        yield
    finally:
        for host, env in zip(hosts, started, strict=False):
            _run(host, [sys.executable, "-m", "shoal", "beacon", "down"], env, 60)


def hydra_launcher(hosts: list[Host], folder: Path) -> Path:
    """The command hydra's rsh launcher runs as ``LAUNCHER HOST COMMAND...``: it runs
    the proxy command in the namespace that has the address HOST."""
    cases = "\n".join(f"  {h.address}) ns={h.name} ;;" for h in hosts)
    path = folder / "netns-launcher"
    path.write_text(f"""#!/bin/sh
host="$1"; shift
case "$host" in
{cases}
  *) echo "netns-launcher: no namespace has address $host" >&2; exit 1 ;;
esac
exec ip netns exec "$ns" sh -c "$*"
""")
    path.chmod(0o755)
    return path


def _result(report: Report, what: str, done: subprocess.CompletedProcess[str]) -> dict | None:
    for line in reversed(done.stdout.splitlines()):
        if line.startswith("{"):
            return json.loads(line)
    tail = "\n".join((done.stdout + done.stderr).strip().splitlines()[-12:])
    report.errors.append(f"{what} failed (exit {done.returncode}):\n{tail}")
    return None


def run_shoal(a: Host, b: Host, folder: Path, seconds: float, report: Report,
              src: Path | None = None) -> dict | None:
    env = dict(harness.environment(harness.SHOAL), SHOAL_PASSWORD=PASSWORD,
               SHOAL_CONFIG_DIR=str(folder / "runner"))
    if src is not None:  # another checkout's shoal, for the runner and its ranks
        env["PYTHONPATH"] = os.pathsep.join([str(src), env["PYTHONPATH"]])
    argv = [sys.executable, "-m", "shoal", "run", "-n", "2", "--host",
            f"{a.address}:1,{b.address}:1", "--files", "pingpong.py,harness.py",
            str(HERE / "pingpong.py"), "--program", "--seconds", str(seconds)]
    return _result(report, "shoal" if src is None else f"shoal from {src}", _run(a, argv, env))


def run_mpich(a: Host, b: Host, folder: Path, seconds: float, report: Report) -> dict | None:
    env = dict(harness.environment(harness.MPICH), **MPICH_ENV)
    argv = ["mpiexec", "-hosts", f"{a.address},{b.address}", "-n", "2", "-launcher", "rsh",
            "-launcher-exec", str(hydra_launcher([a, b], folder)), "-iface", "eth0",
            sys.executable, str(HERE / "pingpong.py"), "--program", "--seconds", str(seconds)]
    return _result(report, MPICH_LABEL, _run(a, argv, env))


def run_plain(a: Host, b: Host, seconds: float, report: Report) -> dict | None:
    me = str(Path(__file__).resolve())
    server = b.popen([sys.executable, me, "--plain-server", str(PLAIN_PORT)],
                     stdout=subprocess.PIPE, text=True)
    try:
        assert server.stdout is not None
        server.stdout.readline()
        done = _run(a, [sys.executable, me, "--plain-client", b.address, str(PLAIN_PORT),
                        str(seconds)], dict(os.environ))
        return _result(report, "plaintext sockets", done)
    finally:
        if server.poll() is None:
            server.kill()  # normally gone already: the client hung up
        server.wait()


# -- the report ------------------------------------------------------------------------

def measure(quick: bool, rounds: int | None = None, baseline: Path | None = None) -> Report:
    report = Report("Ping-pong between two network namespaces (buffer API, median one-way)")
    reason = unavailable() or (None if shutil.which("mpiexec") else "mpiexec is not on PATH")
    if reason:
        report.name += f": skipped, {reason}"
        report.raw = {"skipped": reason}
        return report
    seconds = 0.05 if quick else 0.25
    rounds = rounds or (1 if quick else 3)
    report.raw["load_before"] = os.getloadavg()
    collected: dict[str, list[dict]] = {"shoal": [], "mpich": [], "plain": [], "before": []}
    with tempfile.TemporaryDirectory() as tmp, Network(2, net=233) as network:
        folder = Path(tmp)
        a, b = network.hosts
        contenders = [("shoal", lambda: run_shoal(a, b, folder, seconds, report)),
                      ("mpich", lambda: run_mpich(a, b, folder, seconds, report)),
                      ("plain", lambda: run_plain(a, b, seconds, report))]
        if baseline is not None:
            contenders.append(("before", lambda: run_shoal(a, b, folder, seconds, report,
                                                           baseline / "src")))
        with beacons([a, b], folder):
            for _ in range(rounds):  # alternate, so a change of load hits every side
                for name, run in contenders:
                    result = run()
                    if result is not None:
                        collected[name].append(result)
    results = {name: harness.merge_medians(values) if values else None
               for name, values in collected.items()}
    report.raw.update(results)
    report.raw["rounds"] = rounds
    for size in SIZES:
        values = {name: harness.pick(results[name], "latency_us", "buffer", str(size))
                  for name in results}
        plain, before = values["plain"], values["before"]
        note = f"plaintext sockets {harness.format_value(plain)} us" if plain else ""
        if before:
            note += f"; before {harness.format_value(before)} us"
        report.rows.append(Row("netns ping-pong", harness.size_label(size), "latency us",
                               values["shoal"], values["mpich"], better="lower",
                               target=LATENCY_TARGET if size <= SMALL else "", note=note))
    for size in SIZES:
        if size < LARGE:
            continue
        values = {name: harness.pick(results[name], "latency_us", "buffer", str(size))
                  for name in results}
        rates = {name: (size / v if v else None) for name, v in values.items()}  # B/us = MB/s
        plain, before = rates["plain"], rates["before"]
        note = f"plaintext sockets {harness.format_value(plain)} MB/s" if plain else ""
        if before:
            note += f"; before {harness.format_value(before)} MB/s"
        report.rows.append(Row("netns bandwidth", harness.size_label(size), "MB/s",
                               rates["shoal"], rates["mpich"], better="higher",
                               target=BANDWIDTH_TARGET, note=note))
    return report


def main() -> int:
    argv = sys.argv[1:]
    if "-h" in argv or "--help" in argv:
        print(__doc__)
        return 0
    if argv[:1] == ["--plain-server"]:
        plain_server(int(argv[1]))
        return 0
    if argv[:1] == ["--plain-client"]:
        plain_client(argv[1], int(argv[2]), float(argv[3]))
        return 0
    rounds = None
    if "--rounds" in argv:
        at = argv.index("--rounds")
        try:
            rounds = max(1, int(argv[at + 1]))
        except (IndexError, ValueError):
            print("netns_pingpong: --rounds takes a whole number, e.g. --rounds 5",
                  file=sys.stderr)
            return 2
        del argv[at:at + 2]
    baseline = None
    if "--baseline" in argv:
        at = argv.index("--baseline")
        if at + 1 >= len(argv) or not (Path(argv[at + 1]) / "src" / "shoal").is_dir():
            print("netns_pingpong: --baseline takes a folder with src/shoal in it (e.g. made by "
                  "git archive main src | tar -x -C DIR)", file=sys.stderr)
            return 2
        baseline = Path(argv[at + 1]).resolve()
        del argv[at:at + 2]
    rest = [a for i, a in enumerate(argv)
            if a not in ("--quick", "--json") and argv[i - 1:i] != ["--json"]]
    if argv[-1:] == ["--json"]:
        print("netns_pingpong: --json takes a file to write, e.g. --json netns.json",
              file=sys.stderr)
        return 2
    if rest:
        print(f"netns_pingpong: unknown option {rest[0]!r} (it takes --quick, --rounds N, "
              "--baseline DIR, --json FILE; --help says more)", file=sys.stderr)
        return 2
    report = measure("--quick" in argv, rounds, baseline)
    if "skipped" in report.raw:
        print(f"netns_pingpong skipped: {report.raw['skipped']}")
        return 0
    before = " ".join(f"{x:.1f}" for x in report.raw["load_before"])
    after = " ".join(f"{x:.1f}" for x in os.getloadavg())
    print(f"(MPICH column: {MPICH_LABEL}; shoal: encrypted TCP between beacons; medians of "
          f"{report.raw['rounds']} alternating rounds; load average (1, 5, 15 min) at the "
          f"start: {before}, at the end: {after})\n")
    return harness.main_for(lambda _quick: report, [a for a in argv if a != "--quick"])


if __name__ == "__main__":
    raise SystemExit(main())
