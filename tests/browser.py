"""A real browser for the tests of pages (the chat widget; the supervisors' wallboard): Debian's
chromium, headless, driven by Selenium through Debian's chromedriver, both at their explicit
paths. Selenium's own download of a driver cannot work here (nothing is fetched at run time),
and a browser comes only from the system's packages: .ci/run installs them where it can.

On a machine without them a browser test is skipped, saying how to install them. Selenium's
calls block: a test runs them in a thread (`asyncio.to_thread`, or `Page`'s methods) while the
app serves in the test's loop.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import TypeVar

import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support.wait import WebDriverWait

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
INSTALL = "apt-get install -y chromium chromium-driver"
WAIT_SECONDS = 10.0

T = TypeVar("T")
_skipped: list[str] = []  # why browser tests were skipped in this run, said at its end


def missing_browser() -> str | None:
    """Why no browser test can run here, if it cannot."""
    missing = [str(path) for path in (CHROMIUM, CHROMEDRIVER) if not path.exists()]
    if missing:
        return f"no browser for the page tests ({', '.join(missing)} missing): as root, {INSTALL}"
    return None


def headless_chromium() -> WebDriver:
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for argument in (
        "--headless=new",
        "--no-sandbox",  # as root, in a container: chromium's sandbox needs what neither has
        "--disable-dev-shm-usage",  # a container's /dev/shm is small
        "--disable-gpu",
        "--window-size=1024,768",
    ):
        options.add_argument(argument)
    return webdriver.Chrome(service=Service(executable_path=str(CHROMEDRIVER)), options=options)


@pytest.fixture
async def browser() -> AsyncIterator[WebDriver]:
    """A fresh headless chromium for the test (its own profile: no storage from another),
    closed after it; skipped, saying how to install one, where there is none."""
    why = missing_browser()
    if why is not None:
        _skipped.append(why)
        pytest.skip(why)
    driver = await asyncio.to_thread(headless_chromium)
    try:
        yield driver
    finally:
        await asyncio.to_thread(driver.quit)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """A skipped browser test is said at the end of every run, with how to install the browser:
    pytest's own summary names skips only when asked (-rs), and this one must not pass unseen.
    (A hook: this module is a plugin of tests/conftest.py.)"""
    if _skipped:
        terminalreporter.write_sep("-", f"{len(_skipped)} browser test(s) skipped")
        terminalreporter.write_line(_skipped[0])


class Page:
    """A page in the browser, read as a person sees it: every call runs in a thread, and each
    `until_*` waits for a state (polled by WebDriverWait), never for a fixed time."""

    def __init__(self, driver: WebDriver) -> None:
        self.driver = driver

    async def open(self, url: str) -> None:
        await asyncio.to_thread(self.driver.get, url)

    async def until(self, state: Callable[[WebDriver], T | None], what: str) -> T:
        """`state`'s value once it is truthy; fails saying `what` was awaited."""

        def wait() -> T:
            found = WebDriverWait(self.driver, WAIT_SECONDS).until(state, f"never: {what}")
            assert found is not None  # `until` returns only a truthy value
            return found

        return await asyncio.to_thread(wait)

    async def until_shown(self, selector: str, text: str) -> WebElement:
        """The element, once it is displayed with `text` (its visible text) in it."""

        def shown(driver: WebDriver) -> WebElement | None:
            for element in driver.find_elements(By.CSS_SELECTOR, selector):
                if element.is_displayed() and text in element.text:
                    return element
            return None

        return await self.until(shown, f"{selector} shows {text!r}")

    async def shown(self, selector: str) -> bool:
        """Whether an element matching `selector` is displayed now."""

        def look() -> bool:
            return any(
                e.is_displayed() for e in self.driver.find_elements(By.CSS_SELECTOR, selector)
            )

        return await asyncio.to_thread(look)

    async def texts(self, selector: str) -> list[str]:
        """The visible text of each element matching `selector`, in the page's order."""

        def read() -> list[str]:
            return [e.text for e in self.driver.find_elements(By.CSS_SELECTOR, selector)]

        return await asyncio.to_thread(read)

    async def count(self, selector: str) -> int:
        return len(await asyncio.to_thread(self.driver.find_elements, By.CSS_SELECTOR, selector))

    async def type_into(self, selector: str, text: str) -> None:
        element = await asyncio.to_thread(self.driver.find_element, By.CSS_SELECTOR, selector)
        await asyncio.to_thread(element.send_keys, text)

    async def click(self, selector: str) -> None:
        element = await asyncio.to_thread(self.driver.find_element, By.CSS_SELECTOR, selector)
        await asyncio.to_thread(element.click)
