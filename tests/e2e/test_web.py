"""The browser page, driven in headless Chromium (Debian's /usr/bin/chromium through the Python
playwright package; no browser download) against the test stack: a volcal survey from key entry
to the rendered change map, a paused and resumed upload, and the task list.

``ORCHESTRATOR_SAVE_SCREENSHOT=1`` also copies the page of the finished survey to
docs/screenshots/web-done.png.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from playwright.sync_api import Browser, BrowserContext, Page, Request, sync_playwright

from pipelines.volcal_baseline.synthetic import generate
from tests.e2e.client import Client, random_file
from tests.e2e.test_flow import download_results, tus_upload
from tests.e2e.test_volcal import FILES, SURVEY

MiB = 1024 * 1024
ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
SCREENSHOT = ROOT / "docs" / "screenshots" / "web-done.png"


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not CHROMIUM.exists():
        pytest.fail("no /usr/bin/chromium: scripts/install.sh installs Debian's chromium")
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture
def context(browser: Browser) -> Iterator[BrowserContext]:
    ctx = browser.new_context(viewport={"width": 1280, "height": 900})
    yield ctx
    ctx.close()


@pytest.fixture
def page(context: BrowserContext, stack: Any) -> Page:
    """A page whose browser already holds the API key (as after a first visit)."""
    key = json.dumps(stack.api_key)
    context.add_init_script(f"localStorage.setItem('orchestrator.apiKey', {key})")
    pg = context.new_page()
    pg.set_default_timeout(30_000)
    return pg


@pytest.fixture(scope="module")
def survey(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("web-survey")
    generate(out, SURVEY)
    return out


def status_of(page: Page) -> str | None:
    return page.get_attribute("#task-status", "data-status")


def wait_status(page: Page, wanted: str, timeout_s: float) -> None:
    """Wait for the live status to reach ``wanted``; fail early on another terminal state."""
    deadline = time.monotonic() + timeout_s
    while True:
        status = page.locator("#task-status").get_attribute("data-status", timeout=60_000)
        if status == wanted:
            return
        if status in {"done", "error", "killed"} or time.monotonic() > deadline:
            body = page.locator("#task-view").inner_text()
            raise AssertionError(f"task status {status!r}, wanted {wanted!r}:\n{body}")
        page.wait_for_timeout(500)


def task_id_of(page: Page) -> str:
    return page.locator("#task-view h2 code").inner_text()


def test_volcal_survey_from_key_entry_to_the_change_map(
    context: BrowserContext, stack: Any, client: Client, survey: Path, tmp_path: Path
) -> None:
    page = context.new_page()
    page.goto(stack.api_url + "/")
    # First visit: the page asks for the key, and keeps it.
    page.locator("#key-dialog").wait_for(state="visible")
    page.fill("#key-input", stack.api_key)
    page.click("#key-save")
    page.locator("#key-dialog").wait_for(state="hidden")
    assert page.evaluate("localStorage.getItem('orchestrator.apiKey')") == stack.api_key
    # The header names the key's project (the bootstrap key's: "default", as an admin).
    page.wait_for_function("document.getElementById('change-key').dataset.project === 'default'")
    assert page.inner_text("#change-key").startswith("default (admin)")

    page.select_option("#pipeline", "volcal_baseline")
    slots = page.locator("[data-slot]")
    assert slots.count() == 6
    pre = page.locator('[data-slot="pre"]')
    assert "required" in pre.inner_text().lower()
    assert ".las, .laz" in pre.inner_text()
    assert "optional" in page.locator('[data-slot="prj"]').inner_text().lower()
    # Parameters come with their defaults and bounds.
    assert page.input_value("#param-max_change_m") == "50"
    assert page.get_attribute("#param-max_change_m", "max") == "1000"

    assert page.is_disabled("#submit")
    # A file the slot cannot take is refused on the spot, with the reason.
    wrong = tmp_path / "notes.txt"
    wrong.write_text("not a point cloud")
    page.set_input_files("#file-pre", str(wrong))
    assert page.inner_text("#msg-pre") == "notes.txt: expected .las or .laz"
    assert page.get_attribute('[data-slot="pre"]', "data-state") == "empty"
    for slot, name in FILES.items():
        page.set_input_files(f"#file-{slot}", str(survey / name))
    assert page.is_enabled("#submit")
    page.click("#submit")

    wait_status(page, "done", timeout_s=600)
    task_id = task_id_of(page)
    # Every slot went up through tus and is marked uploaded.
    for slot in FILES:
        assert page.get_attribute(f'[data-slot="{slot}"]', "data-state") == "done"
    # The change map is shown inline and has loaded from its presigned URL.
    page.wait_for_function(
        "() => { const i = document.querySelector('img[data-result=\"change_map.png\"]');"
        " return i && i.complete && i.naturalWidth > 0; }",
        timeout=30_000,
    )
    regions = page.locator('img[data-result^="region_"]')
    assert regions.count() >= 1
    # report.json's headline numbers, read by the page from the object store (CORS).
    page.wait_for_selector("#report-numbers[data-loaded='true']", timeout=30_000)
    report = requests.get(
        next(r["url"] for r in client.query(task_id)["results"] if r["name"] == "report.json"),
        timeout=30,
    ).json()
    cut = page.inner_text('#report-numbers [data-key="cut_volume_m3"]').replace(",", "")
    assert float(cut) == pytest.approx(report["cut_volume_m3"], abs=0.001)
    assert page.inner_text('#report-numbers [data-key="region_count"]') == str(
        report["region_count"]
    )
    # The GeoTIFF is image/tiff, which a browser cannot draw: a download, not a picture.
    assert page.locator('img[data-result="dod.tif"]').count() == 0
    assert page.locator('a[data-download="dod.tif"]').count() == 1
    final = client.query(task_id)
    links = page.locator("a[data-download]")
    assert sorted(links.evaluate_all("els => els.map(e => e.dataset.download)")) == sorted(
        r["name"] for r in final["results"]
    )
    page.locator("img[data-result]").last.scroll_into_view_if_needed()
    page.wait_for_function(
        "() => [...document.querySelectorAll('img[data-result]')]"
        ".every(i => i.complete && i.naturalWidth > 0)",
        timeout=30_000,
    )

    shot = tmp_path / "web-done.png"
    page.screenshot(path=str(shot), full_page=True)
    print(f"screenshot: {shot}")
    if os.environ.get("ORCHESTRATOR_SAVE_SCREENSHOT") == "1":
        SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(shot, SCREENSHOT)
        print(f"screenshot: {SCREENSHOT}")


def test_pause_and_resume_a_large_upload(
    context: BrowserContext, page: Page, client: Client, tmp_path: Path
) -> None:
    big, small = tmp_path / "big.bin", tmp_path / "small.txt"
    size = 40 * MiB
    digest = random_file(big, size, 11)
    small_digest = random_file(small, 1234, 12)

    # Throttle the browser's uploads so there is time to pause in the middle.
    cdp = context.new_cdp_session(page)
    cdp.send("Network.enable")

    def throttle(upload_bytes_per_s: float) -> None:
        cdp.send(
            "Network.emulateNetworkConditions",
            {
                "offline": False,
                "latency": 0,
                "downloadThroughput": -1,
                "uploadThroughput": upload_bytes_per_s,
            },
        )

    throttle(4 * MiB)
    patches: list[tuple[float, str | None]] = []

    def on_request(request: Request) -> None:
        if request.method == "PATCH":
            patches.append((time.monotonic(), request.headers.get("upload-offset")))

    page.on("request", on_request)
    page.goto(client.api_url + "/?pipeline=checksum")
    page.set_input_files("#file-first", str(big))
    page.set_input_files("#file-second", str(small))
    page.click("#submit")

    first = page.locator('[data-slot="first"]')
    page.wait_for_function(
        "() => Number(document.querySelector('[data-slot=\"first\"]').dataset.sent || 0)"
        f" >= {6 * MiB}",
        timeout=60_000,
    )
    page.click("#pause-first")
    assert first.get_attribute("data-state") == "paused"
    assert page.is_visible("#resume-first") and not page.is_visible("#pause-first")
    task_id = task_id_of(page)
    page.wait_for_timeout(500)  # the aborted request settles
    sent_at_pause = int(first.get_attribute("data-sent") or 0)
    numbers_at_pause = page.inner_text("#numbers-first")
    server_at_pause = client.query(task_id)["inputs"]["first"]["bytes_received"]
    page.wait_for_timeout(2500)
    # Nothing moves while paused: not the bar, not the server's offset.
    assert int(first.get_attribute("data-sent") or 0) == sent_at_pause
    assert page.inner_text("#numbers-first") == numbers_at_pause
    paused = client.query(task_id)
    assert paused["inputs"]["first"]["bytes_received"] == server_at_pause
    assert not paused["inputs"]["first"]["done"]
    assert paused["status"] == "waiting"
    assert 0 < sent_at_pause < size
    page.screenshot(path=str(tmp_path / "web-paused.png"), full_page=True)
    print(f"screenshot: {tmp_path / 'web-paused.png'}")

    # Resume (unthrottled): the next PATCH starts at the server's offset, not at zero.
    throttle(-1)
    resumed_at = time.monotonic()
    page.click("#resume-first")
    wait_status(page, "done", timeout_s=180)
    after = [int(off) for t, off in patches if t >= resumed_at and off is not None]
    assert after, "no PATCH after resume"
    assert after[0] > 0
    assert after[0] >= server_at_pause

    results = download_results(client.query(task_id))
    assert json.loads(results["checksums.json"]) == {
        "first": {"sha256": digest, "bytes": size},
        "second": {"sha256": small_digest, "bytes": 1234},
    }


def tusd_bytes_received(stack: Any) -> int:
    """tusd's counter of upload bytes received (its /metrics, beside /files/)."""
    base = stack.tus_url.split("/files")[0]
    text = requests.get(f"{base}/metrics", timeout=10).text
    line = next(x for x in text.splitlines() if x.startswith("tusd_bytes_received "))
    return int(float(line.split()[1]))


def test_an_upload_survives_a_reload(
    context: BrowserContext, page: Page, client: Client, stack: Any, tmp_path: Path
) -> None:
    """Reload mid-file: the page offers the task's unfinished upload, the same file chosen
    again goes on from the server's offset, and fewer bytes than the file are sent after."""
    big, small = tmp_path / "survey.bin", tmp_path / "notes.txt"
    size = 40 * MiB
    digest = random_file(big, size, 21)
    small_digest = random_file(small, 999, 22)
    cdp = context.new_cdp_session(page)
    cdp.send("Network.enable")
    conditions = {"offline": False, "latency": 0, "downloadThroughput": -1}
    cdp.send("Network.emulateNetworkConditions", {**conditions, "uploadThroughput": 4 * MiB})

    page.goto(client.api_url + "/?pipeline=checksum")
    page.set_input_files("#file-first", str(big))
    page.set_input_files("#file-second", str(small))
    page.click("#submit")
    task_id = task_id_of(page)
    # A first 8 MiB PATCH is complete on the server before the page goes away.
    deadline = time.monotonic() + 60
    while client.query(task_id)["inputs"]["first"]["bytes_received"] < 8 * MiB:
        assert time.monotonic() < deadline, "no chunk reached the server"
        time.sleep(0.2)
    page.reload()
    cdp.send("Network.emulateNetworkConditions", {**conditions, "uploadThroughput": -1})
    page.locator("#resume-banner").wait_for(state="visible")
    assert task_id in page.inner_text("#resume-banner")
    held = client.query(task_id)["inputs"]["first"]["bytes_received"]
    assert 0 < held < size

    offsets: list[int] = []  # Upload-Offset of each PATCH of the big file after the reload

    def on_request(request: Request) -> None:
        if request.method == "PATCH" and "first" in request.url:
            offsets.append(int(request.headers.get("upload-offset", "0")))

    page.on("request", on_request)
    # What the server receives after the reload, from tusd's own counter (the browser does not
    # report the sizes of blob bodies).
    received_before = tusd_bytes_received(stack)
    page.set_input_files("#file-first", str(big))
    if page.get_attribute('[data-slot="second"]', "data-state") != "done":
        page.set_input_files("#file-second", str(small))
    wait_status(page, "done", timeout_s=180)
    received = tusd_bytes_received(stack) - received_before
    assert offsets, "no PATCH after the reload"
    # It went on from the server's offset, not from zero (tusd may still have stored the tail
    # of the PATCH the reload cut, after `held` was read: at least that much, then).
    resumed_at = min(offsets)
    assert resumed_at >= held > 0
    assert size - resumed_at <= received <= size - resumed_at + 999 < size
    print(f"reload-resume: resumed at {resumed_at} bytes; {received} of {size} received after")
    results = download_results(client.query(task_id))
    assert json.loads(results["checksums.json"]) == {
        "first": {"sha256": digest, "bytes": size},
        "second": {"sha256": small_digest, "bytes": 999},
    }
    # Finished: nothing is offered on the next visit.
    page.goto(client.api_url + "/?pipeline=checksum")
    page.wait_for_selector("#file-first")
    assert not page.is_visible("#resume-banner")


def test_task_list_shows_the_finished_task_and_links_to_it(
    page: Page, client: Client, tmp_path: Path
) -> None:
    task = client.create("checksum")
    a, b = tmp_path / "a.bin", tmp_path / "b.bin"
    random_file(a, 1000, 21)
    random_file(b, 2000, 22)
    tus_upload(task["upload_urls"]["first"], a)
    tus_upload(task["upload_urls"]["second"], b)
    assert client.wait_terminal(task["task_id"])["status"] == "done"
    task_id = task["task_id"]

    page.goto(client.api_url + "/tasks.html")
    row = page.locator(f'tr[data-task="{task_id}"]')
    row.wait_for()
    assert "done" in row.inner_text() and "checksum" in row.inner_text()

    # The status filter: the task is not among the errors, and is among the done ones.
    page.select_option("#status", "error")
    page.locator(f'tr[data-task="{task_id}"]').wait_for(state="detached")
    page.select_option("#status", "done")
    page.select_option("#pipeline", "checksum")
    row.wait_for()
    assert all(
        s == "done"
        for s in page.locator("#rows [data-status]").evaluate_all(
            "els => els.map(e => e.dataset.status)"
        )
    )

    # Paging, one task a page: "Older" shows another task, "Newest" comes back to the first.
    page.goto(client.api_url + "/tasks.html?status=done&limit=1")
    page.locator("#rows tr[data-task]").wait_for()
    newest = page.get_attribute("#rows tr[data-task]", "data-task")
    assert page.locator("#rows tr[data-task]").count() == 1
    page.click("#next")
    page.wait_for_function(
        f"() => {{ const r = document.querySelector('#rows tr[data-task]');"
        f" return r && r.dataset.task !== {json.dumps(newest)}; }}"
    )
    page.click("#first")
    page.wait_for_function(
        f"() => document.querySelector('#rows tr[data-task]').dataset.task === {json.dumps(newest)}"
    )

    page.goto(client.api_url + "/tasks.html?status=done&pipeline=checksum")
    row.wait_for()
    page.screenshot(path=str(tmp_path / "web-tasks.png"), full_page=True)
    print(f"screenshot: {tmp_path / 'web-tasks.png'}")
    row.locator("a").click()
    page.wait_for_url(f"**/task.html?id={task_id}")
    wait_status(page, "done", timeout_s=30)
    assert page.locator('a[data-download="checksums.json"]').count() == 1


def test_a_task_page_shows_priority_and_deletes_the_task(
    page: Page, client: Client, tmp_path: Path
) -> None:
    r = client.post("/create_task", json={"pipeline": "checksum", "priority": "high"})
    assert r.status_code == 201, r.text
    task_id = r.json()["task_id"]

    page.goto(client.api_url + "/tasks.html?status=waiting")
    cell = page.locator(f'tr[data-task="{task_id}"] td[data-priority]')
    cell.wait_for()
    assert cell.inner_text() == "high"

    page.goto(client.api_url + f"/task.html?id={task_id}")
    wait_status(page, "waiting", timeout_s=30)
    assert page.inner_text("#task-priority") == "high"
    page.once("dialog", lambda dialog: dialog.accept())
    page.click("#delete-task")
    page.locator("#task-deleted").wait_for()
    assert "was deleted" in page.inner_text("#task-deleted")
    assert "deleted on request" in page.inner_text("#task-deleted")
    assert client.get(f"/query_task/{task_id}").status_code == 410


def test_an_upload_refused_by_the_server_shows_its_message(
    page: Page, client: Client, tmp_path: Path
) -> None:
    """A 4xx from the tus server (here 413 from the creation POST, as the pre-create hook
    answers for a too-large upload) is shown with the server's own words, not retried."""
    message = "upload of 1234 bytes exceeds the limit of slot 'first'"
    calls: list[str] = []
    cors = {
        "Access-Control-Allow-Origin": "*",
        "Access-Control-Allow-Methods": "POST, HEAD, PATCH, OPTIONS",
        "Access-Control-Allow-Headers": "*",
    }

    def refuse(route: Any) -> None:
        calls.append(route.request.method)
        if route.request.method == "OPTIONS":
            route.fulfill(status=204, headers=cors)
        else:
            route.fulfill(status=413, headers=cors, body=message)

    page.route("**/files/**", refuse)
    a, b = tmp_path / "a.bin", tmp_path / "b.bin"
    random_file(a, 1234, 31)
    random_file(b, 10, 32)
    page.goto(client.api_url + "/?pipeline=checksum")
    page.set_input_files("#file-first", str(a))
    page.set_input_files("#file-second", str(b))
    page.click("#submit")
    first = page.locator("#msg-first")
    first.wait_for()
    page.wait_for_function(
        "() => document.querySelector('[data-slot=\"first\"]').dataset.state === 'error'"
    )
    assert first.inner_text() == f"Upload refused (413): {message}"
    assert first.get_attribute("role") == "alert"
    assert calls.count("POST") == 2  # one per slot: a refusal is not retried
    wait_status(page, "waiting", timeout_s=10)
    page.unroute("**/files/**")
