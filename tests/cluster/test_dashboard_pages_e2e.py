"""Dashboard pages a person reads (issue 13, item 6), in headless Chromium on a real master.

Pools that failed, were killed or exited 3 show as such; an ended job without
output says "no output" (a running one "no output yet"); an admin removes a
stale worker; the Tasks panel shows the task service's state.  Each step leaves
a screenshot in test-artifacts/screenshots/.
"""

from __future__ import annotations

import json
import re
import uuid

import pytest
from cluster_helpers import Master, Worker, submit, wait_for, wait_pool_done
from dashboard_browser import (  # noqa: F401 - the fixtures are used by name
    needs_chromium,
    page_fixture,
    playwright_fixture,
    screenshot,
)

pytestmark = needs_chromium
sync_api = pytest.importorskip("playwright.sync_api")
expect = sync_api.expect
Page = sync_api.Page
Cluster = tuple[Master, list[Worker]]


def _log_in(page: Page, master: Master, token: str | None = None) -> None:
    page.goto(master.url)
    page.get_by_label("Token").fill(token or master.token)
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("heading", name="Workers")).to_be_visible()


def _pool_row(page: Page, tag: str) -> object:
    return page.get_by_role("table", name="Pools").get_by_role("row").filter(has_text=tag)


def test_failed_killed_and_exit_3_pools_show_as_such_and_silent_ended_jobs_say_no_output(
        shared_cluster: Cluster, page: Page) -> None:
    master, _ = shared_cluster
    tag = uuid.uuid4().hex[:8]
    exit3 = submit(master, ["sh", "-c", f"exit 3 # {tag}-exit3"], workers=["w1"])
    unstartable = submit(master, [f"no-such-program-{tag}"], workers=["w2"])
    killed = submit(master, ["sh", "-c", f"sleep 600 # {tag}-killed"], workers=["w1"])
    fine = submit(master, ["sh", "-c", f"echo fine # {tag}-ok"], workers=["w2"])
    wait_for(lambda: master.api("GET", f"/api/v1/pools/{killed['id']}")["jobs"][0]["pid"],
             what="the job to kill running")
    master.api("POST", f"/api/v1/pools/{killed['id']}/kill", json={})
    for pool in (exit3, unstartable, killed, fine):
        wait_pool_done(master, pool["id"])
    _log_in(page, master)
    for suffix, state, jobs in (("exit3", "done: failed", "1 exited (1 non-zero)"),
                                ("killed", "done: killed", "1 killed"),
                                ("ok", "done: ok", "1 exited")):
        row = _pool_row(page, f"{tag}-{suffix}")
        expect(row).to_contain_text(state)
        expect(row).to_contain_text(jobs)
    failed = _pool_row(page, f"no-such-program-{tag}")
    expect(failed).to_contain_text("done: failed")
    expect(failed).to_contain_text("1 failed")
    expect(_pool_row(page, f"{tag}-ok")).not_to_contain_text("non-zero")
    screenshot(page, "dashboard-outcomes", "1-pools")

    _pool_row(page, f"{tag}-killed").get_by_role("button", name=re.compile("^Open")).click()
    expect(page.locator("#pool-summary")).to_contain_text("done: killed")
    figure = page.locator("figure.output").filter(has_text="Output of w1")
    expect(figure).to_contain_text("no output")
    expect(figure).not_to_contain_text("no output yet")
    screenshot(page, "dashboard-outcomes", "2-killed-no-output")
    _pool_row(page, f"{tag}-exit3").get_by_role("button", name=re.compile("^Open")).click()
    expect(page.locator("#pool-summary")).to_contain_text("done: failed")
    expect(page.get_by_role("table", name="Jobs")).to_contain_text("exit code 3")


def test_a_running_job_says_no_output_yet_until_it_ends_without_any(
        shared_cluster: Cluster, page: Page) -> None:
    master, _ = shared_cluster
    tag = uuid.uuid4().hex[:8]
    _log_in(page, master)
    page.get_by_role("textbox", name="Command").fill(f"sh -c 'sleep 600 # {tag}'")
    page.get_by_role("checkbox", name="w2", exact=True).check()
    page.get_by_role("button", name="Run", exact=True).click()
    figure = page.locator("figure.output").filter(has_text="Output of w2")
    jobs = page.get_by_role("table", name="Jobs")
    expect(jobs).to_contain_text("running")
    expect(figure).to_contain_text("no output yet")
    screenshot(page, "dashboard-no-output", "1-running")
    page.get_by_role("button", name="Kill the job on w2").click()
    expect(jobs).to_contain_text("killed by SIGTERM (15)")
    expect(figure).to_contain_text("no output")
    expect(figure).not_to_contain_text("no output yet")
    screenshot(page, "dashboard-no-output", "2-killed")


def test_an_admin_removes_a_stale_worker_and_a_submit_token_cannot(
        cluster: Cluster, page: Page) -> None:
    master, (_, w2) = cluster
    w2.stop()
    wait_for(lambda: w2.state() == "offline", what="w2 going offline")
    table = page.get_by_role("table", name="Workers")
    _log_in(page, master, master.new_token("submit", "runner"))
    expect(table).to_contain_text("offline")
    expect(page.get_by_role("button", name="Remove the worker w2")).to_have_count(0)
    page.get_by_role("button", name="Log out").click()
    _log_in(page, master)
    remove = page.get_by_role("button", name="Remove the worker w2")
    expect(page.get_by_role("button", name="Remove the worker w1")).to_have_count(0)  # online
    screenshot(page, "dashboard-remove-worker", "1-stale")
    remove.click()
    expect(table.get_by_role("cell", name="w2", exact=True)).to_have_count(0)
    expect(table.get_by_role("cell", name="w1", exact=True)).to_be_visible()
    screenshot(page, "dashboard-remove-worker", "2-removed")
    names = [w["name"] for w in master.api("GET", "/api/v1/workers")["items"]]
    assert names == ["w1"]


# The contract's own example (docs/contracts/cluster-rest.md, last section): the route
# itself comes from the task service's side of the master.
TASKS = {"scheduler": "least-loaded", "queued": 12, "running": 3, "done": 140, "failed": 2,
         "throughput": 4.25,
         "workers": [{"name": "w1", "slots": 2, "running": 2, "done": 90, "failed": 1},
                     {"name": "w2", "slots": 1, "running": 1, "done": 50, "failed": 1}],
         "systems": [{"name": "mandelbrot", "queued": 12, "running": 3, "done": 140,
                      "failed": 2}]}


def test_the_tasks_panel_shows_the_task_service_or_says_there_is_none(
        shared_cluster: Cluster, page: Page) -> None:
    master, _ = shared_cluster
    with master.client() as client:
        served = client.get("/api/v1/tasks").status_code != 404
    _log_in(page, master)
    panel = page.get_by_role("region", name="Tasks")
    if not served:  # this master has no GET /api/v1/tasks
        expect(panel).to_contain_text("no task service")
        screenshot(page, "dashboard-tasks", "1-none")
    page.route("**/api/v1/tasks", lambda route: route.fulfill(
        status=200, content_type="application/json", body=json.dumps(TASKS)))
    page.reload()
    expect(panel).to_contain_text("Scheduler least-loaded: 12 queued, 3 running, 140 done, "
                                  "2 failed; 4.3 tasks/s over the last minute.")
    workers = panel.get_by_role("table", name="Task workers")
    expect(workers.get_by_role("row")).to_have_count(3)
    expect(workers).to_contain_text("w1")
    expect(panel.get_by_role("table", name="Task systems")).to_contain_text("mandelbrot")
    screenshot(page, "dashboard-tasks", "2-state")
