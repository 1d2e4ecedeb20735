"""The page's Ask mode end to end: `polylens serve` on a BM25-only index of the sample
data, its model endpoint the scripted OpenAI-compatible server of tests/_fake_llm.py,
driven in headless Chromium.

Same needs as test_browser.py (Debian's Chromium, the Playwright package), whose helpers
and fixtures this reuses. Screenshots go to $POLYLENS_SCREENSHOTS, or to the test's tmp dir.
"""

from __future__ import annotations

import json
import re
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

# test_browser skips this module too when Chromium or Playwright is missing
import test_browser
from _fake_llm import FakeLLM
from test_browser import _assert_png, _build_index, _new_page, _serving, _wait_focused, expect

# its fixtures, shared
browser = test_browser.browser
page_errors = test_browser.page_errors
shots = test_browser.shots

pytestmark = pytest.mark.slow

BM25 = ["--image-model", "none", "--text-model", "none", "--no-ocr"]
EURO_QUESTION = "Which ISO currency codes do the twelve Euro countries use?"
NONSENSE = "zzzxqv qqzzvx"
# "[1" / "]" and "[1][9" / "]" fall into different deltas; [9] names no evidence
ANSWER_CHUNKS = [
    "The twelve Euro countries share the code EUR [",
    "1] for the euro; their old codes such as DEM and FRF are listed beside it [1][9",
    "]. ",
    "This last sentence of the answer cites nothing at all.",
]


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeLLM]:
    with FakeLLM(model="fake-vlm") as server:
        yield server


@pytest.fixture(scope="module")
def ask_server(tmp_path_factory: pytest.TempPathFactory, fake: FakeLLM) -> Iterator[str]:
    index = _build_index(tmp_path_factory, BM25)
    env = {"POLYLENS_LLM_URL": fake.url, "POLYLENS_LLM_MODEL": "fake-vlm"}
    with _serving(index, tmp_path_factory, env=env) as base:
        yield base


def _generation(page: Any) -> str:
    return page.locator("#ask").get_attribute("data-generation") or "0"


def _ask(page: Any, question: str, state: str = "done") -> None:
    """Ask from the box (in Ask mode) and wait until that answer reaches ``state``."""
    generation = _generation(page)
    page.locator("#q").fill(question)
    page.locator("#q").press("Enter")
    page.wait_for_function(
        """([gen, state]) => {
            const ask = document.querySelector('#ask');
            return ask.dataset.generation !== gen && ask.dataset.state === state;
        }""",
        arg=[generation, state],
    )


def _ask_mode(page: Any) -> None:
    page.locator(".mode", has_text="Ask").click()
    expect(page.locator("#ask")).to_be_visible()
    expect(page.locator("#q")).to_have_attribute("placeholder", re.compile("Ask"))


def _user_text(request: dict[str, Any]) -> str:
    return json.dumps([m for m in request["messages"] if m.get("role") == "user"])


def test_streamed_answer_links_its_citations_to_the_evidence(
    ask_server: str, fake: FakeLLM, browser: Any, shots: Path, page_errors: list[str]
) -> None:
    fake.push({"text": "".join(ANSWER_CHUNKS), "chunks": ANSWER_CHUNKS, "delay": 0.3})
    asked = len(fake.requests)
    page = _new_page(browser, page_errors, 1280, 900)
    page.goto(ask_server + "/")
    _ask_mode(page)
    expect(page.locator("#results")).to_be_hidden()
    expect(page.locator(".kinds")).to_be_hidden()
    # every rendering of the answer, as it streams in
    page.evaluate(
        """() => {
            window.__frames = [];
            const answer = document.querySelector('#ask-answer');
            new MutationObserver(() => window.__frames.push({
                text: answer.textContent,
                links: answer.querySelectorAll('a.cite').length,
                state: document.querySelector('#ask').dataset.state,
            })).observe(answer, { childList: true, subtree: true, characterData: true });
        }"""
    )
    _ask(page, EURO_QUESTION)
    assert len(fake.requests) == asked + 1
    assert EURO_QUESTION in _user_text(fake.requests[-1])

    # the text appeared piece by piece; the "[" of a marker not yet whole was held back
    frames = page.evaluate("window.__frames")
    early = [f for f in frames if f["state"] == "streaming" and "EUR" in f["text"]]
    assert early, frames
    assert "[" not in early[0]["text"] and early[0]["links"] == 0, early[0]
    # the links came while it streamed; the "[9" then pending was held back too
    linked = [f for f in frames if f["state"] == "streaming" and f["links"]]
    assert linked and "[" not in linked[0]["text"] and "9" not in linked[0]["text"], frames

    answer = page.locator("#ask-answer")
    expect(page.locator("#results-title")).to_have_text(f"Answer to “{EURO_QUESTION}”")
    expect(answer).to_contain_text("The twelve Euro countries share the code EUR")
    assert "[" not in answer.inner_text()  # every marker is shown as its numbers
    links = answer.locator("a.cite")
    expect(links).to_have_count(2)  # "[" + "1]" and the [1] of "[1][9" + "]"
    assert {links.nth(i).get_attribute("data-n") for i in range(2)} == {"1"}
    # [9] names no evidence: shown struck, not a link
    bad = answer.locator(".cite-bad")
    expect(bad).to_have_count(1)
    expect(bad).to_contain_text("9")
    assert bad.evaluate("e => e.tagName") != "A"
    assert answer.locator('a[data-n="9"], a[href*="ev-9"]').count() == 0
    # the sentence without a citation is flagged, quietly
    uncited = answer.locator(".uncited")
    expect(uncited).to_have_count(1)
    expect(uncited).to_have_text("This last sentence of the answer cites nothing at all.")
    assert "no citation" in (uncited.get_attribute("title") or "").lower()
    expect(page.locator("#ask-notes")).to_contain_text("1 citation named evidence")
    expect(page.locator("#ask-model")).to_contain_text("fake-vlm")
    expect(page.locator("#error")).to_have_text("")
    assert answer.get_attribute("aria-busy") == "false"

    # the evidence: card 1 is euro.pdf page 2, with its thumbnail
    card = page.locator("#ask-ev-1 .evidence-card")
    expect(card).to_contain_text("euro.pdf")
    expect(card).to_contain_text("PDF page 2")
    expect(card.locator(".evidence-sub")).to_have_text(re.compile(r"PDF page 2 · \d{1,3}%$"))
    page.wait_for_function(
        """() => {
            const img = document.querySelector('#ask-ev-1 img');
            return img && img.complete && img.naturalWidth > 0;
        }"""
    )

    # a citation leads to its card: highlighted and focused
    expect(page.locator(".evidence-item.is-highlighted")).to_have_count(0)
    links.first.click()
    expect(page.locator("#ask-ev-1")).to_have_class(re.compile(r"\bis-highlighted\b"))
    assert page.evaluate(
        "() => document.activeElement === document.querySelector('#ask-ev-1 .evidence-card')"
    )
    assert "#" not in page.url  # the link does not jump the address
    page.wait_for_timeout(400)  # the highlight's flash
    png = shots / "ask-answer.png"
    page.screenshot(path=str(png))
    _assert_png(png)

    # the card opens the item's detail view; Escape returns to the card
    page.keyboard.press("Enter")
    detail = page.locator("#detail")
    expect(detail).to_be_visible()
    expect(page.locator("#detail-path")).to_contain_text("euro.pdf")
    expect(page.locator("#detail-page")).to_have_text("2")
    assert detail.get_attribute("data-id") == card.get_attribute("data-id")
    page.keyboard.press("Escape")
    expect(detail).to_be_hidden()
    page.wait_for_function(
        "() => document.activeElement === document.querySelector('#ask-ev-1 .evidence-card')"
    )

    # the address remembers the mode and the question
    query = urllib.parse.parse_qs(urllib.parse.urlsplit(page.url).query)
    assert query == {"mode": ["ask"], "q": [EURO_QUESTION]}, page.url
    # and a phone-wide window does not scroll sideways
    page.set_viewport_size({"width": 390, "height": 800})
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    assert page_errors == []
    page.context.close()


def test_no_good_match_asks_no_model_and_modes_switch(
    ask_server: str, fake: FakeLLM, browser: Any, page_errors: list[str]
) -> None:
    asked = len(fake.requests)
    page = _new_page(browser, page_errors, 1280, 900)
    ask_requests: list[str] = []
    page.on("request", lambda r: ask_requests.append(r.url) if "/api/ask" in r.url else None)
    page.goto(ask_server + "/")
    _ask_mode(page)
    _ask(page, NONSENSE)
    title = page.locator("#results-title")
    expect(title).to_have_text(f"No good match for “{NONSENSE}”")
    assert title.get_attribute("data-no-good-match") == "true"
    verdict = page.locator("#ask-verdict")
    expect(verdict).to_be_visible()
    expect(verdict).to_contain_text("No good match")
    expect(verdict).to_contain_text("no model was asked")
    expect(page.locator("#ask-answer")).to_be_hidden()
    # the closest items, if any, are listed as such and all quieter
    items = page.locator(".evidence-card")
    if items.count():
        expect(page.locator("#ask-evidence-title")).to_have_text("No good match — closest results:")
        assert page.locator(".evidence-card.card-weak").count() == items.count()
    assert len(fake.requests) == asked, "a model was asked about a question with no good match"
    expect(page.locator("#error")).to_have_text("")

    # Search mode: the grid and the search controls come back, the answer steps aside
    page.locator(".mode", has_text="Search").click()
    expect(page.locator("#ask")).to_be_hidden()
    expect(page.locator(".kinds")).to_be_visible()
    expect(page.locator("#search-btn")).to_have_attribute("aria-label", "Search")
    page.locator("#q").fill("euro")
    page.locator("#q").press("Enter")
    page.wait_for_function(
        "() => document.querySelector('#results').dataset.state === 'done'"
        " && document.querySelectorAll('.card').length > 0"
    )
    expect(title).to_have_text(re.compile(r"results? for “euro”$"))
    assert "mode=ask" not in page.url
    # the arrow keys move between the modes; Ask shows the last answer again
    page.locator('input[name="mode"][value="search"]').focus()
    page.keyboard.press("ArrowRight")
    expect(page.locator("#ask")).to_be_visible()
    expect(title).to_have_text(f"No good match for “{NONSENSE}”")
    expect(page.locator("#search-btn")).to_have_attribute("aria-label", "Ask")

    # a reload keeps the mode and the question, and asks nothing by itself
    ask_requests.clear()
    page.reload()
    expect(page.locator("#ask")).to_be_visible()
    expect(page.locator('input[name="mode"][value="ask"]')).to_be_checked()
    expect(page.locator("#q")).to_have_value(NONSENSE)
    _wait_focused(page, "q")
    page.wait_for_timeout(300)
    assert ask_requests == []
    assert page_errors == []
    page.context.close()


def test_errors_are_shown_and_the_next_question_works(
    ask_server: str, fake: FakeLLM, browser: Any, page_errors: list[str]
) -> None:
    page = _new_page(browser, page_errors, 1024, 768)
    page.goto(ask_server + "/")
    _ask_mode(page)
    error = page.locator("#error")

    # the endpoint fails once the stream has started: an "error" event
    fake.push({"status": 500})
    _ask(page, EURO_QUESTION, state="error")
    expect(error).to_have_text(re.compile(r"^The model endpoint http://\S+ answered HTTP 500\b"))
    assert error.get_attribute("role") == "alert"
    expect(page.locator("#ask-stop")).to_be_hidden()

    # an HTTP error before any stream (no endpoint configured): its detail is shown
    detail = "ask needs a model endpoint: set POLYLENS_LLM_URL to an OpenAI-compatible server"
    body = json.dumps({"error": "EndpointNotConfiguredError", "detail": detail})
    page.route(
        "**/api/ask",
        lambda route: route.fulfill(status=503, content_type="application/json", body=body),
    )
    _ask(page, EURO_QUESTION, state="error")
    expect(error).to_have_text("A" + detail[1:] + ".")
    page.unroute("**/api/ask")

    # a new question while one streams replaces it
    slow = "This slow answer should never be seen whole because it is stopped [1]."
    fake.push({"text": slow, "chunks": 8, "delay": 1.0}, {"text": "EUR is the code [1]."})
    _ask(page, EURO_QUESTION, state="streaming")
    expect(page.locator("#ask-answer")).to_contain_text("This slow")
    expect(page.locator("#ask-stop")).to_be_visible()
    _ask(page, "What is the ISO code of the euro?")
    answer = page.locator("#ask-answer")
    expect(answer).to_have_text("EUR is the code 1.")
    expect(answer.locator("a.cite")).to_have_count(1)
    expect(error).to_have_text("")
    page.wait_for_timeout(1500)  # the old stream had chunks due: none of them shows
    expect(answer).to_have_text("EUR is the code 1.")
    assert page_errors == []
    page.context.close()


@pytest.fixture(scope="module")
def live_server(
    tmp_path_factory: pytest.TempPathFactory, live_llm: tuple[str, str]
) -> Iterator[str]:
    """`polylens serve` whose endpoint is the real `transformers serve` (tiny LLaVA)."""
    index = _build_index(tmp_path_factory, BM25)
    url, model = live_llm
    with _serving(
        index, tmp_path_factory, env={"POLYLENS_LLM_URL": url, "POLYLENS_LLM_MODEL": model}
    ) as base:
        yield base


def test_real_server_streams_over_http_and_into_the_page(
    live_server: str, live_llm: tuple[str, str], browser: Any, shots: Path, page_errors: list[str]
) -> None:
    import httpx

    # the SSE protocol over real HTTP, from a real model server that sends no [DONE]
    body = {"question": EURO_QUESTION, "stream": True}
    with httpx.stream("POST", live_server + "/api/ask", json=body, timeout=120) as response:
        assert response.status_code == 200
        frames = response.read().decode().strip().split("\n\n")
    events = [(f.split("\n")[0].removeprefix("event: "), f.split("\n", 1)[1]) for f in frames]
    kinds = [kind for kind, _ in events]
    assert kinds[0] == "evidence" and kinds[-1] == "done" and "delta" in kinds, kinds
    done = json.loads(events[-1][1].removeprefix("data: "))
    assert done["answer"] and done["model"] == live_llm[1]
    assert done["references"][0]["sent_as"] == "image+text"
    (shots / "ask-sse-live.txt").write_text("\n\n".join(frames) + "\n")

    # and the page shows the streamed answer with its evidence
    page = _new_page(browser, page_errors, 1280, 900)
    page.goto(live_server + "/")
    _ask_mode(page)
    _ask(page, EURO_QUESTION)
    expect(page.locator("#ask-answer")).not_to_have_text("")
    expect(page.locator("#ask-ev-1 .evidence-card")).to_contain_text("euro.pdf")
    expect(page.locator("#ask-model")).to_contain_text(Path(live_llm[1]).name)
    png = shots / "ask-answer-live.png"
    page.screenshot(path=str(png))
    _assert_png(png)
    assert page_errors == []
    page.context.close()
