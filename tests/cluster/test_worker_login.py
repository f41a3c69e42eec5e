"""How workers log in: the password (SPAKE2) or pinned keys; anything else is refused."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from cluster_helpers import Master, Worker, shoal, wait_for


def test_a_worker_with_the_wrong_password_is_never_registered(
        shared_cluster: tuple[Master, list[Worker]], tmp_path: Path) -> None:
    master, _ = shared_cluster
    bad = Worker(tmp_path / "worker-intruder", "intruder", master, password="not the password")
    bad.start()
    try:
        wait_for(lambda: "cannot reach the master" in bad.log, what="the refused login")
        names = [w["name"] for w in master.api("GET", "/api/v1/workers")["items"]]
        assert names == ["w1", "w2"]
        assert "login from 127.0.0.1 failed" in master.log
    finally:
        bad.stop()


def test_a_worker_logs_in_with_its_key_once_each_side_pinned_the_other(
        master: Master, start_workers: Callable[..., list[Worker]]) -> None:
    folder = master.dir.parent / "worker-keyed"
    worker_env = {**master.env, "SHOAL_CONFIG_DIR": str(folder)}
    public = shoal("beacon", "key", env=worker_env)  # the machine's identity, as for beacons
    assert public.returncode == 0, public.stderr
    done = shoal("master", "authorize", "-", env=master.env, stdin=public.stdout)
    assert done.returncode == 0 and "authorized worker key" in done.stdout, done.stderr
    master_key = shoal("master", "key", env=master.env)
    trusted = shoal("worker", "trust", f"127.0.0.1:{master.worker_port}",
                    master_key.stdout.strip(), env=worker_env)
    assert trusted.returncode == 0, trusted.stderr
    master.restart()  # the master reads its authorized keys when it starts
    (keyed,) = start_workers(1, names=["keyed"], extra=["--key"])
    assert keyed.state() == "online"
    assert "'keyed' logged in from 127.0.0.1 (key login with key" in master.log
