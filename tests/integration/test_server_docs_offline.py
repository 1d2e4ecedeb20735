"""The API docs at /docs work offline: the page and every asset it loads come from the
app itself (fastapi-offline's Swagger UI files), nothing from a CDN; ReDoc is off."""

from __future__ import annotations

import re
import shutil
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from urllib.parse import urljoin, urlsplit

import pytest
from _asgi import raw_request

pytest.importorskip("fastapi", reason="the server extra is needed: pip install 'polylens[server]'")
pytest.importorskip("httpx", reason="the test client needs httpx: pip install httpx")
pytest.importorskip(
    "fastapi_offline", reason="the docs assets are needed: pip install 'polylens[server]'"
)

from fastapi.testclient import TestClient  # noqa: E402

from polylens.engine import open_index  # noqa: E402
from polylens.server.app import DOCS_ASSETS_URL, create_app  # noqa: E402

FAST = dict(image_model="fake-clip", text_model="fake-text", ocr=False)
TOKEN = "t0ken-for-the-docs-offline-tests"
EXTERNAL = re.compile(rb"(?:https?:)?//[a-z0-9.-]+\.[a-z]{2,}", re.IGNORECASE)
EXPECTED_TYPE = {"script": "javascript", "stylesheet": "text/css", "icon": "image/"}


class _Refs(HTMLParser):
    """Every URL the page loads: script src, link href (by rel), img/iframe src."""

    def __init__(self) -> None:
        super().__init__()
        self.refs: list[tuple[str, str]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "script" and a.get("src"):
            self.refs.append(("script", a["src"]))
        elif tag == "link" and a.get("href"):
            rel = a.get("rel", "").lower()
            self.refs.append(("icon" if "icon" in rel else "stylesheet", a["href"]))
        elif tag in ("img", "iframe", "source", "embed") and a.get("src"):
            self.refs.append((tag, a["src"]))


def _refs(html: str) -> list[tuple[str, str]]:
    parser = _Refs()
    parser.feed(html)
    return parser.refs


@pytest.fixture(scope="module")
def index_dir(tmp_path_factory: pytest.TempPathFactory, samples_dir: Path) -> Path:
    root = tmp_path_factory.mktemp("docs")
    shutil.copytree(samples_dir / "photos", root / "corpus" / "photos")
    with open_index(root / "idx", **FAST) as idx:
        assert idx.add([root / "corpus"]).failed == 0
    return root / "idx"


@pytest.fixture(scope="module")
def client(index_dir: Path) -> Any:
    with TestClient(create_app(index_dir, token=TOKEN, warm=False)) as c:
        yield c


def test_docs_page_references_no_external_url(client: Any) -> None:
    r = client.get("/docs")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    assert b"http://" not in r.content and b"https://" not in r.content
    assert EXTERNAL.search(r.content) is None, EXTERNAL.search(r.content)
    assert b"cdn.jsdelivr" not in r.content and b"tiangolo" not in r.content
    refs = _refs(r.text)
    assert {kind for kind, _ in refs} == {"script", "stylesheet", "icon"}, refs
    for _, url in refs:
        parts = urlsplit(url)
        assert not parts.scheme and not parts.netloc, url
        assert parts.path.startswith(f"{DOCS_ASSETS_URL}/"), url
    assert "url: '/openapi.json'" in r.text


def test_every_docs_asset_is_served_by_the_app(client: Any) -> None:
    refs = _refs(client.get("/docs").text)
    for kind, url in refs:
        r = client.get(urljoin("http://testserver/docs", url))  # no token: public
        assert r.status_code == 200, (url, r.status_code)
        assert EXPECTED_TYPE[kind] in r.headers["content-type"], (url, r.headers)
        assert len(r.content) > 1000, url
    js = next(url for kind, url in refs if kind == "script")
    assert b"SwaggerUIBundle" in client.get(js).content
    css = next(url for kind, url in refs if kind == "stylesheet")
    # The stylesheet pulls in no fonts or images from elsewhere either.
    assert not re.search(rb"url\(\s*['\"]?(?:https?:)?//", client.get(css).content)


def test_openapi_json_unchanged_and_redoc_off(client: Any) -> None:
    r = client.get("/openapi.json")  # public, like FastAPI's default
    assert r.status_code == 200 and "/api/search" in r.json()["paths"]
    assert not any(p.startswith(("/docs", DOCS_ASSETS_URL)) for p in r.json()["paths"])
    assert client.get("/redoc").status_code == 404
    assert client.get("/api/status").status_code == 401  # the token still guards /api/*


def test_docs_follow_root_path(index_dir: Path) -> None:
    app = create_app(index_dir, warm=False)
    with TestClient(app, root_path="/polylens") as c:
        html = c.get("/docs").text
    refs = [url for _, url in _refs(html)]
    assert refs and all(u.startswith(f"/polylens{DOCS_ASSETS_URL}/") for u in refs), refs
    assert "url: '/polylens/openapi.json'" in html


@pytest.mark.parametrize(
    "target",
    [
        f"{DOCS_ASSETS_URL}/../core.py",
        f"{DOCS_ASSETS_URL}/../../fastapi_offline/core.py",
        f"{DOCS_ASSETS_URL}/..%2Fcore.py",
        f"{DOCS_ASSETS_URL}/%2e%2e/core.py",
        f"{DOCS_ASSETS_URL}/%2e%2e%2f%2e%2e%2fpolylens%2fserver%2fapp.py",
        f"{DOCS_ASSETS_URL}/..%5Ccore.py",
        f"{DOCS_ASSETS_URL}/%252e%252e/core.py",
        f"{DOCS_ASSETS_URL}//etc/passwd",
        f"{DOCS_ASSETS_URL}/swagger-ui.css%00.png",
        f"{DOCS_ASSETS_URL}/%00",
    ],
)
def test_docs_assets_refuse_path_traversal(client: Any, target: str) -> None:
    status, body = raw_request(client.app, "GET", target.encode())
    assert 400 <= status < 500, (status, body[:200])
    assert b"import " not in body and b"root:x:" not in body


def test_raw_requests_reach_the_docs_assets(client: Any) -> None:
    """The control for the traversal cases: the same raw request finds a real asset."""
    status, body = raw_request(client.app, "GET", f"{DOCS_ASSETS_URL}/swagger-ui.css".encode())
    assert status == 200 and b".swagger-ui" in body
