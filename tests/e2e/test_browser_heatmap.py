"""The detail view's heat map end to end: where a text query matched a PDF page, from the
late-interaction page vectors of a tiny random-weight ColQwen2 (tests/_tiny_colvision.py),
drawn over the page's picture in headless Chromium.

Same needs as test_browser.py (Debian's Chromium, the Playwright package), whose helpers
and fixtures this reuses. Screenshots go to $POLYLENS_SCREENSHOTS, or to the test's tmp dir.
"""

from __future__ import annotations

import urllib.error
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

# test_browser skips this module too when Chromium or Playwright is missing
import test_browser
from _tiny_colvision import make_tiny_colqwen2
from test_browser import (
    _assert_png,
    _build_index,
    _generation,
    _get_json,
    _new_page,
    _serving,
    _wait_for_results,
    expect,
)

# its fixtures, shared
browser = test_browser.browser
page_errors = test_browser.page_errors
shots = test_browser.shots

pytestmark = pytest.mark.slow

QUERY = "euro currency"
# no text model and no OCR: BM25 and the page vectors find the pages; the fake image model
# is there so that photos turn up in a text search too (they have no page vectors)
MODELS = ["--image-model", "fake-clip", "--text-model", "none", "--no-ocr"]


@pytest.fixture(scope="module")
def heat_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    model = make_tiny_colqwen2(tmp_path_factory.mktemp("models") / "tiny-colqwen2")
    index = _build_index(tmp_path_factory, [*MODELS, "--page-model", str(model)])
    with _serving(index, tmp_path_factory) as base:
        yield base


def _heatmap(base: str, item_id: str, query: str = QUERY) -> dict[str, Any]:
    sp = urllib.parse.urlencode({"q": query}, quote_via=urllib.parse.quote)
    return _get_json(f"{base}/api/items/{urllib.parse.quote(item_id, safe='')}/heatmap?{sp}")


def _search(page: Any, query: str) -> None:
    generation = _generation(page)
    page.locator("#q").fill(query)
    page.locator("#q").press("Enter")
    _wait_for_results(page, generation, "text")


def _wait_for_heat(page: Any, item_id: str) -> None:
    """Until the detail view shows ``item_id``'s full picture with its heat map drawn."""
    page.wait_for_function(
        """(id) => {
            const d = document.querySelector('#detail');
            const img = document.querySelector('#detail-image');
            const canvas = document.querySelector('#detail-heat');
            return d.open && d.dataset.id === id && d.dataset.heat === 'loaded'
                && img.dataset.full === '1' && img.complete && img.naturalWidth > 0
                && !canvas.hidden && canvas.width > 0;
        }""",
        arg=item_id,
    )


def _boxes(page: Any) -> dict[str, Any]:
    return page.evaluate(
        """() => {
            const box = (e) => { const r = e.getBoundingClientRect();
                return { x: r.x, y: r.y, width: r.width, height: r.height }; };
            const img = document.querySelector('#detail-image');
            const canvas = document.querySelector('#detail-heat');
            return { img: box(img), canvas: box(canvas), pixels: [canvas.width, canvas.height],
                     ratio: window.devicePixelRatio };
        }"""
    )


def _assert_aligned(page: Any) -> None:
    boxes = _boxes(page)
    for side in ("x", "y", "width", "height"):
        assert abs(boxes["img"][side] - boxes["canvas"][side]) <= 1, boxes
    width, height = boxes["pixels"]
    assert abs(width - boxes["img"]["width"] * boxes["ratio"]) <= 1, boxes
    assert abs(height - boxes["img"]["height"] * boxes["ratio"]) <= 1, boxes


def _alpha_at_cells(page: Any, heat: dict[str, Any], cells: list[int]) -> list[int]:
    """The canvas's opacity (0..255) at the centre of each cell (row-major numbers)."""
    return page.evaluate(
        """([rows, cols, cells]) => {
            const canvas = document.querySelector('#detail-heat');
            const ctx = canvas.getContext('2d');
            return cells.map((n) => {
                const r = Math.floor(n / cols), c = n % cols;
                const x = Math.floor(((c + 0.5) * canvas.width) / cols);
                const y = Math.floor(((r + 0.5) * canvas.height) / rows);
                return ctx.getImageData(x, y, 1, 1).data[3];
            });
        }""",
        [heat["rows"], heat["cols"], cells],
    )


def _heat_requests(page: Any) -> list[str]:
    seen: list[str] = []
    page.on("request", lambda req: seen.append(req.url) if "/heatmap" in req.url else None)
    return seen


def test_the_heat_map_lies_over_the_page_and_can_be_turned_off(
    heat_server: str, browser: Any, shots: Path, page_errors: list[str]
) -> None:
    status = _get_json(heat_server + "/api/status")
    assert any(r["name"] == "late" and r["available"] for r in status["representations"])
    page = _new_page(browser, page_errors, 1280, 900)
    requests = _heat_requests(page)
    page.goto(heat_server + "/")
    _search(page, QUERY)

    card = page.locator('.card[data-kind="page"][data-path$="euro.pdf"]').first
    item_id = card.get_attribute("data-id")
    assert item_id
    direct = _heatmap(heat_server, item_id)
    card.click()
    _wait_for_heat(page, item_id)
    assert any(item_id in urllib.parse.unquote(u) for u in requests), requests

    # the page's map is the route's: the same grid, score and token counts
    canvas = page.locator("#detail-heat")
    assert int(canvas.get_attribute("data-rows")) == direct["rows"]
    assert int(canvas.get_attribute("data-cols")) == direct["cols"]
    assert float(canvas.get_attribute("data-score")) == pytest.approx(direct["score"])
    assert int(canvas.get_attribute("data-tokens")) == direct["tokens"]
    assert int(canvas.get_attribute("data-tokens-on-page")) == direct["tokens_on_page"]
    assert canvas.get_attribute("aria-hidden") == "true"
    # drawn over the picture as displayed, one cell per patch: the cell that carried the
    # most is coloured, cells that carried nothing are clear
    _assert_aligned(page)
    values = direct["values"]
    assert len(values) == direct["rows"] * direct["cols"]
    peak = values.index(max(values))
    zeros = [n for n, v in enumerate(values) if v == 0][:5]
    assert zeros, "every patch matched: no clear cell to check"
    alphas = _alpha_at_cells(page, direct, [peak, *zeros])
    assert alphas[0] > 100 and alphas[1:] == [0] * len(zeros), alphas

    # the toggle: on, named, described by the caption, and works from the keyboard
    toggle = page.locator("#detail-heat-toggle")
    expect(toggle).to_be_visible()
    expect(toggle).to_have_accessible_name("Show matched areas")
    expect(toggle).to_have_attribute("aria-pressed", "true")
    caption = page.locator("#detail-heat-caption")
    expect(caption).to_have_text("Highlighted: where the query’s words matched this page (MaxSim)")
    assert toggle.get_attribute("aria-describedby") == "detail-heat-caption"
    expect(page.locator("#error")).to_have_text("")

    page.screenshot(path=str(shots / "heatmap.png"))

    toggle.focus()
    page.keyboard.press("Space")
    expect(toggle).to_have_attribute("aria-pressed", "false")
    expect(canvas).to_be_hidden()
    page.keyboard.press("Enter")
    expect(toggle).to_have_attribute("aria-pressed", "true")
    expect(canvas).to_be_visible()
    toggle.click()
    expect(canvas).to_be_hidden()
    toggle.click()
    expect(canvas).to_be_visible()

    # a phone's width: the picture shrinks and the map is drawn again to its new size
    before = _boxes(page)["img"]
    page.set_viewport_size({"width": 390, "height": 800})
    page.wait_for_function(
        """(height) => {
            const img = document.querySelector('#detail-image');
            const canvas = document.querySelector('#detail-heat');
            const r = img.getBoundingClientRect();
            return r.height < height - 1
                && Math.abs(canvas.getBoundingClientRect().height - r.height) <= 1;
        }""",
        arg=before["height"],
    )
    _assert_aligned(page)
    assert _alpha_at_cells(page, direct, [peak])[0] > 100
    page.screenshot(path=str(shots / "heatmap-phone.png"))

    # closing takes the map away
    page.keyboard.press("Escape")
    expect(page.locator("#detail")).to_be_hidden()
    expect(canvas).to_be_hidden()
    expect(page.locator("#detail-heat-bar")).to_be_hidden()
    assert page.locator("#detail").get_attribute("data-heat") is None

    assert page_errors == []
    page.context.close()
    _assert_png(shots / "heatmap.png")
    _assert_png(shots / "heatmap-phone.png")


def test_photos_and_searches_without_words_show_no_toggle(
    heat_server: str, browser: Any, page_errors: list[str]
) -> None:
    page = _new_page(browser, page_errors, 1280, 900)
    requests = _heat_requests(page)
    page.goto(heat_server + "/")
    _search(page, QUERY)
    cards = page.locator(".card")
    kinds = [cards.nth(i).get_attribute("data-kind") for i in range(cards.count())]
    assert "page" in kinds and "image" in kinds, kinds
    # a page next to a photo among the results: from the page's map to the photo's view
    pairs = [
        (i, j)
        for i, kind in enumerate(kinds)
        for j in (i - 1, i + 1)
        if kind == "page" and 0 <= j < len(kinds) and kinds[j] == "image"
    ]
    assert pairs, kinds
    page_at, photo_at = pairs[0]
    page_id = cards.nth(page_at).get_attribute("data-id")
    photo_id = cards.nth(photo_at).get_attribute("data-id")
    cards.nth(page_at).click()
    _wait_for_heat(page, page_id)
    page.locator("#detail-next" if photo_at > page_at else "#detail-prev").click()

    # the photo has no page vectors (the route answers 404): no toggle, no map, no error
    detail = page.locator("#detail")
    page.wait_for_function(
        """(id) => {
            const d = document.querySelector('#detail');
            return d.dataset.id === id && d.dataset.heat === 'none';
        }""",
        arg=photo_id,
    )
    with pytest.raises(urllib.error.HTTPError) as refused:
        _heatmap(heat_server, photo_id)
    assert refused.value.code == 404
    expect(page.locator("#detail-heat-bar")).to_be_hidden()
    expect(page.locator("#detail-heat")).to_be_hidden()
    expect(page.locator("#error")).to_have_text("")

    # "More like this" has no words: its results are shown without asking for a map
    page.locator("#detail-prev" if photo_at > page_at else "#detail-next").click()
    _wait_for_heat(page, page_id)
    asked = len(requests)
    generation = _generation(page)
    page.locator("#more-like-this").click()
    _wait_for_results(page, generation, "similar")
    similar = page.locator('.card[data-kind="page"]').first
    similar_id = similar.get_attribute("data-id")
    similar.click()
    page.wait_for_function(
        """(id) => {
            const d = document.querySelector('#detail'), img = d.querySelector('#detail-image');
            return d.open && d.dataset.id === id && img.dataset.full === '1';
        }""",
        arg=similar_id,
    )
    assert detail.get_attribute("data-heat") is None
    expect(page.locator("#detail-heat-bar")).to_be_hidden()
    expect(page.locator("#detail-heat")).to_be_hidden()
    assert len(requests) == asked, requests[asked:]

    assert page_errors == []
    page.context.close()
