"""The web page end to end: `polylens serve` on the sample data, driven in headless Chromium.

Needs Debian's Chromium at /usr/bin/chromium (``apt-get install chromium``) and the
Playwright Python package (``pip install playwright``). Playwright's own browser download
(``playwright install``) is never used. Screenshots go to $POLYLENS_SCREENSHOTS, or to
the test's tmp dir.
"""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
SAMPLES = REPO / "samples"
CAT = SAMPLES / "photos" / "cat.jpg"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
FAST = ["--image-model", "fake-clip", "--text-model", "fake-text", "--no-ocr"]
TEXT_ONLY = ["--image-model", "none", "--text-model", "fake-text", "--no-ocr"]
PAGE_SIZE = 24  # app.js asks for this many results at a time
# a 1x1 PNG, for drop and paste events
PNG_1PX = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8DwHwAFBQIAX8jx0gAAAABJRU5ErkJggg=="
TIMEOUT_MS = 30_000

if not Path(CHROMIUM).is_file():
    pytest.skip(
        f"the browser test needs Debian's Chromium at {CHROMIUM}: apt-get install chromium",
        allow_module_level=True,
    )
try:
    from playwright import sync_api
except ImportError:
    pytest.skip(
        "the browser test needs the Playwright Python package: pip install playwright "
        f"(no `playwright install`: it drives {CHROMIUM})",
        allow_module_level=True,
    )
pytest.importorskip("fastapi", reason="the server extra is needed: pip install 'polylens[server]'")
pytest.importorskip("uvicorn", reason="the server extra is needed: pip install 'polylens[server]'")
expect = sync_api.expect


def _env() -> dict[str, str]:
    return {**os.environ, "HF_HUB_OFFLINE": "1", "NO_COLOR": "1", "COLUMNS": "160"}


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _tail(path: Path, chars: int = 4000) -> str:
    try:
        return path.read_text(encoding="utf-8", errors="replace")[-chars:]
    except OSError:
        return ""


def _build_index(tmp_path_factory: pytest.TempPathFactory, models: list[str]) -> Path:
    index = tmp_path_factory.mktemp("browser") / "idx"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "polylens",
            "index",
            str(SAMPLES),
            "--index",
            str(index),
            *models,
            "--quiet",
        ],
        capture_output=True,
        text=True,
        env=_env(),
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr
    return index


@contextmanager
def _serving(
    index_dir: Path,
    tmp_path_factory: pytest.TempPathFactory,
    env: dict[str, str] | None = None,
) -> Iterator[str]:
    """`polylens serve` in a subprocess (``env``: more environment for it); yields its base
    URL and always stops it."""
    port = _free_port()
    log = tmp_path_factory.mktemp("server") / "serve.log"
    with log.open("w") as out:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "polylens",
                "serve",
                "--index",
                str(index_dir),
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
            env={**_env(), **(env or {})},
        )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            if proc.poll() is not None:
                pytest.fail(f"polylens serve exited with {proc.returncode}:\n{_tail(log)}")
            try:
                with urllib.request.urlopen(base + "/api/health", timeout=2) as res:
                    if res.status == 200:
                        break
            except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"polylens serve did not answer /api/health in 60 s:\n{_tail(log)}")
            time.sleep(0.2)
        yield base
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=15)


def _get_json(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=30) as res:
        return json.load(res)


@pytest.fixture(scope="module")
def index_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _build_index(tmp_path_factory, FAST)


@pytest.fixture(scope="module")
def server(index_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with _serving(index_dir, tmp_path_factory) as base:
        yield base


@pytest.fixture(scope="module")
def text_only_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """An index built without an image model: image search is unavailable there."""
    with _serving(_build_index(tmp_path_factory, TEXT_ONLY), tmp_path_factory) as base:
        yield base


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with sync_api.sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture
def shots(tmp_path: Path) -> Path:
    folder = Path(os.environ.get("POLYLENS_SCREENSHOTS") or tmp_path)
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture
def page_errors() -> list[str]:
    return []


def _new_page(browser: Any, errors: list[str], width: int, height: int) -> Any:
    context = browser.new_context(viewport={"width": width, "height": height})
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    return page


def _wait_for_results(page: Any, after_generation: str, mode: str) -> None:
    """Until the grid has re-rendered (its generation moved on) for a query of ``mode``."""
    page.wait_for_function(
        """([gen, mode]) => {
            const r = document.querySelector('#results');
            return r.dataset.generation !== gen && r.dataset.mode === mode
                && r.dataset.state === 'done';
        }""",
        arg=[after_generation, mode],
    )


def _generation(page: Any) -> str:
    return page.locator("#results").get_attribute("data-generation") or "0"


def _assert_png(path: Path) -> None:
    assert path.is_file() and path.stat().st_size > 0, path
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", path


def _wait_focused(page: Any, element_id: str) -> None:
    """The element is the document's active element. Playwright's to_be_focused also needs
    the window itself to have focus, which a headless browser on a busy machine may not."""
    page.wait_for_function(
        "(id) => document.activeElement && document.activeElement.id === id",
        arg=element_id,
        timeout=10_000,
    )


def test_search_image_query_detail_and_more_like_this(
    server: str, browser: Any, shots: Path, page_errors: list[str]
) -> None:
    page = _new_page(browser, page_errors, 1280, 900)
    page.goto(server + "/")
    results = page.locator("#results")
    cards = page.locator(".card")

    _wait_focused(page, "q")  # autofocus
    files = _get_json(server + "/api/status")["files"]
    expect(page.locator("#status")).to_contain_text(re.compile(rf"Index: {files} files, \d+ items"))

    # -- a text search
    generation = _generation(page)
    page.locator("#q").fill("euro")
    page.locator("#q").press("Enter")
    page.wait_for_selector(".card")
    _wait_for_results(page, generation, "text")
    names = page.locator(".card .card-name").all_inner_texts()
    assert any("euro.pdf" in name for name in names), names
    expect(page.locator(".card-page .badge").first).to_have_text(re.compile(r"^p\. \d+$"))
    expect(page.locator("#results-title")).to_have_text(re.compile(r"^\d+\+? results? for “euro”$"))
    page.wait_for_function(  # the thumbnails in view have loaded
        """() => {
            const imgs = Array.from(document.querySelectorAll('.card img')).slice(0, 4);
            return imgs.length > 0 && imgs.every((i) => i.complete && i.naturalWidth > 0);
        }"""
    )
    first_img = page.locator(".card img").first
    assert first_img.get_attribute("loading") == "lazy"
    assert first_img.get_attribute("alt") == "euro.pdf"

    # scores appear on demand
    expect(page.locator(".card .card-score").first).to_be_hidden()
    page.locator("#show-scores").check()
    expect(page.locator(".card .card-score").first).to_be_visible()
    # a confidence a person can read (the fused score only where there is none)
    expect(page.locator(".card .score-value").first).to_have_text(re.compile(r"^\d{1,3}%$"))

    # pagination: the sample index holds more than one page of "euro" results
    shown = cards.count()
    more = page.locator("#more-btn")
    expect(more).to_be_visible()
    generation = _generation(page)
    more.click()
    _wait_for_results(page, generation, "text")
    assert cards.count() > shown
    ids = [cards.nth(i).get_attribute("data-id") for i in range(cards.count())]
    assert len(ids) == len(set(ids)), "a result appears twice after 'More results'"

    page.evaluate("window.scrollTo(0, 0)")
    results_png = shots / "results.png"
    page.screenshot(path=str(results_png))

    # -- search by an image (the file input; the text box empty)
    page.locator("#q").fill("")
    generation = _generation(page)
    page.locator("#file-input").set_input_files(str(CAT))
    expect(page.locator("#image-chip")).to_be_visible()
    expect(page.locator("#image-chip")).to_contain_text("cat.jpg")
    page.locator("#search-btn").click()
    _wait_for_results(page, generation, "image")
    expect(cards.first).to_have_attribute("data-path", re.compile(r"cat\.jpg$"))
    expect(cards.first.locator(".card-name")).to_have_text("cat.jpg")

    # -- the detail view
    cards.first.click()
    detail = page.locator("#detail")
    expect(detail).to_be_visible()
    page.wait_for_function(
        """() => {
            const img = document.querySelector('#detail-image');
            return img.src.includes('/image') && img.complete && img.naturalWidth > 0;
        }"""
    )
    expect(page.locator("#detail-path")).to_contain_text("cat.jpg")
    expect(page.locator("#detail-text")).to_be_visible()
    assert page.locator("#detail-text").evaluate("e => getComputedStyle(e).whiteSpace") == (
        "pre-wrap"
    )
    detail_png = shots / "detail.png"
    page.screenshot(path=str(detail_png))

    # "More like this" shows the neighbours in the grid (the item itself excluded)
    generation = _generation(page)
    page.locator("#more-like-this").click()
    _wait_for_results(page, generation, "similar")
    expect(detail).to_be_hidden()
    assert cards.count() > 0
    paths = [cards.nth(i).get_attribute("data-path") for i in range(cards.count())]
    assert not any(p.endswith("cat.jpg") for p in paths if p), paths
    expect(page.locator("#results-title")).to_contain_text("cat.jpg")

    # the keyboard: Enter opens a focused card, Escape closes and focus returns to it
    cards.nth(1).focus()
    page.keyboard.press("Enter")
    expect(detail).to_be_visible()
    page.keyboard.press("Escape")
    expect(detail).to_be_hidden()
    assert (
        page.evaluate(
            "() => document.activeElement.classList.contains('card') "
            "&& document.activeElement.dataset.index"
        )
        == "1"
    )
    # "/" is ignored while the dialog is open; its close may finish an animation first
    page.wait_for_function("() => !document.getElementById('detail').open", timeout=10_000)
    page.keyboard.press("/")
    _wait_focused(page, "q")

    expect(page.locator("#error")).to_have_text("")
    assert results.get_attribute("aria-busy") == "false"
    assert page_errors == []
    page.context.close()

    _assert_png(results_png)
    _assert_png(detail_png)


def test_server_errors_are_shown_politely(
    server: str, browser: Any, page_errors: list[str]
) -> None:
    page = _new_page(browser, page_errors, 1024, 768)
    page.goto(server + "/")
    page.locator("#file-input").set_input_files(
        files=[{"name": "broken.png", "mimeType": "image/png", "buffer": b"not a picture"}]
    )
    error = page.locator("#error")
    expect(error).to_be_visible()
    expect(error).not_to_have_text("")
    assert error.get_attribute("role") == "alert"
    assert "Traceback" not in error.inner_text()
    assert page_errors == []
    page.context.close()


def test_phone_width_has_no_horizontal_scroll(
    server: str, browser: Any, shots: Path, page_errors: list[str]
) -> None:
    page = _new_page(browser, page_errors, 375, 740)
    page.goto(server + "/")
    page.locator("#q").fill("euro")
    page.locator("#q").press("Enter")
    page.wait_for_selector(".card")
    page.wait_for_function("document.querySelector('#results').dataset.state === 'done'")
    page.locator("#show-scores").check()
    assert page.evaluate("document.documentElement.scrollWidth") <= 375
    columns = page.evaluate(
        "getComputedStyle(document.querySelector('#results')).gridTemplateColumns.split(' ').length"
    )
    assert columns >= 1
    mobile_png = shots / "mobile.png"
    page.screenshot(path=str(mobile_png))
    _assert_png(mobile_png)
    assert page_errors == []
    page.context.close()


def _snippet_boxes(page: Any) -> list[dict[str, float]]:
    """Each text card's snippet: its line height, heights and how far its bottom reaches
    into the square that holds it (positive: past the square's padding, cut)."""
    return page.evaluate(
        """() => Array.from(document.querySelectorAll('.card-visual.card-text .snippet')).map((s) => {
            const box = s.parentElement;
            const boxStyle = getComputedStyle(box);
            const lineHeight = parseFloat(getComputedStyle(s).lineHeight);
            return {
                lineHeight,
                clientHeight: s.clientHeight,
                scrollHeight: s.scrollHeight,
                height: s.getBoundingClientRect().height,
                overrun: s.getBoundingClientRect().bottom
                    - (box.getBoundingClientRect().bottom - parseFloat(boxStyle.paddingBottom)
                       - parseFloat(boxStyle.borderBottomWidth)),
            };
        })"""
    )


@pytest.mark.parametrize("width", [1280, 390])
def test_text_cards_clip_snippets_on_whole_lines(
    server: str, browser: Any, shots: Path, page_errors: list[str], width: int
) -> None:
    page = _new_page(browser, page_errors, width, 900)
    page.goto(server + "/?q=hacker&kind=text")
    page.wait_for_selector(".card-text .snippet")
    page.wait_for_function("document.querySelector('#results').dataset.state === 'done'")
    boxes = _snippet_boxes(page)
    assert boxes, "no text cards"
    clipped = [b for b in boxes if b["scrollHeight"] > b["clientHeight"] + 1]
    assert clipped, f"no snippet is long enough to be clipped: {boxes}"
    for box in boxes:
        lines = box["height"] / box["lineHeight"]
        # a whole number of lines: no part of a further line shows under the "…"
        assert abs(box["height"] - round(lines) * box["lineHeight"]) <= 1, box
        assert abs(box["clientHeight"] - box["height"]) <= 1, f"the snippet has a padding: {box}"
        # and the square that holds the snippet does not cut through a line either
        assert box["overrun"] <= 0.5, box
    assert all(round(b["height"] / b["lineHeight"]) >= 3 for b in clipped), clipped
    png = shots / f"text-cards-{width}.png"
    page.screenshot(path=str(png))
    _assert_png(png)
    assert page_errors == []
    page.context.close()


def test_one_heading_with_a_true_count_and_the_warnings(
    server: str, browser: Any, page_errors: list[str]
) -> None:
    everything = len(_get_json(server + "/api/search?q=euro&k=200")["hits"])
    text_answer = _get_json(server + "/api/search?q=euro&k=200&kind=text")
    text_only, text_verdict = len(text_answer["hits"]), text_answer["no_good_match"]
    # the sample index: more than one page of everything, less than one of text
    assert PAGE_SIZE < everything < 2 * PAGE_SIZE, everything
    assert 0 < text_only < PAGE_SIZE, text_only

    note = "image search is unavailable: a test note; the text alone was searched"

    def add_note(route: Any) -> None:  # the same note twice: it is shown once
        response = route.fetch()
        data = response.json()
        data["warnings"] = [*data.get("warnings", []), note, note]
        route.fulfill(response=response, json=data)

    page = _new_page(browser, page_errors, 1280, 900)
    page.route("**/api/search?*", add_note, times=1)
    page.goto(server + "/")
    cards = page.locator(".card")
    title = page.locator("#results-title")
    more = page.locator("#more-btn")
    warnings = page.locator("#warnings li")

    generation = _generation(page)
    page.locator("#q").fill("euro")
    page.locator("#q").press("Enter")
    _wait_for_results(page, generation, "text")

    # one heading says how many: a full page and more on the server reads "24+"
    headings = page.locator("main h2")
    assert headings.count() == 1
    expect(headings.first).to_be_visible()
    expect(title).to_have_text(f"{PAGE_SIZE}+ results for “euro”")
    assert cards.count() == PAGE_SIZE
    assert page.locator("main").inner_text().count("results for") == 1
    expect(more).to_be_visible()

    # the server's note: once, above the results, not as an error
    expect(warnings).to_have_count(1)
    expect(warnings.first).to_be_visible()
    expect(warnings.first).to_have_text(note[0].upper() + note[1:] + ".")
    assert warnings.first.bounding_box()["y"] < cards.first.bounding_box()["y"]
    expect(page.locator("#error")).to_have_text("")

    # the last page: the exact number, no "More results"
    generation = _generation(page)
    more.click()
    _wait_for_results(page, generation, "text")
    expect(title).to_have_text(f"{everything} results for “euro”")
    assert cards.count() == everything
    expect(more).to_be_hidden()
    expect(warnings).to_have_count(1)  # still the same search

    # the next search clears the note; fewer than a page: the exact number at once
    page.locator(".pill", has_text="Images").click()
    page.locator(".pill", has_text="PDF pages").click()
    # (no text file is about the euro: the heading says there is no good match)
    assert text_verdict is True
    expect(title).to_have_text("No good match for “euro” — closest results")
    page.wait_for_function("document.querySelector('#results').dataset.state === 'done'")
    assert cards.count() == text_only
    expect(more).to_be_hidden()
    expect(warnings).to_have_count(0)
    assert page.locator("main").inner_text().count("closest results") == 1
    assert page_errors == []
    page.context.close()


def _send_image_event(page: Any, kind: str) -> None:
    """Drop or paste a small PNG on the page, as a user would."""
    page.evaluate(
        """([kind, b64]) => {
            const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
            const dt = new DataTransfer();
            dt.items.add(new File([bytes], 'dot.png', { type: 'image/png' }));
            const init = { bubbles: true, cancelable: true };
            if (kind === 'paste') {
                document.body.dispatchEvent(new ClipboardEvent('paste', { ...init, clipboardData: dt }));
            } else {
                document.body.dispatchEvent(new DragEvent('dragenter', { ...init, dataTransfer: dt }));
                document.body.dispatchEvent(new DragEvent('drop', { ...init, dataTransfer: dt }));
            }
        }""",
        [kind, PNG_1PX],
    )


@pytest.mark.parametrize("width", [1280, 390])
def test_image_control_is_off_without_an_image_model(
    text_only_server: str, browser: Any, shots: Path, page_errors: list[str], width: int
) -> None:
    status = _get_json(text_only_server + "/api/status")
    assert status["image_search"]["available"] is False, status.get("image_search")
    reason = status["image_search"]["reason"]
    assert reason

    page = _new_page(browser, page_errors, width, 800)
    image_requests: list[str] = []
    page.on("request", lambda r: image_requests.append(r.url) if "/search/image" in r.url else None)
    page.goto(text_only_server + "/")

    file_input = page.locator("#file-input")
    button = page.locator("#file-btn")
    note = page.locator("#image-off")
    expect(file_input).to_be_disabled()
    expect(button).to_have_attribute("aria-disabled", "true")
    expect(button).to_have_attribute("title", re.compile(re.escape(reason)))
    # the reason is also visible next to the control, and describes it
    expect(note).to_be_visible()
    expect(note).to_contain_text(reason)
    described_by = (file_input.get_attribute("aria-describedby") or "").split()
    assert "image-off" in described_by, described_by
    assert note.bounding_box()["width"] <= width
    expect(page.locator("#dropzone")).to_have_attribute("aria-disabled", "true")
    png = shots / f"image-off-{width}.png"
    page.screenshot(path=str(png))
    _assert_png(png)

    # dropping or pasting an image explains instead of searching
    generation = _generation(page)
    for kind in ("drop", "paste"):
        page.evaluate("document.getElementById('error').textContent = ''")
        _send_image_event(page, kind)
        expect(page.locator("#error")).to_contain_text(reason)
        expect(page.locator("#image-chip")).to_be_hidden()
        expect(page.locator("#drop-overlay")).to_be_hidden()
    assert _generation(page) == generation
    assert image_requests == []

    # searching by words still works
    generation = _generation(page)
    page.locator("#q").fill("euro")
    page.locator("#q").press("Enter")
    _wait_for_results(page, generation, "text")
    expect(page.locator("#error")).to_have_text("")
    expect(note).to_be_visible()
    assert page.evaluate("document.documentElement.scrollWidth") <= width
    png = shots / f"image-off-results-{width}.png"
    page.screenshot(path=str(png))
    _assert_png(png)
    assert page_errors == []
    page.context.close()


def test_no_good_match_is_said_and_weak_results_are_set_apart(
    server: str, browser: Any, shots: Path, page_errors: list[str]
) -> None:
    nonsense = "zzzxqv qwvprt"
    api = _get_json(server + "/api/search?q=zzzxqv+qwvprt&k=24")
    assert api["no_good_match"] is True and api["hits"]
    found = _get_json(server + "/api/search?q=SQLite+database+engine&k=24")
    assert found["no_good_match"] is False

    page = _new_page(browser, page_errors, 1280, 900)
    page.goto(server + "/")
    title = page.locator("#results-title")
    generation = _generation(page)
    page.locator("#q").fill(nonsense)
    page.locator("#q").press("Enter")
    _wait_for_results(page, generation, "text")
    expect(title).to_have_text(f"No good match for “{nonsense}” — closest results")
    assert title.get_attribute("data-no-good-match") == "true"
    # every closest result is shown, all of them quieter, no divider (nothing is good)
    assert page.locator(".card").count() == len(api["hits"])
    assert page.locator(".card-weak").count() == len(api["hits"])
    assert page.locator(".weak-divider").count() == 0
    page.screenshot(path=str(shots / "no-good-match.png"))

    # a query the index answers: a plain heading, weak cards exactly where the API says,
    # and one divider before the first weak result that follows a good one
    generation = _generation(page)
    page.locator("#q").fill("SQLite database engine")
    page.locator("#q").press("Enter")
    _wait_for_results(page, generation, "text")
    expect(title).not_to_contain_text("No good match")
    assert title.get_attribute("data-no-good-match") == "false"
    weak = [h["weak"] for h in found["hits"]]
    shown = ["card-weak" in (c.get_attribute("class") or "") for c in page.locator(".card").all()]
    assert shown == weak
    good_then_weak = any(weak[i] and not all(weak[:i]) for i in range(len(weak)))
    assert page.locator(".weak-divider").count() == (1 if good_then_weak else 0)
    assert page_errors == []
    page.context.close()
