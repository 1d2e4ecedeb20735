"""The HTTP API through FastAPI's test client, on an index of the sample data."""

from __future__ import annotations

import io
import os
import shutil
import time
from pathlib import Path

import pytest
from PIL import Image

pytest.importorskip("fastapi", reason="the server extra is needed: pip install 'polylens[server]'")
pytest.importorskip("httpx", reason="the test client needs httpx: pip install httpx")

from _files import png_header_only  # noqa: E402
from fastapi.testclient import TestClient  # noqa: E402

from polylens.cli.serve_cmd import is_loopback  # noqa: E402
from polylens.engine import open_index  # noqa: E402
from polylens.server.app import create_app  # noqa: E402

FAST = dict(image_model="fake-clip", text_model="fake-text", ocr=False)


@pytest.fixture(scope="module")
def index_dir(tmp_path_factory: pytest.TempPathFactory, samples_dir: Path) -> Path:
    root = tmp_path_factory.mktemp("api")
    corpus = root / "corpus"
    shutil.copytree(samples_dir, corpus, ignore=shutil.ignore_patterns(".polylensignore"))
    outside = root / "outside.jpg"
    shutil.copy(samples_dir / "photos" / "coffee.jpg", outside)
    Image.open(outside).rotate(90, expand=True).save(outside)  # distinct content
    os.symlink(outside, corpus / "photos" / "link-out.jpg")
    with open_index(root / "idx", **FAST) as idx:
        summary = idx.add([corpus])
        assert summary.failed == 0
    return root / "idx"


@pytest.fixture(scope="module")
def client(index_dir: Path) -> TestClient:
    with TestClient(create_app(index_dir, max_upload_bytes=200_000)) as c:
        yield c


def _jpeg(size: tuple[int, int] = (64, 64)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, (30, 120, 200)).save(buf, format="JPEG")
    return buf.getvalue()


def test_health_status_and_openapi(client: TestClient) -> None:
    assert client.get("/api/health").json() == {"status": "ok"}
    status = client.get("/api/status").json()
    assert status["files"] == 12 and status["items"]["page"] == 15
    paths = client.get("/openapi.json").json()["paths"]
    assert {"/api/search", "/api/search/image", "/api/items/{item_id}/thumbnail"} <= set(paths)
    assert client.get("/").headers["content-type"].startswith("text/html")


def test_search_get_post_filters_and_pagination(client: TestClient) -> None:
    r = client.get("/api/search", params={"q": "euro", "k": 5})
    assert r.status_code == 200
    hits = r.json()["hits"]
    assert 0 < len(hits) <= 5 and hits[0]["score"] >= hits[-1]["score"]
    post = client.post("/api/search", json={"q": "euro", "k": 5}).json()["hits"]
    assert [h["id"] for h in post] == [h["id"] for h in hits]
    pages = client.get("/api/search", params=[("q", "euro"), ("kind", "page"), ("k", 50)]).json()[
        "hits"
    ]
    assert pages and {h["kind"] for h in pages} == {"page"}
    first = client.get("/api/search", params={"q": "euro", "k": 4}).json()["hits"]
    second = client.get("/api/search", params={"q": "euro", "k": 4, "offset": 4}).json()["hits"]
    both = client.get("/api/search", params={"q": "euro", "k": 8}).json()["hits"]
    assert [h["id"] for h in first + second] == [h["id"] for h in both]
    prefix = str(Path(hits[0]["path"]).parent.parent / "text")
    scoped = client.get("/api/search", params={"q": "euro", "path_prefix": prefix}).json()["hits"]
    assert scoped and all(h["path"].startswith(prefix) for h in scoped)


@pytest.mark.parametrize(
    "params, status",
    [
        ({"q": ""}, 422),
        ({"q": "x", "k": 0}, 422),
        ({"q": "x", "k": 100000}, 422),
        ({"q": "x", "kind": "audio"}, 400),
        ({}, 422),
    ],
)
def test_bad_search_requests_are_4xx_json(client: TestClient, params: dict, status: int) -> None:
    r = client.get("/api/search", params=params)
    assert r.status_code == status
    assert r.headers["content-type"].startswith("application/json")
    assert isinstance(r.json()["detail"], str) and r.json()["error"]
    if status == 400:
        assert r.json()["error"] == "InputError" and "audio" in r.json()["detail"]


def test_image_search_and_upload_limits(client: TestClient, samples_dir: Path) -> None:
    cat = (samples_dir / "photos" / "cat.jpg").read_bytes()
    hits = client.post(
        "/api/search/image", files={"file": ("cat.jpg", cat)}, data={"k": "3"}
    ).json()["hits"]
    assert hits[0]["path"].endswith("cat.jpg")
    composed = client.post(
        "/api/search/image", files={"file": ("cat.jpg", cat)}, data={"q": "coffee", "k": "3"}
    )
    assert composed.status_code == 200
    assert (
        client.post("/api/search/image", files={"file": ("big.jpg", b"x" * 300_000)}).status_code
        == 413
    )
    assert client.post("/api/search/image", files={"file": ("e.jpg", b"")}).status_code == 400
    bomb = client.post(
        "/api/search/image", files={"file": ("bomb.png", png_header_only(50_000, 50_000))}
    )
    assert bomb.status_code == 422 and "bomb" in bomb.json()["detail"]
    junk = client.post("/api/search/image", files={"file": ("junk.png", b"not an image at all")})
    assert junk.status_code == 422 and junk.json()["detail"] == "not a recognised image format"


def test_items_text_thumbnail_image_similar(client: TestClient) -> None:
    page = client.get("/api/search", params=[("q", "euro"), ("kind", "page"), ("k", 1)]).json()[
        "hits"
    ][0]
    item = client.get(f"/api/items/{page['id']}").json()
    assert item["kind"] == "page" and item["page"] == page["page"] and item["text"]
    assert client.get(f"/api/items/{page['id']}/text").text == item["text"]
    thumb = client.get(f"/api/items/{page['id']}/thumbnail", params={"size": 200})
    assert thumb.headers["content-type"] == "image/jpeg"
    assert max(Image.open(io.BytesIO(thumb.content)).size) == 200
    full = client.get(f"/api/items/{page['id']}/image")
    assert Image.open(io.BytesIO(full.content)).size[0] > 200
    photo = client.get("/api/search", params=[("q", "cat"), ("kind", "image"), ("k", 20)]).json()[
        "hits"
    ]
    cat = next(h for h in photo if h["path"].endswith("/cat.jpg"))
    original = client.get(f"/api/items/{cat['id']}/image")
    assert original.headers["content-type"] == "image/jpeg"
    assert original.content == Path(cat["path"]).read_bytes()
    similar = client.get(f"/api/items/{cat['id']}/similar", params={"k": 3}).json()["hits"]
    assert similar and cat["id"] not in {h["id"] for h in similar}
    text = client.get("/api/search", params=[("q", "SQLite"), ("kind", "text")]).json()["hits"][0]
    assert client.get(f"/api/items/{text['id']}/thumbnail").status_code == 404


@pytest.mark.parametrize(
    "item_id",
    [
        "../../etc/passwd",
        "..%2F..%2Fetc%2Fpasswd",
        "%252e%252e%252fetc%252fpasswd",
        "/etc/passwd",
        "nope",
    ],
)
def test_paths_are_never_accepted_as_ids(client: TestClient, item_id: str) -> None:
    for suffix in ("", "/image", "/thumbnail", "/text"):
        r = client.get(f"/api/items/{item_id}{suffix}")
        assert r.status_code == 404, (item_id, suffix, r.status_code)
        assert b"root:" not in r.content


def test_symlink_out_of_the_indexed_roots_is_not_served(client: TestClient) -> None:
    hits = client.get("/api/search", params=[("q", "x"), ("kind", "image"), ("k", 50)]).json()[
        "hits"
    ]
    link = next(h for h in hits if h["path"].endswith("link-out.jpg"))
    for suffix in ("/image", "/thumbnail"):
        r = client.get(f"/api/items/{link['id']}{suffix}")
        assert r.status_code == 404 and "outside the indexed folders" in r.json()["detail"]


def test_token_is_required_when_configured(index_dir: Path) -> None:
    token = "a-very-secret-token-123"
    with TestClient(create_app(index_dir, token=token, warm=False)) as c:
        assert c.get("/api/health").status_code == 200
        assert c.get("/api/search", params={"q": "euro"}).status_code == 401
        assert c.get("/api/search", params={"q": "euro", "token": "wrong"}).status_code == 401
        ok = c.get(
            "/api/search", params={"q": "euro"}, headers={"Authorization": f"Bearer {token}"}
        )
        assert ok.status_code == 200
        assert c.get("/api/status", params={"token": token}).status_code == 200


def test_loopback_detection() -> None:
    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("localhost")
    assert not is_loopback("0.0.0.0") and not is_loopback("192.168.1.5")


def test_reindex_job_reports_progress(index_dir: Path, tmp_path: Path) -> None:
    with TestClient(create_app(index_dir, warm=False)) as c:
        job = c.post("/api/reindex")
        assert job.status_code == 202
        job_id = job.json()["id"]
        for _ in range(600):
            state = c.get(f"/api/jobs/{job_id}").json()
            if state["state"] != "running":
                break
            time.sleep(0.1)
        assert state["state"] == "done", state
        assert state["summary"]["unchanged"] == 12
        assert c.get("/api/jobs/unknown").status_code == 404


def test_confidence_and_no_good_match(client: TestClient) -> None:
    """Every hit has a confidence in [0, 1]; a query nothing answers says so, one the
    index answers does not; pages past the first still report on the best hit."""
    found = client.get("/api/search", params={"q": "SQLite database engine", "k": 3}).json()
    assert found["no_good_match"] is False
    best = max(found["hits"], key=lambda h: h["confidence"])
    assert best["path"].endswith("about-sqlite.md")
    assert 0.0 <= best["confidence"] <= 1.0 and best["weak"] is False
    assert all(0.0 <= h["confidence"] <= 1.0 for h in found["hits"])

    nothing = client.get("/api/search", params={"q": "zzzxqv qwvprt", "k": 3}).json()
    assert nothing["no_good_match"] is True
    assert nothing["hits"] and nothing["hits"][0]["weak"] is True
    assert nothing["hits"][0]["confidence"] < best["confidence"]
    later = client.get("/api/search", params={"q": "zzzxqv qwvprt", "k": 3, "offset": 3}).json()
    assert later["no_good_match"] is True
