"""The real server under concurrent load, on loopback, bounded in requests and in time.

``polylens serve`` runs in a subprocess on 127.0.0.1 over an index of the sample data
(fake encoders, no OCR: it builds in seconds and still has image embeddings). 50 clients
send 20 requests each, all at once: text searches (GET and POST), image uploads (alone
and with text), item, thumbnail and "more like this" fetches, status reads, while a
re-index job adds 30 new files to the same index. Every request must succeed with a
well-formed answer; how many were served and the p50/p99 latencies are reported, not
asserted (two shared cores make timings noise).

A second test checks the server loads its models once when the first searches arrive
together (the engine's lazy loading has no lock of its own).
"""

from __future__ import annotations

import asyncio
import io
import json
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("fastapi", reason="the server extra is needed: pip install 'polylens[server]'")
pytest.importorskip("uvicorn", reason="the server extra is needed: pip install 'polylens[server]'")
httpx = pytest.importorskip("httpx", reason="the load clients need httpx: pip install httpx")

from conftest import FAST, show  # noqa: E402

from polylens.engine import open_index  # noqa: E402

pytestmark = pytest.mark.slow

CLIENTS = 50
REQUESTS_PER_CLIENT = 20
DEADLINE_S = 240.0  # the whole load, however slow the machine; requests left are not sent
NEW_FILES = 30
QUERIES = ["euro", "coins and banknotes", "cat", "coffee", "SQLite", "hacker", "astronaut"]


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _jpeg(seed: int, size: tuple[int, int] = (80, 60)) -> bytes:
    pixels = np.random.default_rng(seed).integers(0, 255, (size[1], size[0], 3), dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, format="JPEG")
    return buf.getvalue()


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory, samples_dir: Path) -> Iterator[dict]:
    """``polylens serve`` on a free loopback port; the corpus and index it serves."""
    root = tmp_path_factory.mktemp("load")
    corpus = root / "corpus"
    shutil.copytree(samples_dir, corpus, ignore=shutil.ignore_patterns(".polylensignore"))
    with open_index(root / "idx", **FAST) as idx:
        assert idx.add([corpus]).failed == 0
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    for _attempt in range(3):  # another process may take the free port before the server
        port = _free_port()
        proc = subprocess.Popen(
            [sys.executable, "-m", "polylens", "serve", "--index", str(root / "idx")]
            + ["--host", "127.0.0.1", "--port", str(port)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        base = f"http://127.0.0.1:{port}"
        started = time.monotonic()
        while proc.poll() is None and time.monotonic() - started < 60:
            try:
                if httpx.get(f"{base}/api/health", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.2)
        if proc.poll() is None:
            break
    else:
        pytest.fail(f"the server did not start: {proc.stderr.read().decode()[-2000:]}")
    try:
        yield {"base": base, "corpus": corpus, "proc": proc}
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=20)


class Load:
    """Latencies and failures of one load run."""

    def __init__(self) -> None:
        self.latencies: list[float] = []
        self.errors: list[str] = []
        self.by_route: Counter[str] = Counter()
        self.skipped = 0

    def summary(self) -> dict[str, Any]:
        ordered = sorted(self.latencies)

        def pct(p: float) -> float:
            return round(1000 * ordered[min(len(ordered) - 1, int(p * len(ordered)))], 1)

        return {
            "clients": CLIENTS,
            "requests_planned": CLIENTS * REQUESTS_PER_CLIENT,
            "requests_served": len(ordered),
            "requests_not_sent": self.skipped,
            "errors": len(self.errors),
            "p50_ms": pct(0.50) if ordered else None,
            "p99_ms": pct(0.99) if ordered else None,
            "max_ms": round(1000 * ordered[-1], 1) if ordered else None,
            "by_route": dict(sorted(self.by_route.items())),
        }


def _check(route: str, response: Any) -> None:
    """Raise unless ``response`` is the well-formed success ``route`` should give."""
    if response.status_code != 200:
        raise AssertionError(f"HTTP {response.status_code}: {response.text[:300]}")
    kind = response.headers.get("content-type", "")
    if route == "thumbnail":
        assert kind == "image/jpeg" and response.content[:3] == b"\xff\xd8\xff", kind
        return
    body = response.json()
    if route.startswith("search") or route == "similar":
        assert isinstance(body["hits"], list) and body["hits"], body
        assert all(Path(h["path"]).is_file() for h in body["hits"])
        scores = [h["score"] for h in body["hits"]]
        assert scores == sorted(scores, reverse=True), scores
    elif route == "item":
        assert body["id"] and body["path"], body
    elif route == "status":
        assert body["files"] >= 10, body


async def _client(
    number: int,
    http: Any,
    ids: list[str],
    pictures: list[bytes],
    load: Load,
    deadline: float,
    reindex: asyncio.Event,
) -> None:
    for step in range(REQUESTS_PER_CLIENT):
        if time.monotonic() > deadline:
            load.skipped += REQUESTS_PER_CLIENT - step
            return
        n = number * REQUESTS_PER_CLIENT + step
        query = QUERIES[n % len(QUERIES)]
        item = ids[n % len(ids)]
        slot = n % 20
        if number == CLIENTS // 2 and step == 2:
            reindex.set()  # the re-index starts while every client is busy
        if slot < 7:
            route, call = "search-get", http.get("/api/search", params={"q": query, "k": 10})
        elif slot == 7:
            params = [("q", query), ("kind", "page"), ("kind", "image"), ("offset", "2")]
            route, call = "search-get", http.get("/api/search", params=params)
        elif slot < 10:
            route, call = "search-post", http.post("/api/search", json={"q": query, "k": 5})
        elif slot < 14:
            data = {"k": "8"} if slot % 2 else {"k": "8", "q": query}
            files = {"file": (f"q{n}.jpg", pictures[n % len(pictures)], "image/jpeg")}
            route, call = "search-image", http.post("/api/search/image", files=files, data=data)
        elif slot < 16:
            route, call = "item", http.get(f"/api/items/{item}")
        elif slot < 18:
            route, call = "thumbnail", http.get(f"/api/items/{item}/thumbnail?size=128")
        elif slot == 18:
            route, call = "similar", http.get(f"/api/items/{item}/similar", params={"k": 5})
        else:
            route, call = "status", http.get("/api/status")
        started = time.monotonic()
        try:
            _check(route, await call)
        except Exception as exc:  # noqa: BLE001 - every failure is counted and reported
            load.errors.append(f"{route} #{n}: {type(exc).__name__}: {exc}"[:500])
        else:
            load.latencies.append(time.monotonic() - started)
            load.by_route[route] += 1


async def _run_load(base: str, ids: list[str], pictures: list[bytes]) -> tuple[Load, Any]:
    load = Load()
    reindex = asyncio.Event()
    limits = httpx.Limits(max_connections=CLIENTS, max_keepalive_connections=CLIENTS)
    async with httpx.AsyncClient(base_url=base, timeout=120, limits=limits) as http:
        deadline = time.monotonic() + DEADLINE_S

        async def start_reindex() -> Any:
            await reindex.wait()
            return await http.post("/api/reindex")

        job = asyncio.create_task(start_reindex())
        clients = [_client(i, http, ids, pictures, load, deadline, reindex) for i in range(CLIENTS)]
        await asyncio.gather(*clients)
        return load, await job


def test_fifty_concurrent_clients_during_a_reindex(
    served: dict, samples_dir: Path, request: pytest.FixtureRequest
) -> None:
    base = served["base"]
    params = [("q", "a"), ("k", "50"), ("kind", "image"), ("kind", "page")]
    hits = httpx.get(f"{base}/api/search", params=params, timeout=60).json()["hits"]
    pictured = sorted(hit["id"] for hit in hits)  # items with a thumbnail
    assert len(pictured) >= 10, hits
    files_before = httpx.get(f"{base}/api/status", timeout=30).json()["files"]
    # New files for the re-index to pick up while the clients search.
    extra = served["corpus"] / "extra"
    extra.mkdir()
    for i in range(NEW_FILES):
        (extra / f"new-{i}.jpg").write_bytes(_jpeg(1000 + i))
    pictures = [(samples_dir / "photos" / n).read_bytes() for n in ("cat.jpg", "coffee.jpg")]
    pictures += [_jpeg(i, (64 + 16 * i, 48)) for i in range(4)]

    began = time.monotonic()
    load, job_response = asyncio.run(_run_load(base, pictured, pictures))
    elapsed = time.monotonic() - began
    report = {**load.summary(), "seconds": round(elapsed, 1)}
    report["requests_per_s"] = round(report["requests_served"] / elapsed, 1)

    assert job_response.status_code == 202, job_response.text
    job_id = job_response.json()["id"]
    for _ in range(1200):  # at most two minutes for the re-index to finish
        job = httpx.get(f"{base}/api/jobs/{job_id}", timeout=30).json()
        if job["state"] != "running":
            break
        time.sleep(0.1)
    report["reindex"] = {k: job.get(k) for k in ("state", "files_done", "items")}
    line = "server load: " + json.dumps(report)
    show(request, line)

    assert not load.errors, f"{len(load.errors)} failed requests, e.g. {load.errors[:5]}"
    assert load.skipped == 0, f"{load.skipped} requests not sent before the {DEADLINE_S}s deadline"
    assert report["requests_served"] == CLIENTS * REQUESTS_PER_CLIENT
    assert job["state"] == "done", job
    assert job["summary"]["added"] == NEW_FILES, job["summary"]
    status = httpx.get(f"{base}/api/status", timeout=30).json()
    assert status["files"] == files_before + NEW_FILES
    found = httpx.post(
        f"{base}/api/search/image",
        files={"file": ("q.jpg", (extra / "new-7.jpg").read_bytes(), "image/jpeg")},
        data={"k": "1"},
        timeout=60,
    ).json()["hits"]
    assert found[0]["path"].endswith("new-7.jpg")
    assert served["proc"].poll() is None, "the server died under load"


def test_concurrent_first_searches_load_each_model_once(tmp_path: Path, samples_dir: Path) -> None:
    from fastapi.testclient import TestClient

    from polylens.server.app import create_app

    with open_index(tmp_path / "idx", **FAST) as idx:
        idx.add([samples_dir / "photos", samples_dir / "text"])
    app = create_app(tmp_path / "idx", warm=False)
    registry = app.state.index._registry  # noqa: SLF001
    loads: Counter[str] = Counter()

    def counting(name: str, real: Any) -> Any:
        def load(*args: Any, **kwargs: Any) -> Any:
            loads[name] += 1
            time.sleep(0.3)  # a slow model load widens the race window
            return real(*args, **kwargs)

        return load

    registry.load_image_text = counting("image", registry.load_image_text)
    registry.load_text = counting("text", registry.load_text)
    barrier = threading.Barrier(12)
    statuses: list[int] = []

    with TestClient(app) as client:

        def first_search(i: int) -> None:
            barrier.wait(timeout=30)
            if i % 3 == 0:
                files = {"file": ("q.jpg", _jpeg(i), "image/jpeg")}
                statuses.append(client.post("/api/search/image", files=files).status_code)
            else:
                statuses.append(client.get("/api/search", params={"q": "cat"}).status_code)

        threads = [threading.Thread(target=first_search, args=(i,)) for i in range(12)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=120)
    assert statuses == [200] * 12
    assert loads == {"image": 1, "text": 1}


def test_engine_loads_each_model_once_under_concurrent_first_searches(
    tmp_path: Path, samples_dir: Path
) -> None:
    with open_index(tmp_path / "idx", **FAST) as idx:
        idx.add([samples_dir / "text"])
    with open_index(tmp_path / "idx", create=False) as idx:
        loads: Counter[str] = Counter()
        real = idx._registry.load_text  # noqa: SLF001

        def slow_load(*args: Any, **kwargs: Any) -> Any:
            loads["text"] += 1
            time.sleep(0.3)
            return real(*args, **kwargs)

        idx._registry.load_text = slow_load  # noqa: SLF001
        barrier = threading.Barrier(8)

        def search() -> None:
            barrier.wait(timeout=30)
            idx.search("sqlite", k=3)

        threads = [threading.Thread(target=search) for _ in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
    assert loads["text"] == 1
