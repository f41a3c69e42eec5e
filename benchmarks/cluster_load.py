"""Load test of the cluster master: 200 workers heartbeating and 50 REST requests a second.

    python benchmarks/cluster_load.py [--seconds 60] [--workers 200] [--rate 50]

Starts a real ``shoal master`` (its SQLite database in a temporary
``SHOAL_CONFIG_DIR``), then:

* a second process logs in ``--workers`` simulated workers over the real worker
  link (SPAKE2 login, AES-GCM frames, the JSON messages of
  ``shoal.cluster.protocol``), all in one asyncio loop, one connection each.
  Each sends a heartbeat with a health sample every ``--heartbeat`` seconds
  (phases spread evenly) and runs what it is sent: ``started``, one line of
  ``output``, ``ended`` with exit code 0;
* this process sends ``--rate`` REST requests a second for ``--seconds``,
  open loop (each at its scheduled time, whether or not earlier ones have
  answered, so a slow master cannot slow the load down and hide its latency):
  40% ``GET /pools?limit=20``, 25% ``GET /workers``, 20% ``GET /pools/{id}``
  of a recent pool, 15% ``POST /pools`` of ``echo`` to 1-3 random simulated workers.

Prints p50/p90/p99 latency per kind of request and overall, the errors (by
status or exception) and the heartbeats sent. The target (issue 4) is
p99 < 100 ms on 2 cores. On a shared machine the figures are noisy: quote
medians from one run and say what else ran.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import random
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import psutil

PASSWORD = "load-test-worker-password"
KINDS = (("GET /pools", 0.40), ("GET /workers", 0.25), ("GET /pools/{id}", 0.20),
         ("POST /pools", 0.15))


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def shoal(*args: str, env: dict[str, str], stdin: str | None = None) -> str:
    done = subprocess.run([sys.executable, "-m", "shoal", *args], input=stdin, text=True,
                          capture_output=True, env=env, timeout=60)
    if done.returncode != 0:
        raise SystemExit(f"shoal {' '.join(args)} failed: {done.stderr.strip()}")
    return done.stdout


@dataclass
class Master:
    process: subprocess.Popen[bytes]
    url: str
    link_port: int
    token: str

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def start_master(folder: Path) -> Master:
    env = dict(os.environ, SHOAL_CONFIG_DIR=str(folder))
    shoal("master", "password", "--stdin", env=env, stdin=PASSWORD + "\n")
    token = shoal("master", "token", "create", "--scope", "admin", "--name", "load",
                  env=env).strip().splitlines()[-1].strip()
    port, link_port = free_port(), free_port()
    log = (folder / "master.log").open("wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "shoal", "master", "--bind", "127.0.0.1", "--port", str(port),
         "--worker-port", str(link_port)],
        env=env, stdout=log, stderr=subprocess.STDOUT)
    master = Master(process, f"http://127.0.0.1:{port}", link_port, token)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"the master exited: {(folder / 'master.log').read_text()}")
        try:
            if httpx.get(master.url + "/healthz", timeout=1).status_code == 200:
                return master
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    master.stop()
    raise SystemExit("the master did not answer /healthz within 30 s")


# -- the simulated workers (a process of their own) ----------------------------------


def _health(rng: random.Random) -> dict[str, float | None]:
    return {"cpu_percent": rng.uniform(0, 100), "memory_percent": rng.uniform(10, 90),
            "load1": rng.uniform(0, 4), "load5": rng.uniform(0, 4), "load15": rng.uniform(0, 4),
            "disk_percent": rng.uniform(10, 90), "net_sent_bps": rng.uniform(0, 1e6),
            "net_recv_bps": rng.uniform(0, 1e6), "temperature_c": rng.uniform(35, 70)}


async def _worker(index: int, port: int, heartbeat_s: float, phase: float,
                  counts: Counter[str], stop: asyncio.Event, gate: asyncio.Semaphore) -> None:
    from shoal.cluster import protocol
    from shoal.security import ClientConfig, connect_secure_stream

    rng = random.Random(index)
    name = f"sim-{index:03d}"
    async with gate:
        stream = await connect_secure_stream(
            "127.0.0.1", port, ClientConfig(password=PASSWORD, name=name),
            max_message=protocol.MAX_MESSAGE)
        await stream.send(protocol.encode({
            "type": "hello", "protocol": protocol.PROTOCOL_VERSION,
            "worker_id": str(uuid.uuid5(uuid.NAMESPACE_DNS, name)), "name": name,
            "hostname": name, "cores": 4, "memory_total": 4 << 30, "platform": "linux-sim",
            "python": "3.11", "shoal": "sim", "jobs": []}))
        welcome = protocol.decode(await stream.recv())
    if welcome.get("type") != "welcome":
        raise RuntimeError(f"{name}: the master answered {welcome}")
    counts["logged in"] += 1

    async def beat() -> None:
        await asyncio.sleep(phase)
        while not stop.is_set():
            await stream.send(protocol.encode({"type": "heartbeat", "health": _health(rng)}))
            counts["heartbeats"] += 1
            await asyncio.sleep(heartbeat_s)

    async def serve() -> None:
        async for raw in stream:
            message = protocol.decode(raw)
            if message["type"] == "run":
                job = message["job"]
                data = f"hello from {name}\n".encode()
                for reply in ({"type": "started", "job": job, "pid": 10_000 + index},
                              {"type": "output", "job": job, "stream": "stdout", "offset": 0,
                               "data": protocol.b64(data)},
                              {"type": "ended", "job": job, "exit_code": 0, "signal": None,
                               "killed": False, "reason": None}):
                    await stream.send(protocol.encode(reply))
                counts["jobs run"] += 1
            elif message["type"] == "kill":
                await stream.send(protocol.encode({
                    "type": "ended", "job": message["job"], "exit_code": None,
                    "signal": message.get("signal", 15), "killed": True, "reason": None}))

    tasks = [asyncio.create_task(beat()), asyncio.create_task(serve())]
    await stop.wait()
    for task in tasks:
        task.cancel()
    await stream.close()


async def _fleet(workers: int, port: int, heartbeat_s: float, ready: object,
                 done: object, result: object) -> None:
    counts: Counter[str] = Counter()
    stop = asyncio.Event()
    # Log in a few at a time: 200 SPAKE2 handshakes at once would only measure a queue.
    gate = asyncio.Semaphore(16)

    tasks = [asyncio.create_task(_worker(i, port, heartbeat_s, heartbeat_s * i / workers,
                                         counts, stop, gate)) for i in range(workers)]
    while counts["logged in"] < workers:
        failed = [t for t in tasks if t.done() and t.exception()]
        if failed:
            raise RuntimeError(f"a simulated worker failed: {failed[0].exception()}")
        await asyncio.sleep(0.05)
    ready.set()  # type: ignore[attr-defined]
    await asyncio.get_running_loop().run_in_executor(None, done.wait)  # type: ignore[attr-defined]
    stop.set()
    await asyncio.gather(*tasks, return_exceptions=True)
    result.put(dict(counts))  # type: ignore[attr-defined]


def fleet_main(workers: int, port: int, heartbeat_s: float, ready: object, done: object,
               result: object) -> None:
    asyncio.run(_fleet(workers, port, heartbeat_s, ready, done, result))


# -- the REST load ----------------------------------------------------------------------


@dataclass
class Tally:
    latencies: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    errors: Counter[str] = field(default_factory=Counter)
    late_starts: int = 0
    master_cpu_s: float = 0.0
    wall_s: float = 0.0
    loadavg: float = 0.0
    heartbeat_cores: float = 0.0


async def _one(client: httpx.AsyncClient, kind: str, rng: random.Random,
               pool_ids: list[str], names: list[str], tally: Tally) -> None:
    start = time.perf_counter()
    try:
        if kind == "GET /pools":
            response = await client.get("/pools", params={"limit": 20})
        elif kind == "GET /workers":
            response = await client.get("/workers")
        elif kind == "GET /pools/{id}" and pool_ids:
            response = await client.get(f"/pools/{rng.choice(pool_ids[-50:])}")
        else:
            kind = "POST /pools"
            chosen = rng.sample(names, rng.randint(1, 3))
            response = await client.post("/pools", json={"command": ["echo", "load"],
                                                         "workers": chosen})
            if response.status_code == 201:
                pool_ids.append(response.json()["id"])
    except httpx.HTTPError as exc:
        tally.errors[f"{kind}: {type(exc).__name__}"] += 1
        return
    elapsed = time.perf_counter() - start
    if response.status_code >= 400:
        tally.errors[f"{kind}: HTTP {response.status_code}"] += 1
    else:
        tally.latencies[kind].append(elapsed)


async def rest_load(master: Master, names: list[str], rate: float, seconds: float) -> Tally:
    rng = random.Random(1)
    tally = Tally()
    pool_ids: list[str] = []
    kinds = [kind for kind, _ in KINDS]
    weights = [weight for _, weight in KINDS]
    limits = httpx.Limits(max_connections=256, max_keepalive_connections=64)
    async with httpx.AsyncClient(base_url=master.url + "/api/v1", timeout=30, limits=limits,
                                 headers={"Authorization": f"Bearer {master.token}"}) as client:
        tasks = []
        begin = time.perf_counter()
        for n in range(int(rate * seconds)):
            due = begin + n / rate
            delay = due - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            elif delay < -0.01:
                tally.late_starts += 1  # the load generator itself fell behind
            kind = rng.choices(kinds, weights)[0]
            tasks.append(asyncio.create_task(_one(client, kind, rng, pool_ids, names, tally)))
        await asyncio.gather(*tasks)
    return tally


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * len(ordered)) - 1))]


def report(tally: Tally, counts: dict[str, int], args: argparse.Namespace,
           login_s: float) -> dict[str, object]:
    rows = {}
    everything = [v for values in tally.latencies.values() for v in values]
    for kind in [k for k, _ in KINDS] + ["all"]:
        values = everything if kind == "all" else tally.latencies.get(kind, [])
        if values:
            rows[kind] = {"n": len(values), "p50_ms": percentile(values, 50) * 1e3,
                          "p90_ms": percentile(values, 90) * 1e3,
                          "p99_ms": percentile(values, 99) * 1e3,
                          "mean_ms": statistics.fmean(values) * 1e3}
    print(f"\ncluster load: {args.workers} simulated workers (heartbeat every "
          f"{args.heartbeat:g} s), {args.rate:g} REST requests/s for {args.seconds:g} s, "
          f"{os.cpu_count()} cores")
    print(f"workers logged in within {login_s:.1f} s; heartbeats sent {counts.get('heartbeats', 0)}"
          f", jobs run by simulated workers {counts.get('jobs run', 0)}")
    print(f"{'request':<18}{'n':>7}{'p50 ms':>10}{'p90 ms':>10}{'p99 ms':>10}{'mean ms':>10}")
    for kind, row in rows.items():
        print(f"{kind:<18}{row['n']:>7}{row['p50_ms']:>10.1f}{row['p90_ms']:>10.1f}"
              f"{row['p99_ms']:>10.1f}{row['mean_ms']:>10.1f}")
    requests = sum(len(v) for v in tally.latencies.values()) + sum(tally.errors.values())
    print(f"master CPU: {tally.master_cpu_s:.1f} s in {tally.wall_s:.1f} s "
          f"({tally.master_cpu_s / max(tally.wall_s, 1e-9):.2f} cores), "
          f"machine load average {tally.loadavg:.1f}")
    rest_cpu = tally.master_cpu_s - tally.heartbeat_cores * tally.wall_s
    print(f"  heartbeats alone (measured before the REST load): {tally.heartbeat_cores:.2f} cores;"
          f" what the REST load added: {1e3 * rest_cpu / max(requests, 1):.1f} ms CPU "
          "per request")
    errors = sum(tally.errors.values())
    print(f"errors: {errors}" + "".join(f"\n  {n} x {what}" for what, n in
                                         tally.errors.most_common()))
    if tally.late_starts:
        print(f"the load generator started {tally.late_starts} requests more than 10 ms late")
    p99 = rows.get("all", {}).get("p99_ms")
    if p99 is not None:
        verdict = "met" if p99 < 100 else "missed"
        print(f"target p99 < 100 ms: {verdict} (p99 {p99:.1f} ms)")
    return {"rows": rows, "errors": dict(tally.errors), "counts": counts,
            "late_starts": tally.late_starts, "master_cpu_s": tally.master_cpu_s,
            "wall_s": tally.wall_s, "loadavg": tally.loadavg,
            "heartbeat_cores": tally.heartbeat_cores}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--workers", type=int, default=200)
    parser.add_argument("--rate", type=float, default=50.0, help="REST requests per second")
    parser.add_argument("--heartbeat", type=float, default=2.0,
                        help="seconds between a simulated worker's heartbeats (2, as "
                             "`shoal worker`)")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="shoal-load-") as tmp:
        master = start_master(Path(tmp))
        context = multiprocessing.get_context("spawn")
        ready, done, result = context.Event(), context.Event(), context.Queue()
        fleet = context.Process(target=fleet_main, args=(args.workers, master.link_port,
                                                         args.heartbeat, ready, done, result))
        try:
            began = time.monotonic()
            fleet.start()
            while not ready.wait(0.2):
                if not fleet.is_alive():
                    raise SystemExit("the simulated workers failed to log in")
            login_s = time.monotonic() - began
            names = [f"sim-{i:03d}" for i in range(args.workers)]
            # The master's own CPU time says what the load costs it, which a busy
            # machine's latencies cannot: they include the time it waited for a core.
            master_proc = psutil.Process(master.process.pid)
            quiet_s = min(5.0, args.seconds / 4)
            cpu_before = sum(master_proc.cpu_times()[:2])
            time.sleep(quiet_s)  # heartbeats only
            heartbeat_cores = (sum(master_proc.cpu_times()[:2]) - cpu_before) / quiet_s
            cpu_before = sum(master_proc.cpu_times()[:2])
            wall_before = time.monotonic()
            tally = asyncio.run(rest_load(master, names, args.rate, args.seconds))
            tally.master_cpu_s = sum(master_proc.cpu_times()[:2]) - cpu_before
            tally.wall_s = time.monotonic() - wall_before
            tally.loadavg = os.getloadavg()[0]
            tally.heartbeat_cores = heartbeat_cores
            done.set()
            counts = result.get(timeout=60)
            fleet.join(30)
        finally:
            done.set()
            if fleet.is_alive():
                fleet.terminate()
                fleet.join()
            master.stop()
    figures = report(tally, counts, args, login_s)
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
