"""Reading the wallboard in a browser (tests/browser.py's `Page`) the way it redraws: a tile is
replaced whole by a newer one when its queue's frame comes, so an element found a moment ago
may be gone (stale) by the time it is read. Each look here is one script in the page, which
reads a whole state at once, between two of the page's redraws."""

from __future__ import annotations

import asyncio
from typing import Any

from selenium.webdriver.remote.webdriver import WebDriver

from tests.browser import Page

NO_FIGURE = "\u2013"  # what a tile shows for a figure there is none of (an en dash)

# Every tile as the supervisor reads it, by queue name.
READ_TILES = """
const tiles = {};
for (const tile of document.querySelectorAll(".wb-queue")) {
  const text = (selector) => tile.querySelector(selector).textContent;
  tiles[text(".wb-name")] = {
    waiting: text(".wb-waiting-total"),
    channels: [...tile.querySelectorAll(".wb-channels li")].map((li) => li.textContent),
    longest: text(".wb-longest-wait"),
    today: tile.querySelector(".wb-sl-today").dataset.level,
    agents: [...tile.querySelectorAll(".wb-agents li")].map((li) => li.textContent),
    chart: tile.querySelectorAll(".wb-chart").length,
  };
}
return tiles;
"""
SHOWS = """
const [selector, text] = arguments;
return [...document.querySelectorAll(selector)]
  .some((node) => node.checkVisibility() && node.textContent.includes(text));
"""


async def run(page: Page, script: str, *arguments: Any) -> Any:
    """What `script` returns, run in the page (WebDriver's scripts are not the page's own: its
    policy, which allows no inline script, does not apply to them)."""
    return await asyncio.to_thread(page.driver.execute_script, script, *arguments)


async def until_text(page: Page, selector: str, text: str) -> None:
    """Until an element matching `selector` is displayed with `text` in it."""

    def shows(driver: WebDriver) -> bool:
        return bool(driver.execute_script(SHOWS, selector, text))

    await page.until(shows, f"{selector} shows {text!r}")


async def tiles(page: Page) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = await run(page, READ_TILES)
    return found


async def until_tile(page: Page, queue: str, **says: Any) -> dict[str, Any]:
    """The queue's tile once it shows what `says` (its fields as READ_TILES reads them)."""

    def shows(driver: WebDriver) -> dict[str, Any] | None:
        tile = driver.execute_script(READ_TILES).get(queue)
        if tile is not None and all(tile[name] == value for name, value in says.items()):
            return dict(tile)
        return None

    return await page.until(shows, f"the tile of {queue} shows {says}")
