"""The dashboard end to end: headless Chromium on a real master with real workers.

Each step leaves a screenshot in test-artifacts/screenshots/.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from cluster_helpers import Master, Worker, wait_for
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


def _shot_name(request: pytest.FixtureRequest) -> str:
    return "dashboard-" + request.node.name.removeprefix("test_")


def _log_in(page: Page, master: Master, shot: str) -> None:
    page.goto(master.url)
    page.get_by_label("Token").fill(master.token)
    screenshot(page, shot, "1-login")
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("heading", name="Workers")).to_be_visible()


def _stop_running_pools(master: Master) -> None:
    """Kill what a failed test left running, so the shared workers end up idle."""
    running = master.api("GET", "/api/v1/pools", params={"state": "running"})["items"]
    for pool in running:
        master.api("POST", f"/api/v1/pools/{pool['id']}/kill", json={"signal": 9})
    wait_for(lambda: not master.api("GET", "/api/v1/pools",
                                    params={"state": "running"})["items"],
             what="the running pools ending")


def _job_row(page: Page, worker: str) -> object:
    jobs = page.get_by_role("table", name="Jobs")
    return jobs.get_by_role("row").filter(has=page.get_by_role("cell", name=worker, exact=True))


def test_a_wrong_token_shows_the_masters_refusal_and_keeps_the_login_form(
        shared_cluster: Cluster, page: Page, request: pytest.FixtureRequest) -> None:
    master, _ = shared_cluster
    page.goto(master.url)
    page.get_by_label("Token").fill("shoal_not-a-real-token")
    page.get_by_role("button", name="Log in").click()
    alert = page.get_by_role("alert")
    expect(alert).to_contain_text("The master refused the token")
    expect(alert).to_contain_text("shoal master token create")
    expect(page.get_by_role("heading", name="Workers")).to_be_hidden()
    expect(page.get_by_role("button", name="Log in")).to_be_visible()
    screenshot(page, _shot_name(request), "refused")


def test_a_user_logs_in_and_sees_the_workers_and_a_health_chart(
        shared_cluster: Cluster, page: Page, request: pytest.FixtureRequest) -> None:
    master, workers = shared_cluster
    shot = _shot_name(request)
    _log_in(page, master, shot)
    table = page.get_by_role("table", name="Workers")
    for worker in workers:
        row = table.get_by_role("row").filter(
            has=page.get_by_role("cell", name=worker.name, exact=True))
        expect(row).to_contain_text("online")
    expect(page.get_by_role("status")).to_have_text("Live")
    page.get_by_role("button", name="Show the health of w2").click()
    cpu = page.get_by_role("img", name=re.compile(r"^CPU of w2: \d+%$"))
    expect(cpu).to_be_visible()
    expect(page.get_by_role("img", name=re.compile(r"^Memory of w2: \d+%$"))).to_be_visible()
    expect(page.get_by_role("img", name=re.compile(r"^Load of w2: [\d.]+$"))).to_be_visible()
    expect(page.get_by_role("img", name=re.compile(r"^Temperature of w2: "))).to_be_visible()
    points = cpu.locator("polyline").get_attribute("points") or ""
    assert re.fullmatch(r"[\d.]+,[\d.]+( [\d.]+,[\d.]+)*", points), points
    screenshot(page, shot, "2-workers-and-health")

    page.reload()  # the token is kept for this tab: no second login
    expect(page.get_by_role("heading", name="Workers")).to_be_visible()
    expect(page.get_by_label("Token")).to_be_hidden()


def test_a_command_run_from_the_form_shows_its_output_while_it_runs(
        shared_cluster: Cluster, page: Page, request: pytest.FixtureRequest,
        tmp_path: Path) -> None:
    master, _ = shared_cluster
    shot = _shot_name(request)
    _log_in(page, master, shot)
    # The command waits for a file the test creates only after seeing the first
    # line, so the first line must have arrived while the job was still running.
    gate = tmp_path / "gate"
    page.get_by_role("textbox", name="Command").fill(
        f"sh -c 'echo first; while [ ! -e {gate} ]; do sleep 0.05; done; echo second'")
    page.get_by_role("checkbox", name="w1", exact=True).check()
    page.get_by_role("button", name="Run", exact=True).click()
    output = page.get_by_role("log", name="Output of w1")
    try:
        expect(output).to_have_text("first\n")
        expect(_job_row(page, "w1")).to_contain_text("running")
        screenshot(page, shot, "2-running")
    finally:
        gate.touch()
    expect(output).to_have_text("first\nsecond\n")
    expect(_job_row(page, "w1")).to_contain_text("exit code 0")
    pools = page.get_by_role("table", name="Pools")
    expect(pools.get_by_role("row").nth(1)).to_contain_text("1 exited")
    screenshot(page, shot, "3-done")


def test_killing_a_running_command_marks_it_killed_with_the_signal(
        shared_cluster: Cluster, page: Page, request: pytest.FixtureRequest) -> None:
    master, _ = shared_cluster
    shot = _shot_name(request)
    _log_in(page, master, shot)
    page.get_by_role("textbox", name="Command").fill("sleep 600")
    page.get_by_role("checkbox", name="w2", exact=True).check()
    page.get_by_role("button", name="Run", exact=True).click()
    row = _job_row(page, "w2")
    try:
        expect(row).to_contain_text("running")
        screenshot(page, shot, "2-running")

        row.get_by_role("button", name="Kill the job on w2").click()
        expect(row).to_contain_text("killed by SIGTERM (15)")
        expect(row.get_by_role("button")).to_have_count(0)
        pools = page.get_by_role("table", name="Pools")
        expect(pools.get_by_role("row").nth(1)).to_contain_text("1 killed")
        screenshot(page, shot, "3-killed")
    finally:
        _stop_running_pools(master)


def test_a_read_token_sees_no_run_form_and_no_kill_or_remove_buttons(
        shared_cluster: Cluster, page: Page, request: pytest.FixtureRequest) -> None:
    master, _ = shared_cluster
    shot = _shot_name(request)
    running = master.api("POST", "/api/v1/pools",
                         json={"command": ["sleep", "601"], "workers": ["w1"]})
    try:
        reader = master.new_token("read", "watcher")
        page.goto(master.url)
        page.get_by_label("Token").fill(reader)
        page.get_by_role("button", name="Log in").click()
        expect(page.get_by_role("table", name="Workers")).to_contain_text("w1")
        expect(page.get_by_text("This token (scope read) can watch but not run")).to_be_visible()
        expect(page.get_by_role("textbox", name="Command")).to_be_hidden()
        expect(page.get_by_role("button", name="Run", exact=True)).to_be_hidden()
        pools = page.get_by_role("table", name="Pools")
        row = pools.get_by_role("row").filter(has_text="sleep 601")
        expect(row).to_contain_text("running")
        expect(row.get_by_role("button", name=re.compile("^Kill"))).to_have_count(0)
        row.get_by_role("button", name=re.compile("^Open")).click()
        expect(_job_row(page, "w1")).to_contain_text("running")
        expect(page.get_by_role("button", name=re.compile("^Kill"))).to_have_count(0)
        expect(page.get_by_role("button", name=re.compile("^Remove"))).to_have_count(0)
        screenshot(page, shot, "read-only")
    finally:
        master.api("POST", f"/api/v1/pools/{running['id']}/kill", json={"signal": 9})
        _stop_running_pools(master)
