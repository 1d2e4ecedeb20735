"""The detail view's near-duplicates, end to end: `polylens serve` on a folder of
scikit-image's photos and edited copies of one, driven in headless Chromium.

Same needs as test_browser.py (Debian's Chromium, the Playwright package), whose helpers
and fixtures this reuses.
"""

from __future__ import annotations

import subprocess
import sys
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

# test_browser skips this module too when Chromium or Playwright is missing
import test_browser
from test_browser import (
    FAST,
    _assert_png,
    _env,
    _generation,
    _get_json,
    _new_page,
    _serving,
    _wait_focused,
    _wait_for_results,
    expect,
)

# its fixtures, shared
browser = test_browser.browser
page_errors = test_browser.page_errors
shots = test_browser.shots

pytestmark = pytest.mark.slow

PHOTOS = ("astronaut", "coffee", "chelsea")


def _write_photos(folder: Path) -> None:
    """Three distinct photos, and two copies of coffee: resized to 60 % and recompressed
    (the same hash), and brightened with a few pixels cropped off (a few bits away)."""
    data = pytest.importorskip("skimage.data", reason="pip install scikit-image")
    from PIL import Image, ImageEnhance

    folder.mkdir(parents=True)
    for name in PHOTOS:
        Image.fromarray(getattr(data, name)()).convert("RGB").save(
            folder / f"{name}.jpg", quality=90
        )
    coffee = Image.open(folder / "coffee.jpg")
    w, h = coffee.size
    coffee.resize((w * 6 // 10, h * 6 // 10), Image.LANCZOS).save(
        folder / "coffee-small.jpg", quality=40
    )
    edited = ImageEnhance.Brightness(coffee.crop((6, 6, w - 6, h - 6))).enhance(1.1)
    edited.save(folder / "coffee-edit.jpg", quality=85)
    (folder / "notes.txt").write_text("Notes on coffee, cats and astronauts.\n", encoding="utf-8")


@pytest.fixture(scope="module")
def dupes_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    root = tmp_path_factory.mktemp("dupes")
    _write_photos(root / "photos")
    command = ["index", str(root / "photos"), "--index", str(root / "idx"), *FAST, "--quiet"]
    proc = subprocess.run(
        [sys.executable, "-m", "polylens", *command],
        capture_output=True,
        text=True,
        env=_env(),
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr
    with _serving(root / "idx", tmp_path_factory) as base:
        yield base


def _items(server: str) -> dict[str, dict[str, Any]]:
    """Every item of the index by its file's name (one search that returns them all)."""
    hits = _get_json(server + "/api/search?q=coffee&k=50")["hits"]
    by_name = {Path(h["path"]).name: h for h in hits}
    assert set(by_name) == {f"{n}.jpg" for n in PHOTOS} | {
        "coffee-small.jpg",
        "coffee-edit.jpg",
        "notes.txt",
    }, sorted(by_name)
    return by_name


def _duplicates(server: str, item_id: str) -> list[dict[str, Any]]:
    return _get_json(server + f"/api/items/{urllib.parse.quote(item_id, safe='')}/duplicates")[
        "items"
    ]


def _search(page: Any, server: str, query: str = "coffee") -> None:
    page.goto(server + "/")
    generation = _generation(page)
    page.locator("#q").fill(query)
    page.locator("#q").press("Enter")
    _wait_for_results(page, generation, "text")


def _card(page: Any, name: str) -> Any:
    return page.locator(f'.card[data-path$="/{name}"]')


def _wait_dupes_loaded(page: Any, item_id: str) -> None:
    """Until the detail view shows ``item_id`` and its near-duplicates have been asked for."""
    page.wait_for_function(
        """(id) => document.getElementById('detail').dataset.id === id
            && ['done', 'failed'].includes(document.getElementById('detail-dupes').dataset.state)""",
        arg=item_id,
    )


def _shown_dupes(page: Any) -> list[dict[str, str]]:
    return page.evaluate(
        """() => Array.from(document.querySelectorAll('#detail-dupes-list .dupe')).map((b) => ({
            id: b.dataset.id,
            name: b.querySelector('.dupe-name').textContent,
            path: b.querySelector('.dupe-path').textContent,
            distance: b.querySelector('.dupe-distance').textContent,
        }))"""
    )


def _expected(dupes: list[dict[str, Any]]) -> list[dict[str, str]]:
    return [
        {
            "id": d["id"],
            "name": Path(d["path"]).name,
            "path": d["path"],
            "distance": f"{d['distance']} bit{'' if d['distance'] == 1 else 's'} apart",
        }
        for d in dupes
    ]


def test_detail_lists_near_duplicates_and_opens_them(
    dupes_server: str, browser: Any, shots: Path, page_errors: list[str]
) -> None:
    items = _items(dupes_server)
    coffee = items["coffee.jpg"]
    dupes = _duplicates(dupes_server, coffee["id"])
    # the server's answer: the two copies, the recompressed one (same hash) first
    assert [Path(d["path"]).name for d in dupes] == ["coffee-small.jpg", "coffee-edit.jpg"], dupes
    assert 0 <= dupes[0]["distance"] < dupes[1]["distance"] <= 10, dupes

    page = _new_page(browser, page_errors, 1280, 900)
    requests: list[str] = []
    page.on("request", lambda r: requests.append(r.url) if "/duplicates" in r.url else None)
    _search(page, dupes_server)
    section = page.locator("#detail-dupes")

    _card(page, "coffee.jpg").click()
    _wait_dupes_loaded(page, coffee["id"])
    expect(section).to_be_visible()
    expect(page.locator("#detail-dupes-title")).to_contain_text("Near-duplicates")
    assert _shown_dupes(page) == _expected(dupes)
    page.wait_for_function(  # their thumbnails
        """() => {
            const imgs = Array.from(document.querySelectorAll('#detail-dupes-list img'));
            return imgs.length === 2 && imgs.every((i) => i.complete && i.naturalWidth > 0
                && i.src.includes('/thumbnail?size='));
        }"""
    )
    png = shots / "detail-duplicates.png"
    page.screenshot(path=str(png))

    # a click opens the copy in the detail view, which lists its own near-duplicates
    edit = items["coffee-edit.jpg"]
    page.locator("#detail-dupes-list .dupe").nth(1).click()
    _wait_dupes_loaded(page, edit["id"])
    expect(page.locator("#detail-path")).to_have_text(edit["path"])
    expect(page.locator("#detail-title")).to_have_text("coffee-edit.jpg")
    _wait_focused(page, "detail-title")
    # it is one of the results: its place among them and the arrows are back
    position = page.locator("#detail-position").inner_text()
    assert position.endswith(f"/ {len(items)}"), position
    assert _shown_dupes(page) == _expected(_duplicates(dupes_server, edit["id"]))
    assert coffee["id"] in [d["id"] for d in _shown_dupes(page)]

    # photos without a near-duplicate, and text, show no section
    page.keyboard.press("Escape")
    expect(page.locator("#detail")).to_be_hidden()
    for name in ("astronaut.jpg", "chelsea.jpg"):
        assert _duplicates(dupes_server, items[name]["id"]) == []
        _card(page, name).click()
        _wait_dupes_loaded(page, items[name]["id"])
        expect(section).to_be_hidden()
        page.keyboard.press("Escape")
        expect(page.locator("#detail")).to_be_hidden()
    asked = len(requests)
    _card(page, "notes.txt").click()
    page.wait_for_function(
        "(id) => document.getElementById('detail').dataset.id === id", arg=items["notes.txt"]["id"]
    )
    expect(page.locator("#detail-text")).not_to_have_class("is-loading")
    expect(section).to_be_hidden()
    assert len(requests) == asked  # text is not asked for near-duplicates

    expect(page.locator("#error")).to_have_text("")
    assert page_errors == []
    page.context.close()
    _assert_png(png)


def test_a_near_duplicate_outside_the_results_by_keyboard(
    dupes_server: str, browser: Any, page_errors: list[str]
) -> None:
    items = _items(dupes_server)
    coffee, small = items["coffee.jpg"], items["coffee-small.jpg"]

    def only_originals(route: Any) -> None:  # the copies are not among the results
        response = route.fetch()
        data = response.json()
        data["hits"] = [h for h in data["hits"] if "coffee-" not in h["path"]]
        route.fulfill(response=response, json=data)

    page = _new_page(browser, page_errors, 1280, 900)
    page.route("**/api/search?*", only_originals)
    _search(page, dupes_server)
    assert _card(page, "coffee-small.jpg").count() == 0
    card = _card(page, "coffee.jpg")
    card.focus()
    page.keyboard.press("Enter")
    _wait_dupes_loaded(page, coffee["id"])

    first = page.locator("#detail-dupes-list .dupe").first
    expect(first).to_have_attribute("data-id", small["id"])
    first.focus()
    page.keyboard.press("Enter")
    _wait_dupes_loaded(page, small["id"])
    _wait_focused(page, "detail-title")
    expect(page.locator("#detail-path")).to_have_text(small["path"])
    # not one of the results: no place among them, the arrows do nothing
    expect(page.locator("#detail-position")).to_have_text("")
    expect(page.locator("#detail-prev")).to_be_disabled()
    expect(page.locator("#detail-next")).to_be_disabled()
    page.keyboard.press("ArrowRight")
    expect(page.locator("#detail")).to_have_attribute("data-id", small["id"])
    # its near-duplicates lead back to the result, with its place
    back = page.locator(f'#detail-dupes-list .dupe[data-id="{coffee["id"]}"]')
    back.click()
    _wait_dupes_loaded(page, coffee["id"])
    expect(page.locator("#detail-position")).not_to_have_text("")

    # Escape returns the focus to the result's card
    page.locator("#detail-dupes-list .dupe").first.click()
    _wait_dupes_loaded(page, small["id"])
    page.keyboard.press("Escape")
    expect(page.locator("#detail")).to_be_hidden()
    page.wait_for_function(
        "(id) => document.activeElement && document.activeElement.dataset.id === id",
        arg=coffee["id"],
    )
    expect(page.locator("#error")).to_have_text("")
    assert page_errors == []
    page.context.close()


def test_stale_and_failed_duplicates_do_not_show(
    dupes_server: str, browser: Any, page_errors: list[str]
) -> None:
    items = _items(dupes_server)
    coffee = items["coffee.jpg"]
    coffee_url = f"/api/items/{urllib.parse.quote(coffee['id'], safe='')}/duplicates"
    held: list[Any] = []

    def hold_coffee(route: Any) -> None:
        if coffee_url in route.request.url and not held:
            held.append(route)  # answered later, once the view has moved on
        else:
            route.continue_()

    page = _new_page(browser, page_errors, 1280, 900)
    page.route("**/duplicates*", hold_coffee)
    _search(page, dupes_server)
    _card(page, "coffee.jpg").click()
    page.wait_for_function(
        "() => document.getElementById('detail-dupes').dataset.state === 'loading'"
    )
    assert len(held) == 1
    key = "ArrowLeft" if page.locator("#detail-next").is_disabled() else "ArrowRight"
    page.keyboard.press(key)
    shown = page.locator("#detail").get_attribute("data-id")
    assert shown and shown != coffee["id"]
    _wait_dupes_loaded(page, shown)
    expected = _expected(_duplicates(dupes_server, shown))
    assert _shown_dupes(page) == expected
    with page.expect_response(lambda r: coffee_url in r.url):
        held[0].continue_()
    page.wait_for_timeout(300)  # the late answer has been read, and ignored
    assert page.locator("#detail").get_attribute("data-id") == shown
    assert _shown_dupes(page) == expected
    page.keyboard.press("Escape")
    expect(page.locator("#detail")).to_be_hidden()

    # a failure leaves the rest of the detail view working, without the section
    page.unroute("**/duplicates*")
    page.route("**/duplicates*", lambda route: route.fulfill(status=500, body="boom"))
    _card(page, "coffee.jpg").click()
    _wait_dupes_loaded(page, coffee["id"])
    expect(page.locator("#detail-dupes")).to_be_hidden()
    expect(page.locator("#detail-path")).to_have_text(coffee["path"])
    expect(page.locator("#detail-text")).not_to_have_class("is-loading")
    expect(page.locator("#error")).to_have_text("")
    assert page_errors == []
    page.context.close()


def test_phone_width_with_near_duplicates_has_no_horizontal_scroll(
    dupes_server: str, browser: Any, shots: Path, page_errors: list[str]
) -> None:
    coffee = _items(dupes_server)["coffee.jpg"]
    page = _new_page(browser, page_errors, 375, 740)
    _search(page, dupes_server)
    _card(page, "coffee.jpg").click()
    _wait_dupes_loaded(page, coffee["id"])
    section = page.locator("#detail-dupes")
    expect(section).to_be_visible()
    section.scroll_into_view_if_needed()
    assert page.evaluate("document.documentElement.scrollWidth") <= 375
    overflow = page.evaluate(
        """() => Array.from(document.querySelectorAll('.detail-body, .dupes, .dupe')).map(
            (e) => e.scrollWidth - e.clientWidth)"""
    )
    assert all(px <= 0 for px in overflow), overflow
    box = section.bounding_box()
    assert box["x"] >= 0 and box["x"] + box["width"] <= 375, box
    png = shots / "detail-duplicates-mobile.png"
    page.screenshot(path=str(png))
    _assert_png(png)
    assert page_errors == []
    page.context.close()
