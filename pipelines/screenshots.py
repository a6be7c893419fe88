"""The dashboard in headless Chromium: sign in with the cookie, open pages, keep PNG screenshots.

Shared by the demo (screenshots a newcomer can open) and the browser tests. Debian's
``chromium`` and ``chromedriver`` drive it through selenium; without them
:func:`browser_missing` says how to install them. The pages to take are found by following the
links of the ``/dashboard`` index for the wanted campaigns (and its links to pages of no campaign),
so a page added to the dashboard is taken without a change here.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

INSTALL = "apt-get update && apt-get install -y chromium chromium-driver"
PAGE_SECONDS = 60  # a page's charts are drawn well within this (the slowest test page takes a few s)
SKIPPED_PATHS = ("/dashboard/login", "/dashboard/logout")


def browser_missing() -> str | None:
    """Why no screenshot can be taken here (with the install command), or None."""
    if shutil.which("chromium") and shutil.which("chromedriver"):
        return None
    return f"no chromium/chromedriver on PATH, so no screenshots: {INSTALL}"


@contextmanager
def headless_chromium(width: int = 1400, height: int = 2200) -> Iterator:
    """A headless Chromium (selenium WebDriver) that keeps the console log; quit at the end."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    missing = browser_missing()
    if missing:
        raise RuntimeError(missing)
    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium")
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage"):
        options.add_argument(argument)
    options.add_argument(f"--window-size={width},{height}")
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    chrome = webdriver.Chrome(options=options, service=Service(executable_path=shutil.which("chromedriver")))
    chrome.set_page_load_timeout(PAGE_SECONDS)
    try:
        yield chrome
    finally:
        chrome.quit()


def sign_in(browser, base_url: str, key: str, then: str) -> None:
    """Sign in through the 401 page's form (which sets the HttpOnly cookie) and land on ``then``."""
    from selenium.common.exceptions import WebDriverException
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    browser.delete_all_cookies()
    browser.get(f"{base_url}{then}")  # the 401 page with the form, back to ``then``
    browser.get_log("browser")  # drained: the 401 of this page is expected
    browser.execute_script("window.beforeSignIn = true;")  # gone once the next page has replaced this one
    browser.find_element(By.ID, "key").send_keys(key)
    browser.find_element(By.CSS_SELECTOR, "form.login button").click()
    # the click returns before the next page has loaded; scripts may fail while it is replaced
    WebDriverWait(browser, 30, ignored_exceptions=(WebDriverException,)).until(
        lambda b: b.execute_script("return !window.beforeSignIn && document.readyState === 'complete'")
    )


def wait_drawn(browser, seconds: float = PAGE_SECONDS) -> str | None:
    """Until a page with scripts has drawn or failed (its script sets ``<body data-ready>`` to
    "true" or "error"); None at once for a page without scripts, which draws nothing."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    def settled(b) -> bool:
        ready = b.find_element(By.TAG_NAME, "body").get_attribute("data-ready")
        return ready is not None or not b.find_elements(By.TAG_NAME, "script")

    WebDriverWait(browser, seconds).until(settled)
    return browser.find_element(By.TAG_NAME, "body").get_attribute("data-ready")


def console_errors(browser) -> list[dict]:
    """SEVERE console entries, but for the browser's own request of /favicon.ico (the service has
    none; Chromium asks for it on some page loads and not others)."""
    return [
        e for e in browser.get_log("browser") if e["level"] == "SEVERE" and "/favicon.ico" not in e["message"]
    ]


def dashboard_links(browser, base_url: str, campaign_ids: Iterable[int]) -> list[str]:
    """Paths the index page links to: the rows of ``campaign_ids`` and the pages of no campaign."""
    from selenium.webdriver.common.by import By

    wanted = {str(c) for c in campaign_ids}
    paths: list[str] = []
    for anchor in browser.find_elements(By.CSS_SELECTOR, "a[href]"):
        href = urlsplit(anchor.get_attribute("href"))
        if f"{href.scheme}://{href.netloc}" != base_url or not href.path.startswith("/dashboard/"):
            continue
        if href.path.startswith(SKIPPED_PATHS):
            continue
        match = re.match(r"/dashboard/campaigns/(\d+)", href.path)
        if match and match.group(1) not in wanted:
            continue
        path = href.path + (f"?{href.query}" if href.query else "")
        if path not in paths:
            paths.append(path)
    return paths


@dataclass(frozen=True)
class Screenshot:
    path: str  # the page's path on the service
    png: Path
    drawn: str | None  # "true", "error" (the page's script failed) or None (nothing to draw)
    console_errors: list[str]  # the page's SEVERE console messages


def screenshot_dashboard(
    base_url: str, key: str, campaign_ids: Iterable[int], out_dir: Path, campaign_query: str = ""
) -> list[Screenshot]:
    """Sign in, screenshot ``/dashboard`` and every page it links to for ``campaign_ids``;
    ``campaign_query`` (e.g. ``since=...&until=...``) is added to campaign pages without one."""
    out_dir.mkdir(parents=True, exist_ok=True)
    shots = []
    with headless_chromium() as browser:
        sign_in(browser, base_url, key, "/dashboard")
        links = dashboard_links(browser, base_url, campaign_ids)
        if campaign_query:
            links = [f"{p}?{campaign_query}" if p.startswith("/dashboard/campaigns/") and "?" not in p else p
                     for p in links]  # fmt: skip
        pages = ["/dashboard", *links]
        for page in pages:
            if page != "/dashboard":
                browser.get(base_url + page)
            drawn = wait_drawn(browser)
            png = out_dir / f"{_file_name(page)}.png"
            browser.save_screenshot(str(png))
            shots.append(Screenshot(page, png, drawn, [e["message"] for e in console_errors(browser)]))
    return shots


def _file_name(page: str) -> str:
    """``/dashboard/campaigns/2/parameters`` -> ``campaigns-2-parameters``; the index is ``index``."""
    name = re.sub(r"[^A-Za-z0-9]+", "-", page.split("?")[0].removeprefix("/dashboard")).strip("-")
    return name or "index"
