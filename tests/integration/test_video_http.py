"""Video segments over HTTP, in process: search hits with their time ranges, the segment's
keyframe as its thumbnail, and the video file itself streamed with Range requests (what a
``<video>`` element needs to seek to a segment's start).

The videos are real (tests/_videos.py: scikit-image photos joined by hard cuts); the
models are the fake ones, so the index is built in about a second.
"""

from __future__ import annotations

import io
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

pytest.importorskip("fastapi", reason="the server extra is needed: pip install 'polylens[server]'")
pytest.importorskip("httpx", reason="the test client needs httpx: pip install httpx")
pytest.importorskip("av", reason="video needs PyAV: pip install av")

from _asgi import raw_request  # noqa: E402
from _videos import Shot, write_video  # noqa: E402
from fastapi.testclient import TestClient  # noqa: E402

from polylens.engine import open_index  # noqa: E402
from polylens.server.app import create_app  # noqa: E402
from polylens.server.routes import video_type  # noqa: E402

MODELS = dict(image_model="fake-clip", text_model="none", ocr=False)
SHOTS = [Shot(2.0, "astronaut"), Shot(2.0, "coffee")]
TOKEN = "video-test-token-0123456789"
# each container's file name and the media type it is served with
CLIPS = {"clip.mp4": "video/mp4", "clip.webm": "video/webm", "clip.mkv": "video/x-matroska"}


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory, samples_dir: Path) -> dict[str, Any]:
    root = tmp_path_factory.mktemp("video-http")
    corpus = root / "corpus"
    corpus.mkdir()
    write_video(corpus / "clip.mp4", SHOTS)
    write_video(corpus / "clip.webm", [Shot(1.0, "rocket"), Shot(1.0, "chelsea")])
    write_video(corpus / "clip.mkv", [Shot(1.0, "camera"), Shot(1.0, "hubble_deep_field")])
    shutil.copy(samples_dir / "photos" / "cat.jpg", corpus / "cat.jpg")
    (corpus / "note.txt").write_text("Notes about the astronaut and the coffee.\n", "utf-8")
    with open_index(root / "idx", **MODELS) as idx:
        summary = idx.add([corpus])
        assert summary.failed == 0, summary
        hits = idx.search("astronaut", k=50)
    ids: dict[str, list[str]] = {}
    for hit in hits:
        ids.setdefault(Path(hit.path).name, []).append(hit.id)
    return {"root": root, "corpus": corpus, "index": root / "idx", "ids": ids}


@pytest.fixture(scope="module")
def client(site: dict[str, Any]) -> Iterator[TestClient]:
    with TestClient(create_app(site["index"], warm=False)) as c:
        yield c


def _video_hits(client: TestClient, **params: Any) -> list[dict[str, Any]]:
    r = client.get("/api/search", params={"q": "astronaut", "kind": "video", "k": 50, **params})
    assert r.status_code == 200, r.text
    return r.json()["hits"]


def _segment(client: TestClient, name: str = "clip.mp4", *, later: bool = True) -> dict[str, Any]:
    """A video hit of ``name``: the one that starts latest (``later``) or at 0."""
    hits = [h for h in _video_hits(client) if Path(h["path"]).name == name]
    assert hits, name
    return max(hits, key=lambda h: h["start"]) if later else min(hits, key=lambda h: h["start"])


def _error(r: Any, status: int) -> dict[str, str]:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/json")
    body = r.json()
    assert set(body) == {"error", "detail"} and body["error"] and body["detail"], body
    return body


def test_video_hits_carry_their_time_range(client: TestClient) -> None:
    hits = _video_hits(client)
    assert hits and {h["kind"] for h in hits} == {"video"}
    for hit in hits:
        assert hit["page"] is None and hit["chunk"] is None
        assert isinstance(hit["start"], float) and isinstance(hit["end"], float), hit
        assert 0 <= hit["start"] < hit["end"], hit
    # the two shots of clip.mp4 are two segments, cut where the shots change
    mp4 = sorted((h["start"], h["end"]) for h in hits if h["path"].endswith("clip.mp4"))
    assert len(mp4) == 2, mp4
    assert mp4[0][0] == 0.0 and mp4[0][1] == pytest.approx(2.0, abs=0.15), mp4
    assert mp4[1][0] == pytest.approx(2.0, abs=0.15) and mp4[1][1] == pytest.approx(4.0, abs=0.15)
    # other kinds say null; the POST search says the same
    other = client.get("/api/search", params=[("q", "astronaut"), ("kind", "image")]).json()
    assert other["hits"] and all(h["start"] is None and h["end"] is None for h in other["hits"])
    posted = client.post("/api/search", json={"q": "astronaut", "kind": ["video"], "k": 50})
    assert [(h["id"], h["start"], h["end"]) for h in posted.json()["hits"]] == [
        (h["id"], h["start"], h["end"]) for h in hits
    ]


def test_a_video_item_has_its_time_range(client: TestClient) -> None:
    hit = _segment(client)
    item = client.get(f"/api/items/{hit['id']}").json()
    assert item["kind"] == "video" and item["page"] is None
    assert (item["start"], item["end"]) == (hit["start"], hit["end"])
    assert (item["width"], item["height"]) == (320, 180)
    photo = client.get(f"/api/items/{_segment_of_kind(client, 'image')}").json()
    assert photo["start"] is None and photo["end"] is None


def _segment_of_kind(client: TestClient, kind: str) -> str:
    hits = client.get("/api/search", params={"q": "astronaut", "kind": kind}).json()["hits"]
    assert hits, kind
    return hits[0]["id"]


@pytest.mark.parametrize("name", list(CLIPS))
def test_the_video_file_is_sent_whole_with_its_type(
    client: TestClient, site: dict[str, Any], name: str
) -> None:
    hit = _segment(client, name)
    data = (site["corpus"] / name).read_bytes()
    r = client.get(f"/api/items/{hit['id']}/video")
    assert r.status_code == 200
    assert r.headers["content-type"] == CLIPS[name]
    assert r.headers["accept-ranges"] == "bytes"
    assert int(r.headers["content-length"]) == len(data)
    assert r.content == data
    # played in the page, not downloaded
    assert r.headers["content-disposition"].startswith("inline")
    assert r.headers["x-content-type-options"] == "nosniff"


def test_range_requests_get_partial_content(client: TestClient, site: dict[str, Any]) -> None:
    hit = _segment(client)
    data = (site["corpus"] / "clip.mp4").read_bytes()
    size = len(data)
    url = f"/api/items/{hit['id']}/video"

    r = client.get(url, headers={"Range": "bytes=0-99"})
    assert r.status_code == 206
    assert r.content == data[:100] and len(r.content) == 100
    assert r.headers["content-range"] == f"bytes 0-99/{size}"
    assert r.headers["content-length"] == "100"
    assert r.headers["content-type"] == "video/mp4"

    # from the middle, open-ended (what a player asks for when it seeks), and the last bytes
    r = client.get(url, headers={"Range": f"bytes={size // 2}-"})
    assert r.status_code == 206 and r.content == data[size // 2 :]
    assert r.headers["content-range"] == f"bytes {size // 2}-{size - 1}/{size}"
    r = client.get(url, headers={"Range": "bytes=-50"})
    assert r.status_code == 206 and r.content == data[-50:]

    # past the end: nothing to send
    r = client.get(url, headers={"Range": f"bytes={size + 10}-{size + 20}"})
    assert r.status_code == 416
    assert r.headers["content-range"] == f"bytes */{size}"


def test_segments_of_one_file_share_it(client: TestClient) -> None:
    first, second = _segment(client, later=False), _segment(client)
    assert first["id"] != second["id"]
    a = client.get(f"/api/items/{first['id']}/video")
    b = client.get(f"/api/items/{second['id']}/video")
    assert a.status_code == b.status_code == 200 and a.content == b.content


@pytest.mark.parametrize("kind", ["image", "text"])
def test_other_kinds_have_no_video(client: TestClient, kind: str) -> None:
    item_id = _segment_of_kind(client, kind)
    body = _error(client.get(f"/api/items/{item_id}/video"), 404)
    assert body["error"] == "ItemNotFoundError"
    assert "not a video" in body["detail"] and kind in body["detail"], body


def test_an_id_not_in_the_index_is_404(client: TestClient, site: dict[str, Any]) -> None:
    body = _error(client.get("/api/items/0123456789abcdef0123456789abcdef:v0/video"), 404)
    assert body["error"] == "ItemNotFoundError"
    # an id is never a path: spelled as one, it names no item either
    item_id = _segment(client)["id"]
    for target in (
        f"/api/items/{item_id}%2F..%2F..%2Fnote.txt/video",
        f"/api/items/..%2F..%2F{site['corpus'] / 'clip.mp4'}/video",
    ):
        status, raw = raw_request(client.app, "GET", target.encode())
        assert status == 404, (target, raw[:200])
        assert raw.startswith(b'{"error":'), raw[:200]


def test_a_video_items_pictures_are_its_keyframe(client: TestClient) -> None:
    hit = _segment(client)
    r = client.get(f"/api/items/{hit['id']}/thumbnail", params={"size": 160})
    assert r.status_code == 200 and r.headers["content-type"] == "image/jpeg"
    assert r.content[:3] == b"\xff\xd8\xff"
    with Image.open(io.BytesIO(r.content)) as thumb:
        assert thumb.format == "JPEG" and max(thumb.size) == 160 and thumb.size[0] > thumb.size[1]
    # the two segments show different shots
    other = client.get(f"/api/items/{_segment(client, later=False)['id']}/thumbnail").content
    assert other != client.get(f"/api/items/{hit['id']}/thumbnail").content
    r = client.get(f"/api/items/{hit['id']}/image")
    assert r.status_code == 200 and r.headers["content-type"] == "image/jpeg"
    with Image.open(io.BytesIO(r.content)) as full:
        assert full.size == (320, 180)


def test_the_route_is_documented(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    op = spec["paths"]["/api/items/{item_id}/video"]["get"]
    assert {"video/mp4", "video/webm"} <= set(op["responses"]["200"]["content"])
    assert {"206", "404"} <= set(op["responses"])


def test_a_token_guards_the_video_and_works_in_its_address(site: dict[str, Any]) -> None:
    """A <video src> cannot send a header: the token goes in the query, as for <img>."""
    with TestClient(create_app(site["index"], token=TOKEN, warm=False)) as guarded:
        with TestClient(create_app(site["index"], warm=False)) as open_client:
            item_id = _segment(open_client)["id"]
        url = f"/api/items/{item_id}/video"
        assert _error(guarded.get(url), 401)["error"] == "Unauthorized"
        assert guarded.get(url, params={"token": "wrong"}).status_code == 401
        r = guarded.get(url, params={"token": TOKEN}, headers={"Range": "bytes=0-99"})
        assert r.status_code == 206 and len(r.content) == 100
        r = guarded.get(url, headers={"Authorization": f"Bearer {TOKEN}"})
        assert r.status_code == 200


def test_a_video_whose_file_is_gone_is_404(tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    clip = write_video(corpus / "gone.mp4", [Shot(1.0, "astronaut")])
    with open_index(tmp_path / "idx", **MODELS) as idx:
        assert idx.add([corpus]).failed == 0
        (hit,) = idx.search("astronaut", kind="video", k=5)
    clip.unlink()
    with TestClient(create_app(tmp_path / "idx", warm=False)) as c:
        body = _error(c.get(f"/api/items/{hit.id}/video"), 404)
        assert "gone" in body["detail"], body


def test_video_types_by_extension_then_by_container(tmp_path: Path) -> None:
    mp4 = write_video(tmp_path / "a.mp4", [Shot(0.5, "astronaut")])
    webm = write_video(tmp_path / "a.webm", [Shot(0.5, "astronaut")])
    mkv = write_video(tmp_path / "a.mkv", [Shot(0.5, "astronaut")])
    avi = write_video(tmp_path / "a.avi", [Shot(0.5, "astronaut")], codec="mpeg4")
    mov = write_video(tmp_path / "a.mov", [Shot(0.5, "astronaut")])
    expected = {
        mp4: "video/mp4",
        webm: "video/webm",
        mkv: "video/x-matroska",
        avi: "video/x-msvideo",
        mov: "video/quicktime",
    }
    for path, media_type in expected.items():
        assert video_type(str(path)) == media_type, path
        # the same file under a name that says nothing: its container tells
        renamed = path.with_name(path.stem + path.suffix[1:] + ".video")
        renamed.write_bytes(path.read_bytes())
        assert video_type(str(renamed)) == media_type, renamed
    (tmp_path / "x.video").write_bytes(b"not a video at all")
    assert video_type(str(tmp_path / "x.video")) == "application/octet-stream"
    assert video_type(str(tmp_path / "CAPS.MP4")) == "video/mp4"  # no need to exist
