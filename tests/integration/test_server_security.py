"""Table-driven attacks on the server: path traversal in every spelling, symlink and
swap escapes out of the indexed folders, oversized bodies, and the access token.

Extends tests/integration/test_server_api.py (which covers the plain ``../`` ids, one
symlink out, one oversized upload and the basic token check) without repeating it.
"""

from __future__ import annotations

import io
import os
import shutil
from pathlib import Path
from typing import Any

import pytest
from _asgi import raw_request
from PIL import Image

pytest.importorskip("fastapi", reason="the server extra is needed: pip install 'polylens[server]'")
pytest.importorskip("httpx", reason="the test client needs httpx: pip install httpx")

from fastapi.testclient import TestClient  # noqa: E402

from polylens.engine import open_index  # noqa: E402
from polylens.server.app import FORM_OVERHEAD_BYTES, create_app  # noqa: E402

FAST = dict(image_model="fake-clip", text_model="fake-text", ocr=False)
LIMIT = 100_000
TOKEN = "t0ken-for-the-security-tests"
SECRET = b"polylens-secret-outside-the-roots"
ITEM_SUFFIXES = ("", "/text", "/image", "/thumbnail", "/similar")


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory, samples_dir: Path) -> dict[str, Any]:
    root = tmp_path_factory.mktemp("sec")
    corpus = root / "corpus"
    shutil.copytree(samples_dir / "photos", corpus / "photos")
    shutil.copytree(samples_dir / "text", corpus / "text")
    (root / "secret.txt").write_bytes(SECRET)
    with open_index(root / "idx", **FAST) as idx:
        assert idx.add([corpus]).failed == 0
        hits = idx.search("a", k=50, kind="image")
    ids = {Path(h.path).name: h.id for h in hits}
    return {"root": root, "corpus": corpus, "index": root / "idx", "ids": ids}


@pytest.fixture(scope="module")
def client(site: dict[str, Any]) -> Any:
    with TestClient(create_app(site["index"], max_upload_bytes=LIMIT, warm=False)) as c:
        yield c


def _refused(status: int, body: bytes) -> None:
    assert 400 <= status < 500, (status, body[:200])
    assert SECRET not in body and b"root:x:" not in body and b"import " not in body


TRAVERSAL_IDS = [
    "..%5C..%5C..%5Csecret.txt",  # backslashes, encoded
    "..\\..\\secret.txt",  # backslashes, raw
    "%2e%2e%2f%2e%2e%2fsecret.txt",  # encoded dots and slashes
    "%2e%2e/%2e%2e/secret.txt",
    "..%252f..%252fsecret.txt",  # double-encoded slash
    "%252e%252e%255csecret.txt",  # double-encoded dots and backslash
    "%c0%ae%c0%ae%c0%afsecret.txt",  # overlong UTF-8
    "%u002e%u002e%u2215secret.txt",  # IIS-style %u escapes
    "secret.txt%00.jpg",  # NUL byte
    "%00",
    "C:%5CWindows%5Cwin.ini",  # absolute Windows path
    "%2Fetc%2Fpasswd",  # absolute, encoded
    "file:%2F%2F%2Fetc%2Fpasswd",
    "~root",
    "....%2F%2F....%2F%2Fsecret.txt",  # filter-evasion spelling
]


@pytest.mark.parametrize("item_id", TRAVERSAL_IDS)
@pytest.mark.parametrize("suffix", ITEM_SUFFIXES)
def test_traversal_spellings_in_item_ids_are_refused(
    client: Any, item_id: str, suffix: str
) -> None:
    _refused(*raw_request(client.app, "GET", f"/api/items/{item_id}{suffix}".encode()))


@pytest.mark.parametrize(
    "target",
    [
        "/api/items/{id}/../../../secret.txt",  # unnormalised dot segments after a real id
        "/api/items/{id}%2F..%2F..%2F..%2Fsecret.txt/image",
        "/api/items/{id}/..%2F..%2Fsecret.txt",
        "/api/items/{id}%00/image",
        "/api/items/{id}%2500/image",
        "/api/items/{id}/image/../../../../secret.txt",
        "/static/../../../secret.txt",
        "/static/..%2F..%2Fapp.py",
        "/static/%2e%2e/app.py",
        "/static/%2e%2e%2f%2e%2e%2fsecret.txt",
        "/static/..%5Capp.py",
        "/static/%252e%252e/app.py",
        "/static//etc/passwd",
        "/static/app.js%00.png",
        "/static/%00",
        "/..%2F..%2Fsecret.txt",
    ],
)
def test_traversal_around_real_ids_and_static_files_is_refused(
    client: Any, site: dict[str, Any], target: str
) -> None:
    real = site["ids"]["cat.jpg"]
    _refused(*raw_request(client.app, "GET", target.replace("{id}", real).encode()))


def test_a_real_id_still_works_through_the_raw_path(client: Any, site: dict[str, Any]) -> None:
    status, body = raw_request(
        client.app, "GET", f"/api/items/{site['ids']['cat.jpg']}/image".encode()
    )
    assert status == 200 and body[:3] == b"\xff\xd8\xff"


@pytest.mark.parametrize(
    "attack",
    [
        "file-swapped-for-symlink-out",  # the indexed file is replaced by a link out
        "file-swapped-for-symlink-to-etc",
        "folder-swapped-for-symlink-out",  # the indexed folder is replaced by a link out
        "root-swapped-for-symlink-out",
    ],
)
def test_files_swapped_for_links_out_of_the_roots_are_not_served(
    tmp_path: Path, samples_dir: Path, attack: str
) -> None:
    corpus = tmp_path / "corpus"
    shutil.copytree(samples_dir / "photos", corpus / "photos")
    outside = tmp_path / "outside"
    shutil.copytree(samples_dir / "photos", outside)  # same names and content, outside
    with open_index(tmp_path / "idx", **FAST) as idx:
        idx.add([corpus])
        cat = next(h for h in idx.search("a", k=10, kind="image") if h.path.endswith("cat.jpg"))
    victim = corpus / "photos" / "cat.jpg"
    if attack == "file-swapped-for-symlink-out":
        victim.unlink()
        victim.symlink_to(outside / "cat.jpg")
    elif attack == "file-swapped-for-symlink-to-etc":
        victim.unlink()
        victim.symlink_to("/etc/passwd")
    elif attack == "folder-swapped-for-symlink-out":
        shutil.rmtree(corpus / "photos")
        (corpus / "photos").symlink_to(outside, target_is_directory=True)
    else:
        shutil.rmtree(corpus)
        corpus.symlink_to(outside, target_is_directory=True)
    with TestClient(create_app(tmp_path / "idx", warm=False)) as c:
        for suffix in ("/image", "/thumbnail"):
            r = c.get(f"/api/items/{cat.id}{suffix}")
            assert r.status_code == 404, (attack, suffix, r.status_code)
            assert "outside the indexed folders" in r.json()["detail"]
            assert b"root:" not in r.content


def _multipart(payload: bytes, boundary: str = "polylens-boundary") -> tuple[bytes, str]:
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="q.jpg"\r\n'
        "Content-Type: image/jpeg\r\n\r\n"
    ).encode()
    return head + payload + f"\r\n--{boundary}--\r\n".encode(), boundary


def _jpeg() -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (32, 32), (10, 200, 90)).save(buf, format="JPEG")
    return buf.getvalue()


@pytest.mark.parametrize(
    "case, size, declared, chunked",
    [
        ("just over the upload limit", LIMIT + 1, "true", False),
        ("over the body limit", LIMIT + FORM_OVERHEAD_BYTES + 1, "true", False),
        ("ten times the limit", 10 * LIMIT, "true", False),
        ("streamed without a length", 10 * LIMIT, None, True),
        ("a length header that lies", 10 * LIMIT, "100", False),
    ],
)
def test_oversized_uploads_are_refused_with_413(
    client: Any, case: str, size: int, declared: str | None, chunked: bool
) -> None:
    body, boundary = _multipart(_jpeg() + b"\0" * (size - len(_jpeg())))
    headers = {"content-type": f"multipart/form-data; boundary={boundary}"}
    if declared not in (None, "true"):
        headers["content-length"] = declared
    content: Any = body
    if chunked:
        content = (body[i : i + 8192] for i in range(0, len(body), 8192))
    r = client.post("/api/search/image", content=content, headers=headers)
    assert r.status_code == 413, (case, r.status_code, r.text[:200])


def test_an_upload_at_the_limit_is_accepted(client: Any) -> None:
    picture = _jpeg()
    padded = picture + b"\0" * (LIMIT - len(picture))  # trailing bytes after the JPEG end
    r = client.post("/api/search/image", files={"file": ("q.jpg", padded, "image/jpeg")})
    assert r.status_code == 200, r.text


def test_oversized_json_bodies_are_refused_with_413(client: Any) -> None:
    r = client.post("/api/search", json={"q": "x", "path_prefix": "a" * (2 * LIMIT)})
    assert r.status_code == 413


@pytest.fixture(scope="module")
def guarded(site: dict[str, Any]) -> Any:
    with TestClient(create_app(site["index"], token=TOKEN, warm=False)) as c:
        yield c


@pytest.mark.parametrize(
    "method, url",
    [
        ("GET", "/api/status"),
        ("GET", "/api/search?q=cat"),
        ("POST", "/api/search"),
        ("POST", "/api/search/image"),
        ("GET", "/api/items/{id}"),
        ("GET", "/api/items/{id}/text"),
        ("GET", "/api/items/{id}/image"),
        ("GET", "/api/items/{id}/thumbnail"),
        ("GET", "/api/items/{id}/similar"),
        ("POST", "/api/reindex"),
        ("GET", "/api/jobs/whatever"),
        ("GET", "/api/search/?q=cat"),  # trailing slash
        ("GET", "/api/nonexistent"),
    ],
)
@pytest.mark.parametrize(
    "credentials",
    [
        {},
        {"Authorization": "Bearer"},
        {"Authorization": "Bearer "},
        {"Authorization": f"Basic {TOKEN}"},
        {"Authorization": f"Bearer {TOKEN[:-1]}"},
        {"Authorization": f"Bearer {TOKEN}x"},
        {"Authorization": f"Bearer {TOKEN.upper()}"},
        {"Authorization": f"Token {TOKEN}"},
        {"Cookie": f"token={TOKEN}"},
        {"X-Token": TOKEN},
    ],
    ids=lambda c: next(iter(c.values()), "none")[:20].replace(TOKEN, "T"),
)
def test_every_api_route_needs_the_exact_token(
    guarded: Any, site: dict[str, Any], method: str, url: str, credentials: dict
) -> None:
    target = url.replace("{id}", site["ids"]["cat.jpg"])
    r = guarded.request(method, target, headers=credentials)
    assert r.status_code == 401, (target, credentials, r.status_code)
    assert r.headers["www-authenticate"] == "Bearer"
    assert b"hits" not in r.content and b"cat.jpg" not in r.content


@pytest.mark.parametrize(
    "raw_target",
    [
        "/%61pi/search?q=cat",  # percent-encoded path characters
        "/api/%73earch?q=cat",
        "/api/health/../search?q=cat",  # through the one open route
        "/api/health/..%2Fsearch?q=cat",
        "/api/search?q=cat&token=",
        "/api/search?q=cat&token=" + TOKEN + "&token=wrong",  # the last value counts
    ],
)
def test_token_check_cannot_be_bypassed_by_path_spelling(guarded: Any, raw_target: str) -> None:
    status, body = raw_request(guarded.app, "GET", raw_target.encode())
    assert status in (401, 404), (raw_target, status)
    assert b"hits" not in body


def test_health_and_page_stay_open_and_the_token_works_everywhere(
    guarded: Any, site: dict[str, Any]
) -> None:
    assert guarded.get("/api/health").status_code == 200
    assert guarded.get("/").status_code == 200
    auth = {"Authorization": f"Bearer {TOKEN}"}
    cat = site["ids"]["cat.jpg"]
    assert guarded.get(f"/api/items/{cat}/thumbnail", headers=auth).status_code == 200
    assert guarded.get(f"/api/items/{cat}/image", params={"token": TOKEN}).status_code == 200
    r = guarded.post("/api/search/image", headers=auth, files={"file": ("q.jpg", _jpeg())})
    assert r.status_code == 200


def _serve_without_binding(
    monkeypatch: pytest.MonkeyPatch, site: dict[str, Any], host: str
) -> dict[str, Any]:
    """Run `polylens serve --host HOST` with uvicorn faked; return what it was started with."""
    import uvicorn
    from typer.testing import CliRunner

    from polylens.cli import app as cli

    started: dict[str, Any] = {}
    monkeypatch.setattr(uvicorn, "run", lambda app, **kw: started.update(app=app, **kw))
    result = CliRunner().invoke(cli, ["serve", "--index", str(site["index"]), "--host", host])
    assert result.exit_code == 0, result.output
    return started


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.168.1.5", "example.org"])
def test_serving_beyond_loopback_always_has_a_token(
    monkeypatch: pytest.MonkeyPatch, site: dict[str, Any], host: str
) -> None:
    """The CLI generates a token when none is given; nothing is bound (uvicorn is faked)."""
    started = _serve_without_binding(monkeypatch, site, host)
    token = started["app"].state.token
    assert started["host"] == host and token and len(token) >= 16
    with TestClient(started["app"]) as c:
        assert c.get("/api/status").status_code == 401
        assert c.get("/api/status", params={"token": token}).status_code == 200


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "::1"])
def test_serving_on_loopback_needs_no_token(
    monkeypatch: pytest.MonkeyPatch, site: dict[str, Any], host: str
) -> None:
    started = _serve_without_binding(monkeypatch, site, host)
    assert started["app"].state.token is None


def test_a_short_token_is_refused(site: dict[str, Any]) -> None:
    from typer.testing import CliRunner

    from polylens.cli import app as cli

    result = CliRunner().invoke(cli, ["serve", "--index", str(site["index"]), "--token", "short"])
    assert result.exit_code == 2


def test_index_directory_is_never_served(client: Any, site: dict[str, Any]) -> None:
    """Nothing maps URLs to the index or corpus folders: their files are unreachable."""
    for name in ("polylens.toml", "index.json", "lance", ".lock"):
        for prefix in ("/static/", "/api/", "/"):
            status, body = raw_request(client.app, "GET", f"{prefix}{name}".encode())
            _refused(status, body)
    assert os.path.isfile(site["index"] / "polylens.toml")
