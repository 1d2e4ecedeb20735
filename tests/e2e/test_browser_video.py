"""Video segments in the web page, end to end: `polylens serve` on a folder with a WebM
video of three shots (tests/_videos.py), driven in headless Chromium. A video hit's card
shows its keyframe and time range; its detail view plays the file from the segment's
start, pauses once at its end, and lets go of the file when it closes.

Same needs as test_browser.py (Debian's Chromium, the Playwright package), whose helpers
and fixtures this reuses. The video is VP8 (libvpx): Debian's Chromium has no H.264.
Screenshots go to $POLYLENS_SCREENSHOTS, or to the test's tmp dir.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

# test_browser skips this module too when Chromium or Playwright is missing
import test_browser
from test_browser import (
    SAMPLES,
    _assert_png,
    _env,
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

pytest.importorskip("av", reason="the test videos are written with PyAV: pip install av")
pytest.importorskip("skimage", reason="the test videos show scikit-image's photos")

QUERY = "astronaut"
# BM25 has nothing to read in a video: the fake image model finds its segments
MODELS = ["--image-model", "fake-clip", "--text-model", "none", "--no-ocr"]
VIDEO = "walk.webm"
SHOT_SECONDS = 2.0
TIME_RANGE = re.compile(r"^\d\d:\d\d–\d\d:\d\d$")


@pytest.fixture(scope="module")
def video_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    from _videos import Shot, write_video

    root = tmp_path_factory.mktemp("video")
    corpus = root / "corpus"
    corpus.mkdir()
    # three distinct photos, cut hard: three segments of two seconds
    shots = [Shot(SHOT_SECONDS, name) for name in ("astronaut", "coffee", "chelsea")]
    write_video(corpus / VIDEO, shots, codec="libvpx")
    shutil.copy(SAMPLES / "photos" / "cat.jpg", corpus / "cat.jpg")
    (corpus / "notes.txt").write_text("Notes on an astronaut, coffee and a cat.\n", "utf-8")
    command = ["index", str(corpus), "--index", str(root / "idx"), *MODELS, "--quiet"]
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


def _segments(server: str) -> list[dict[str, Any]]:
    """The video's segments as the API finds them for the page's query, in time order."""
    hits = _get_json(f"{server}/api/search?q={QUERY}&k=24")["hits"]
    videos = sorted((h for h in hits if h["kind"] == "video"), key=lambda h: h["start"])
    assert len(videos) == 3, hits
    return videos


def _search(page: Any, server: str, address: str = "/") -> None:
    page.goto(server + address)
    generation = _generation(page)
    page.locator("#q").fill(QUERY)
    page.locator("#q").press("Enter")
    _wait_for_results(page, generation, "text")


def _video_state(page: Any) -> dict[str, Any]:
    return page.evaluate(
        """() => {
            const v = document.querySelector('#detail-video');
            return { hidden: v.hidden, src: v.getAttribute('src'), currentSrc: v.currentSrc,
                     poster: v.getAttribute('poster'), time: v.currentTime, paused: v.paused,
                     ready: v.readyState, network: v.networkState, state: v.dataset.state,
                     controls: v.controls, preload: v.preload, duration: v.duration };
        }"""
    )


def _wait_at_start(page: Any, item_id: str, start: float) -> None:
    """Until the detail view shows ``item_id``'s video, loaded and standing at ``start``
    with the frame there decoded."""
    page.wait_for_function(
        """([id, start]) => {
            const d = document.querySelector('#detail');
            const v = document.querySelector('#detail-video');
            return d.open && d.dataset.id === id && !v.hidden && v.readyState >= 2
                && !v.seeking && Math.abs(v.currentTime - start) < 0.5;
        }""",
        arg=[item_id, start],
    )


def test_a_video_segment_plays_from_its_start_and_pauses_at_its_end(
    video_server: str, browser: Any, shots: Path, page_errors: list[str]
) -> None:
    segments = _segments(video_server)
    middle = segments[1]  # starts past 0 and ends before the file does
    start, end = middle["start"], middle["end"]
    assert start > 0 and end < segments[-1]["end"], segments
    status = _get_json(video_server + "/api/status")
    assert status["items"]["video"] == 3, status["items"]

    page = _new_page(browser, page_errors, 1280, 900)
    video_requests: list[str] = []
    page.on("request", lambda r: video_requests.append(r.url) if "/video" in r.url else None)
    _search(page, video_server)

    # the Videos filter is there, with its count
    pill = page.locator("#kind-video-pill")
    expect(pill).to_be_visible()
    expect(pill).to_contain_text("Videos")
    expect(pill.locator(".count")).to_have_text("3")

    # -- the cards: keyframe, time badge, play mark, "walk.webm @ 00:02–00:04"
    cards = page.locator('.card[data-kind="video"]')
    expect(cards).to_have_count(3)
    card = page.locator(f'.card[data-id="{middle["id"]}"]')
    badge = card.locator(".badge-time")
    expect(badge).to_have_text(TIME_RANGE)
    expect(badge).to_have_text("00:02–00:04")
    expect(card.locator(".card-name")).to_have_text(f"{VIDEO} @ 00:02–00:04")
    expect(card.locator(".card-sub")).to_have_text("Video")
    expect(card.locator(".play-mark")).to_be_visible()
    assert card.locator(".play-mark").get_attribute("aria-hidden") == "true"
    assert card.get_attribute("aria-label") == f"{VIDEO}, video 00:02–00:04"
    page.wait_for_function(  # the keyframes (and the photo) have loaded as thumbnails
        """() => Array.from(document.querySelectorAll('.card img'))
            .every((i) => i.complete && i.naturalWidth > 0 && i.src.includes('/thumbnail'))"""
    )
    assert video_requests == [], "the results grid loaded a video file"
    page.screenshot(path=str(shots / "video-results.png"))

    # -- the detail view: a <video> at the segment's start, not the picture
    card.click()
    detail = page.locator("#detail")
    expect(detail).to_be_visible()
    _wait_at_start(page, middle["id"], start)
    video = _video_state(page)
    assert video["controls"] and video["preload"] == "metadata", video
    assert video["paused"], "the segment started playing by itself"
    assert re.search(r"/api/items/[^/]+/video#t=2(\.0+)?,4(\.0+)?$", video["src"]), video
    assert "/thumbnail" in (video["poster"] or ""), video
    assert video["duration"] == pytest.approx(3 * SHOT_SECONDS, abs=0.3), video
    assert video["state"] == "ready", video
    expect(page.locator("#detail-image-link")).to_be_hidden()
    expect(page.locator("#detail-title")).to_have_text(f"{VIDEO} — 00:02–00:04")
    expect(page.locator("#detail-time")).to_have_text("00:02–00:04")
    expect(page.locator("#detail-kind")).to_have_text("Video")
    expect(page.locator("#detail-path")).to_have_text(re.compile(rf"/{re.escape(VIDEO)}$"))
    expect(page.locator("#error")).to_have_text("")
    # the browser read the file with Range requests (the route answers 206)
    ranged = page.evaluate(
        """async (url) => {
            const r = await fetch(url, { headers: { Range: 'bytes=0-99' } });
            return [r.status, (await r.arrayBuffer()).byteLength, r.headers.get('content-type')];
        }""",
        video["currentSrc"].split("#")[0],
    )
    assert ranged == [206, 100, "video/webm"], ranged
    page.screenshot(path=str(shots / "video-detail.png"))

    # -- play (muted: no user gesture is needed): it pauses once, at the segment's end
    page.evaluate("() => { const v = document.querySelector('#detail-video'); v.muted = true; }")
    page.evaluate("() => document.querySelector('#detail-video').play()")
    page.wait_for_function(
        "() => document.querySelector('#detail-video').dataset.state === 'segment-end'",
        timeout=15_000,
    )
    page.wait_for_function("() => document.querySelector('#detail-video').paused")
    video = _video_state(page)
    assert end - 0.3 <= video["time"] <= end + 0.5, (video, end)
    # pressing play again goes on past the end
    page.evaluate("() => document.querySelector('#detail-video').play()")
    page.wait_for_function(
        "(end) => { const v = document.querySelector('#detail-video');"
        " return !v.paused && v.currentTime > end + 0.4; }",
        arg=end,
        timeout=15_000,
    )

    # -- moving to the next result: the old segment stops; a video starts at its own start
    page.locator("#detail-next").click()
    next_id = page.evaluate("() => document.querySelector('#detail').dataset.id")
    assert next_id != middle["id"]
    following = next((s for s in segments if s["id"] == next_id), None)
    if following is not None:
        _wait_at_start(page, next_id, following["start"])
        assert _video_state(page)["paused"]
    else:
        video = _video_state(page)
        assert video["hidden"] and video["src"] is None and video["paused"], video

    # -- closing the view unloads the video
    page.keyboard.press("Escape")
    expect(detail).to_be_hidden()
    video = _video_state(page)
    assert video["hidden"] and video["src"] is None and video["poster"] is None, video
    assert video["paused"], video
    # NETWORK_EMPTY: it let go of the file (load() without a source settles a task later)
    page.wait_for_function("() => document.querySelector('#detail-video').networkState === 0")

    assert page_errors == []
    page.context.close()
    _assert_png(shots / "video-results.png")
    _assert_png(shots / "video-detail.png")


def test_the_filter_and_the_token_reach_videos(
    video_server: str, browser: Any, page_errors: list[str]
) -> None:
    segments = _segments(video_server)
    first = segments[0]
    token = "video-browser-token-0123456789"
    page = _new_page(browser, page_errors, 1024, 800)
    # a token in the page's address goes into the video's too (a <video> sends no header);
    # this server needs none, so the route's own check is tested in test_video_http.py
    _search(page, video_server, f"/?token={token}")

    # only videos
    for other in ("Images", "Text", "PDF pages"):
        generation = _generation(page)
        page.locator(".pill", has_text=other).click()
        _wait_for_results(page, generation, "text")
    kinds = page.locator(".card").evaluate_all("cs => cs.map((c) => c.dataset.kind)")
    assert sorted(kinds) == ["video"] * 3, kinds
    assert page.url.endswith("&kind=video"), page.url  # a reload keeps the filter
    # no kind at all is refused; everything but videos
    generation = _generation(page)
    page.locator(".pill", has_text="Videos").click()
    expect(page.locator("#error")).to_contain_text("Choose at least one kind")
    assert _generation(page) == generation
    for other in ("Images", "Text"):
        generation = _generation(page)
        page.locator(".pill", has_text=other).click()
        _wait_for_results(page, generation, "text")
    kinds = page.locator(".card").evaluate_all("cs => cs.map((c) => c.dataset.kind)")
    assert kinds and "video" not in kinds, kinds

    # the first segment, found with videos back in, carries the token in its address
    generation = _generation(page)
    page.locator(".pill", has_text="Videos").click()
    _wait_for_results(page, generation, "text")
    page.locator(f'.card[data-id="{first["id"]}"]').click()
    _wait_at_start(page, first["id"], first["start"])
    src = _video_state(page)["src"]
    assert re.search(rf"/video\?token={token}#t=0(\.0+)?,2(\.0+)?$", src), src
    page.keyboard.press("Escape")
    assert page_errors == []
    page.context.close()
