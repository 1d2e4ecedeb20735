"""The web page end to end: `polylens serve` on the sample data, driven in headless Chromium.

Needs Debian's Chromium at /usr/bin/chromium (``apt-get install chromium``) and the
Playwright Python package (``pip install playwright``). Playwright's own browser download
(``playwright install``) is never used. Screenshots go to $POLYLENS_SCREENSHOTS, or to
the test's tmp dir.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
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


@pytest.fixture(scope="module")
def index_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
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
            *FAST,
            "--quiet",
        ],
        capture_output=True,
        text=True,
        env=_env(),
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr
    return index


@pytest.fixture(scope="module")
def server(index_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """`polylens serve` in a subprocess; yields its base URL and always stops it."""
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
            env=_env(),
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
    expect(page.locator("#status")).to_contain_text(re.compile(r"10 files, \d+ items"))

    # -- a text search
    generation = _generation(page)
    page.locator("#q").fill("euro")
    page.locator("#q").press("Enter")
    page.wait_for_selector(".card")
    _wait_for_results(page, generation, "text")
    names = page.locator(".card .card-name").all_inner_texts()
    assert any("euro.pdf" in name for name in names), names
    expect(page.locator(".card-page .badge").first).to_have_text(re.compile(r"^p\. \d+$"))
    expect(page.locator("#status")).to_contain_text(re.compile(r"\d+ results? for"))
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
    expect(page.locator(".card .score-value").first).to_have_text(re.compile(r"^\d+\.\d{4}$"))

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
