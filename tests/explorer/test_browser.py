"""The explorer in a real headless browser (Debian's chromium + chromedriver through
selenium), served by `foryou ui` as a child process, as `foryou up --ui` starts it."""
from __future__ import annotations

import asyncio
import shutil
from collections import defaultdict

import pytest

from explorer import views
from explorer.launch import start_ui

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")
pytestmark = pytest.mark.skipif(not (CHROMIUM and CHROMEDRIVER),
                                reason="needs Debian's chromium and chromium-driver (.ci/run installs them)")


@pytest.fixture(scope="module")
async def ui_url(seeded):
    process, url = await start_ui(seeded.stack, extra_args=["--world-file", str(seeded.world_file),
                                                            "--feed-timeout", "60", "--timeout", "20"])
    try:
        yield url
    finally:
        await asyncio.to_thread(process.stop)


@pytest.fixture(scope="module")
def browser():
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--window-size=1280,900", "--disable-extensions"):
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(120)
    try:
        yield driver
    finally:
        driver.quit()


def _wait(driver, condition, what: str, timeout_s: float = 90):
    from selenium.webdriver.support.ui import WebDriverWait
    return WebDriverWait(driver, timeout_s, poll_frequency=0.2).until(lambda d: condition(d), message=what)


async def test_feed_tune_and_pipeline_pages_in_a_browser(seeded, ui_url, browser, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    # the feed of a seeded user, picked by handle in the search box
    await asyncio.to_thread(browser.get, ui_url)
    search = browser.find_element(By.CSS_SELECTOR, "form.pick input[name=q]")
    search.send_keys(seeded.world.user(seeded.viewer).handle, Keys.ENTER)
    _wait(browser, lambda d: d.current_url.endswith(f"/feed/{seeded.viewer}"), "the feed page")
    cards = browser.find_elements(By.CSS_SELECTOR, "#cards article.card")
    assert len(cards) == 35
    for card in cards:
        bars = card.find_elements(By.CSS_SELECTOR, ".bars .bar")
        assert len(bars) == 5 and all(bar.size["width"] > 0 for bar in bars)
        assert card.find_element(By.CSS_SELECTOR, ".net").text in ("in-network", "out-network")
    out_of_network = {c.get_attribute("data-post-id") for c in cards if c.get_attribute("data-network") == "out"}
    assert out_of_network, "the seeded user's feed should hold out-of-network posts"
    browser.save_screenshot(str(tmp_path / "feed.png"))

    # tuning: the out-of-network slider to 0 (Home key on the focused slider, as a user would)
    browser.find_element(By.ID, "tab-tune").click()
    slider = _wait(browser, lambda d: d.find_elements(By.ID, "s-oon_factor"), "the tuning form")[0]
    slider.send_keys(Keys.HOME)
    _wait(browser, lambda d: "oon_factor=0" in d.current_url and d.find_elements(By.ID, "left"),
          "the re-requested feed")
    tuned = browser.find_elements(By.CSS_SELECTOR, "#cards article.card")
    assert len(tuned) == 35
    assert all(c.get_attribute("data-network") == "in" for c in tuned)
    left = {li.get_attribute("data-post-id") for li in browser.find_elements(By.CSS_SELECTOR, "#left li")}
    assert left == out_of_network  # every out-of-network post left, nothing else did
    assert browser.find_element(By.ID, "f-oon_factor").get_attribute("value") == "0"
    browser.save_screenshot(str(tmp_path / "tune.png"))

    # the pipeline: removed candidates grouped by the filter that removed them
    browser.find_element(By.ID, "tab-pipeline").click()
    _wait(browser, lambda d: d.find_elements(By.ID, "timings"), "the pipeline page")
    groups = defaultdict(set)
    for section in browser.find_elements(By.CSS_SELECTOR, "section.filter-group"):
        items = section.find_elements(By.CSS_SELECTOR, "li.removed")
        assert items and all(item.text.strip() for item in items)
        groups[section.get_attribute("data-filter")] |= {item.get_attribute("data-post-id") for item in items}
    assert groups
    from foryou_protos import home_mixer_pb2_grpc
    import grpc
    async with grpc.aio.insecure_channel(seeded.stack.address("home-mixer")) as channel:
        expected = await home_mixer_pb2_grpc.ScoredPostsServiceStub(channel).GetScoredPosts(
            views.build_query(seeded.viewer, debug=True), timeout=60)
    by_filter = defaultdict(set)
    for r in expected.debug.removed:
        by_filter[r.removed_by].add(str(r.post_id))
    assert groups == by_filter
    assert browser.find_elements(By.CSS_SELECTOR, "#timings .timing.stage .bar")
    browser.save_screenshot(str(tmp_path / "pipeline.png"))
    assert (tmp_path / "feed.png").stat().st_size > 10_000
