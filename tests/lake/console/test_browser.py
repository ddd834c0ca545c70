"""The console in a real browser: Debian's Chromium driven by Playwright (one browser for the module).

Search as you type and open a dataset, walk the lineage graph by clicking, open a drift report,
masking for a reader without unmask, sign in with a token; axe-core finds no serious or critical
accessibility violation. Screenshots of every page go to ``test-artifacts/console/``.
"""

from __future__ import annotations

import shutil
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import Browser, BrowserContext, Page, expect, sync_playwright

from lake.console.serve import server
from lake.lakehouse import Lake
from tests.lake.console.conftest import TokenAccess

CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = Path(__file__).resolve().parents[3] / "test-artifacts" / "console"
ADMIN, READER = "tok-admin-123", "tok-reader-456"
TIMEOUT_MS = 15_000


@pytest.fixture(scope="module")
def base_url(console_lake: Lake) -> Iterator[str]:
    """The console behind the test access policy, served by uvicorn in a thread."""
    srv, sock, url = server(console_lake, port=0, access=TokenAccess(console_lake))
    thread = threading.Thread(target=srv.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not srv.started:
        if time.monotonic() > deadline:
            pytest.fail("the console server did not start within 30 s")
        time.sleep(0.02)
    yield url.rstrip("/")
    srv.should_exit = True
    thread.join(15)
    sock.close()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if shutil.which("chromium") is None and not Path(CHROMIUM).exists():
        pytest.fail("Debian's chromium is needed for the console's browser tests: apt-get install -y chromium",
                    pytrace=False)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"], timeout=60_000)
        yield b
        b.close()


def signed_in(browser: Browser, base_url: str, token: str) -> tuple[BrowserContext, Page]:
    ctx = browser.new_context(viewport={"width": 1280, "height": 900})
    ctx.set_default_timeout(TIMEOUT_MS)
    page = ctx.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(base_url + "/signin?next=/")
    page.fill("#token", token)
    page.click("form.signin button[type=submit]")
    page.wait_for_url(base_url + "/")
    page.errors = errors  # type: ignore[attr-defined]
    return ctx, page


def shot(page: Page, name: str) -> None:
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def serious(page: Page) -> list[dict[str, Any]]:
    found = Axe().run(page).response["violations"]
    return [{"id": v["id"], "impact": v["impact"], "nodes": [n["target"] for n in v["nodes"][:3]]}
            for v in found if v["impact"] in ("serious", "critical")]


def test_search_as_you_type_and_open_a_dataset(browser: Browser, base_url: str) -> None:
    ctx, page = signed_in(browser, base_url, ADMIN)
    try:
        page.fill("#q", "ordrs")  # a typo: the results still come, as you type
        expect(page.locator("#results a.hit", has_text="silver.orders")).to_be_visible()
        assert page.locator("#results a.hit").count() >= 3
        page.select_option("select[data-facet=layer]", "silver")
        expect(page.locator("#results a.hit")).to_have_count(1)
        shot(page, "search")
        assert serious(page) == []
        page.press("#q", "ArrowDown")  # keyboard: into the results, then open the focused one
        expect(page.locator("#results a.hit").first).to_be_focused()
        page.keyboard.press("Enter")
        page.wait_for_url("**/datasets/silver.orders")
        expect(page.locator("h1")).to_contain_text("silver.orders")
        page.click("#load-sample")
        expect(page.locator("#sample table")).to_contain_text("a@x.io")
        page.click("#diff-form button")
        expect(page.locator("#diff")).to_contain_text("+ country")
        shot(page, "dataset")
        assert serious(page) == []
        page.click("#schema-h ~ details.edit summary")  # edit a column's description (admin may write)
        page.get_by_label("Description of amount", exact=True).fill("Paid, tax included")
        assert serious(page) == []  # the open form too
        page.click("#columns-form button[type=submit]")
        expect(page.locator("#schema tr", has_text="amount")).to_contain_text("Paid, tax included")  # reloaded
        assert page.errors == []  # type: ignore[attr-defined]
    finally:
        ctx.close()


def test_walk_the_lineage_graph_by_clicking(browser: Browser, base_url: str) -> None:
    ctx, page = signed_in(browser, base_url, ADMIN)
    try:
        page.goto(base_url + "/lineage/silver.orders")
        graph = page.locator("#graph[data-nodes]")
        expect(graph).to_have_attribute("data-nodes", "4")
        expect(page.locator("g.node[data-id='bronze.orders']")).to_be_visible()
        shot(page, "lineage")
        assert serious(page) == []
        page.click("g.node[data-id='gold.order_totals'] rect")  # walk downstream
        expect(page.locator("#lineage-root-link")).to_have_text("gold.order_totals")
        assert page.url.startswith(base_url + "/lineage/gold.order_totals")
        expect(page.locator("g.node.root[data-id='gold.order_totals']")).to_be_visible()
        expect(graph).to_have_attribute("data-nodes", "3")  # bronze -> silver -> gold
        page.click("g.toggle[data-toggle='silver.orders']")  # collapse what lies beyond silver
        expect(page.locator("g.node[data-id='bronze.orders']")).to_have_count(0)
        page.click("g.toggle[data-toggle='silver.orders']")  # and expand it again
        expect(page.locator("g.node[data-id='bronze.orders']")).to_be_visible()
        expect(page.locator("#version option[value='0']")).to_have_count(1)  # gold's own versions now
        page.select_option("#version", "0")  # which input versions built gold.order_totals v0
        page.click("#lineage-form button[type=submit]")
        expect(page.locator("g.node[data-id='silver.orders@0']")).to_be_visible()
        expect(page.locator("g.node.root[data-id='gold.order_totals@0']")).to_be_visible()
        shot(page, "lineage-version")
        page.go_back()  # to gold.order_totals, all versions
        expect(page.locator("g.node.root[data-id='gold.order_totals']")).to_be_visible()
        page.go_back()
        expect(page.locator("#lineage-root-link")).to_have_text("silver.orders")
        expect(page.locator("#version")).to_have_value("")  # the form follows the address back
        expect(graph).to_have_attribute("data-nodes", "4")
        shot(page, "lineage-walked")
        assert page.errors == []  # type: ignore[attr-defined]
    finally:
        ctx.close()


def test_open_a_drift_report(browser: Browser, base_url: str) -> None:
    ctx, page = signed_in(browser, base_url, ADMIN)
    try:
        page.goto(base_url + "/monitoring")
        page.locator("#reports tr", has_text="gold.scores").first.locator("a").first.click()
        page.wait_for_url("**/monitoring/reports/**")
        expect(page.locator("#report-status")).to_have_text("drift")
        score = page.locator("section.feature[data-feature='score']")
        assert score.locator("rect.bar.ref").count() > 5 and score.locator("rect.bar.cur").count() > 5
        shot(page, "drift-report")
        assert serious(page) == []
        score.get_by_role("link", name="Drift of score over time").click()
        expect(page.locator("#points tbody tr")).to_have_count(2)
        shot(page, "drift-over-time")
    finally:
        ctx.close()


def test_a_reader_without_unmask_sees_masked_rows(browser: Browser, base_url: str) -> None:
    ctx, page = signed_in(browser, base_url, READER)
    try:
        page.goto(base_url + "/datasets/silver.orders")
        assert page.locator("#annotate-form").count() == 0  # no write: nothing to edit
        page.click("#load-sample")
        table = page.locator("#sample table")
        expect(table).to_be_visible()
        assert "@x.io" not in table.inner_text()
        assert table.locator("td.masked").count() == 4  # the email of each of the 4 rows
        shot(page, "masked-sample")
    finally:
        ctx.close()


def test_sign_in_with_a_token(browser: Browser, base_url: str) -> None:
    ctx = browser.new_context()
    ctx.set_default_timeout(TIMEOUT_MS)
    try:
        page = ctx.new_page()
        page.goto(base_url + "/datasets/gold.order_totals")
        page.wait_for_url("**/signin?next=/datasets/gold.order_totals")
        page.fill("#token", "not-a-token")
        page.click("form.signin button[type=submit]")
        expect(page.locator("#signin-error")).to_contain_text("not valid")
        shot(page, "signin-refused")
        assert serious(page) == []
        page.fill("#token", READER)
        page.click("form.signin button[type=submit]")
        page.wait_for_url("**/datasets/gold.order_totals")
        expect(page.locator("[data-principal]")).to_have_text("reader")
        cookie = next(c for c in ctx.cookies() if c["name"] == "lake_token")
        assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"
        assert "lake_token" not in page.evaluate("document.cookie")  # scripts cannot read it
        page.click("form[action='/signout'] button")
        page.wait_for_url("**/signin")
        assert not [c for c in ctx.cookies() if c["name"] == "lake_token"]
    finally:
        ctx.close()
