"""The console in a real browser: Debian's chromium, headless, driven by Selenium through chromium-driver.

Skipped with the reason when chromium or its driver is not installed (``apt-get install -y chromium
chromium-driver``). With ``KNOWLEDGE_CONSOLE_SCREENSHOTS=docs/console`` the screenshot test writes
the screenshots docs/console.md shows there (otherwise into the test's temporary directory).
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import uvicorn

from tests.console.conftest import CHROMEDRIVER, CHROMIUM, PASSWORDS, TENANT
from tests.facts.servers import free_port, wait_for_port
from tests.facts.support import NAMESPACE

pytestmark = pytest.mark.skipif(
    not (Path(CHROMIUM).exists() and Path(CHROMEDRIVER).exists()),
    reason="real-browser tests need Debian's chromium and chromium-driver "
           "(apt-get install -y chromium chromium-driver)")


@contextlib.contextmanager
def serve(app) -> Iterator[str]:
    """``app`` served by uvicorn on a loopback port, in this process (same registry and store)."""
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    wait_for_port(port)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)


@pytest.fixture
def live(app) -> Iterator[str]:
    """The console of the ``app`` fixture, served."""
    with serve(app) as url:
        yield url


def sign_in(driver, live: str, name: str) -> None:
    from selenium.webdriver.common.by import By

    driver.get(f"{live}/queue")  # anonymous: sent to the sign-in form
    assert driver.current_url == f"{live}/login"
    driver.find_element(By.ID, "username").send_keys(name)
    driver.find_element(By.ID, "password").send_keys(PASSWORDS[name])
    driver.find_element(By.ID, "sign-in").click()
    assert name in driver.find_element(By.ID, "whoami").text


def test_reviewer_resolves_a_conflict_side_by_side_and_sees_the_audit_entry(driver, live, seeded):
    from selenium.webdriver.common.by import By

    sign_in(driver, live, "rita")
    driver.find_element(By.LINK_TEXT, "Conflicts").click()
    driver.find_element(By.CSS_SELECTOR, "a.open-conflict").click()
    sides = driver.find_elements(By.CSS_SELECTOR, "section.side")
    assert len(sides) == 2
    kept = sides[0].find_element(By.NAME, "fact").get_attribute("value")
    sides[0].find_element(By.CSS_SELECTOR, "button.keep").click()
    assert "Resolved by account:rita" in driver.find_element(By.ID, "resolution").text
    actors = [e.text for e in driver.find_elements(By.CSS_SELECTOR, "tr.audit-entry td.actor")]
    assert "account:rita" in actors
    assert seeded.store.get_facts(TENANT, [kept])[0].status == "approved"


def test_queue_next_page_by_htmx_then_keyboard_bulk_approve(driver, live, seeded):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    sign_in(driver, live, "rita")
    url = f"{live}/queue?status=proposed&sort=subject&limit=1"
    driver.get(url)
    assert len(driver.find_elements(By.CSS_SELECTOR, "tr.fact-row")) == 1
    driver.find_element(By.ID, "more").click()  # htmx swaps the next rows in: no page load
    WebDriverWait(driver, 5).until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "tr.fact-row")) == 2)
    assert driver.current_url == url
    body = driver.find_element(By.TAG_NAME, "body")
    body.send_keys("j")  # first row: subject "note" (xss fact), then "retour"
    body.send_keys("j")
    body.send_keys("x")
    body.send_keys("a")
    assert "approved 1" in driver.find_element(By.CSS_SELECTOR, ".flash").text
    approved = seeded.store.list_facts(TENANT, statuses=["approved"])
    assert [f.id for f in approved] == [seeded.ids["retour"]] and approved[0].approved_by == "account:rita"


def test_admin_rolls_back_a_namespace(driver, live, seeded):
    from selenium.webdriver.common.by import By

    sign_in(driver, live, "adam")
    driver.find_element(By.LINK_TEXT, "Admin").click()
    row = driver.find_element(By.CSS_SELECTOR, f'tr[data-namespace="{NAMESPACE}"]')
    assert row.find_element(By.CSS_SELECTOR, "td.latest").text == "v2024-03-01"
    row.find_element(By.CSS_SELECTOR, "button.rollback-button").click()
    assert "rolled back" in driver.find_element(By.CSS_SELECTOR, ".flash").text
    row = driver.find_element(By.CSS_SELECTOR, f'tr[data-namespace="{NAMESPACE}"]')
    assert row.find_element(By.CSS_SELECTOR, "td.latest").text == "v2024-02-01"


def test_a_viewer_is_denied_actions(driver, live, seeded):
    from selenium.webdriver.common.by import By

    sign_in(driver, live, "vera")
    assert 'id="bulk-approve"' not in driver.page_source  # no decision controls for a viewer
    driver.get(f"{live}/admin")
    assert "this needs the admin role" in driver.find_element(By.ID, "error-message").text
    # a viewer replaying a reviewer's form is refused by the server, not only hidden
    driver.get(f"{live}/facts/{seeded.ids['retour']}")
    driver.execute_script("""
        const f = document.createElement('form'); f.method = 'post'; f.action = arguments[0];
        const token = document.querySelector('[name=csrf_token]').value;
        for (const [k, v] of [['action', 'approve'], ['csrf_token', token]]) {
          const i = document.createElement('input'); i.name = k; i.value = v; f.appendChild(i); }
        document.body.appendChild(f); f.submit();""", f"/facts/{seeded.ids['retour']}/decide")
    assert "this needs the reviewer role" in driver.find_element(By.ID, "error-message").text
    assert seeded.store.get_facts(TENANT, [seeded.ids["retour"]])[0].status == "proposed"


def test_screenshots_of_the_main_pages(driver, live, seeded, tmp_path):
    target = Path(os.environ.get("KNOWLEDGE_CONSOLE_SCREENSHOTS") or tmp_path)
    target.mkdir(parents=True, exist_ok=True)
    sign_in(driver, live, "adam")
    conflict = next(r for r in seeded.store.list_relations(TENANT) if r.kind == "CONTRADICTS")
    pages = {"queue": "/queue", "conflict": f"/conflicts/{conflict.id}", "fact": f"/facts/{seeded.ids['a']}",
             "admin": "/admin", "insight": "/insight?days=2",
             "timeline": "/timeline?subject=service&predicate=SLA&on=2024-03-15"}
    for name, url in pages.items():
        driver.get(live + url)
        path = target / f"{name}.png"
        assert driver.save_screenshot(str(path))
        assert path.stat().st_size > 10_000, name
