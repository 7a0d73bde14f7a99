"""The web console in headless Chromium against real hooks on loopback, one of whose groups runs
a real service: log in, the overview, a killed service seen failing then moved, a migrate from
the group page, a freeze that makes an automatic move skip, the timeline of a move.

One browser for the module; what the page shows is checked against the hooks' own API and the
service's pid file; at the end, that Chromium requested nothing but the hooks' pages.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver

from tests.support.console import (
    attribute_of,
    chromium,
    log_in,
    requested_urls,
    steady,
    stop_web,
    text_of,
    wait,
    web_group,
)
from tests.support.hooks import HookPair, alert, payload

pytestmark = pytest.mark.skipif(
    not Path("/usr/bin/chromedriver").exists(), reason="chromium-driver is not installed"
)


@pytest.fixture(scope="module")
def web(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The folder of the web service: its page and pid file."""
    return tmp_path_factory.mktemp("web")


@pytest.fixture(scope="module")
def pair(make_pair: Callable[..., HookPair], web: Path) -> Iterator[HookPair]:
    """node1 holds web (a real service) and g1, node2 holds g2; the service is ended after."""
    groups = {
        "web": web_group(web),
        "g1": {"nodes": ["node1", "node2"]},
        "g2": {"nodes": ["node2", "node1"]},
    }
    made = make_pair(groups=groups, hook={"settle": 0, "cooldown": 0})
    try:
        for node, group in (("node1", "web"), ("node1", "g1"), ("node2", "g2")):
            assert made.post(node, f"/api/v1/groups/{group}/acquire").json()["status"] == "done"
        yield made
    finally:
        stop_web(web)


@pytest.fixture(scope="module")
def browser(pair: HookPair) -> Iterator[WebDriver]:
    with chromium() as driver:
        log_in(driver, pair.url("node1", ""), pair.token)
        yield driver
        hooks = tuple(pair.url(n, "/") for n in pair.addresses)
        strays = [u for u in requested_urls(driver) if not u.startswith(hooks)]
        assert strays == [], "Chromium requested pages other than the hooks'"


def outcome(driver: WebDriver) -> str:
    """The outcome an action's page shows, once it is there."""
    found = wait(driver, lambda d: d.find_elements(By.CSS_SELECTOR, "tr.outcome .message"))
    return str(found[0].text)


def active_on(driver: WebDriver, group: str) -> str:
    return attribute_of(driver, f"#group-{group}", "data-active")


def alert_every_hook(pair: HookPair, group: str, node: str) -> None:
    """What Alertmanager does: the same notification to every node's hook."""
    body = payload(alert(group=group, node=node))
    for hook in pair.addresses:
        pair.send(hook, body).raise_for_status()


def test_the_overview_shows_every_group_on_its_node(pair: HookPair, browser: WebDriver) -> None:
    browser.get(pair.url("node1", "/ui/"))
    for group, node in (("web", "node1"), ("g1", "node1"), ("g2", "node2")):
        assert active_on(browser, group) == node
        assert pair.held(node, group)
        assert attribute_of(browser, f"#group-{group} td.cell.active", "data-node") == node
    for node in pair.addresses:
        assert text_of(browser, f"#node-{node} td.answer") == "answers"


def test_a_killed_service_is_shown_failing_then_moved(
    pair: HookPair, browser: WebDriver, web: Path
) -> None:
    browser.get(pair.url("node1", "/ui/"))
    browser.execute_script("window.notReloaded = true")
    os.kill(int((web / "web.pid").read_text()), signal.SIGKILL)

    def failing(d: WebDriver) -> bool:
        row = d.find_element(By.ID, "group-web")
        return row.get_attribute("data-healthy") == "no" and "web" in row.text

    wait(browser, failing)
    row = text_of(browser, "#group-web")
    assert "FAILED" in row
    alert_every_hook(pair, "web", "node1")
    wait(browser, lambda d: active_on(d, "web") == "node2")
    wait(
        browser, lambda d: d.find_element(By.ID, "group-web").get_attribute("data-healthy") == "yes"
    )
    assert browser.execute_script("return window.notReloaded") is True  # refreshed in place
    assert pair.held("node2", "web")
    assert "moved web node1 -> node2" in text_of(browser, "#group-web")


def test_migrate_from_the_group_page_after_its_dry_run(pair: HookPair, browser: WebDriver) -> None:
    browser.get(pair.url("node1", "/ui/groups/g1"))
    browser.find_element(By.ID, "migrate-node2").click()
    preview = wait(browser, lambda d: d.find_elements(By.ID, "preview-outcome"))[0].text
    assert "dry run: would move g1 node1 -> node2" in preview
    assert "acquire" in browser.find_element(By.ID, "plan").text
    assert pair.held("node1", "g1")  # the preview moved nothing
    browser.find_element(By.ID, "confirm").click()
    assert "moved g1 node1 -> node2" in outcome(browser)
    assert pair.held("node2", "g1")
    assert not pair.held("node1", "g1")
    browser.find_element(By.ID, "back").click()
    wait(browser, lambda d: d.find_element(By.ID, "active-node").text == "node2")
    assert pair.moves("node2", "g1")[0]["trigger"] == "manual by token"


def test_frozen_an_automatic_move_is_skipped_with_its_reason(
    pair: HookPair, browser: WebDriver
) -> None:
    browser.get(pair.url("node1", "/ui/groups/g2"))
    browser.find_element(By.ID, "freeze-group").click()
    assert outcome(browser).startswith("g2 frozen on node1, node2")
    try:
        alert_every_hook(pair, "g2", "node2")
        pair.wait_decisions("node1", "g2", settle=lambda d: d[-1]["status"] == "skipped")
        browser.get(pair.url("node1", "/ui/decisions?group=g2&status=skipped"))
        rows = browser.find_elements(By.CSS_SELECTOR, "tr.decision")
        assert rows
        assert all(r.get_attribute("data-group") == "g2" for r in rows)
        assert "skipped: g2 frozen" in rows[0].text
    finally:
        browser.get(pair.url("node1", "/ui/groups/g2"))
        browser.find_element(By.ID, "unfreeze-group").click()
        assert outcome(browser).startswith("g2 unfrozen on node1, node2")
    assert pair.held("node2", "g2")


def test_the_timeline_of_a_move_has_a_bar_per_journaled_step(
    pair: HookPair, browser: WebDriver
) -> None:
    move = pair.moves("node2", "web")[0]  # the automatic move of the killed service
    browser.get(pair.url("node1", "/ui/groups/web"))
    figure = browser.find_element(By.ID, f"timeline-node2-{move['id']}")
    bars = figure.find_elements(By.CSS_SELECTOR, "rect.bar[data-depth='0']")
    steps = [s for s in move["steps"] if s["started"] is not None]
    phases = [b for b in bars if b.get_attribute("data-state") != "info"]
    assert len(phases) == len(steps)
    assert [b.get_attribute("data-state") for b in phases] == [s["state"] for s in steps]
    info = [b for b in bars if b.get_attribute("data-state") == "info"]
    assert info  # the alert and the decision of an automatic move are drawn too


def test_the_group_page_shows_each_probe_with_its_result_and_duration(
    pair: HookPair, browser: WebDriver
) -> None:
    browser.get(pair.url("node1", "/ui/groups/web"))
    selector = "table.resources[data-node='node2'] tr[data-resource='service web'] li.probe"

    def probes(d: WebDriver) -> list[tuple[str, str, str]]:
        found = d.find_elements(By.CSS_SELECTOR, selector)
        return [(p.get_attribute("data-probe"), p.get_attribute("class"), p.text) for p in found]

    shown = steady(browser, probes)
    assert "http" in [name for name, _, _ in shown]
    for name, kind, text in shown:
        assert kind == "probe ok"
        assert text.startswith(f"{name}: ok (")
        assert text.endswith(" s)")
