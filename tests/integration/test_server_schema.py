"""Property-based fuzzing of the HTTP API against its own OpenAPI schema (schemathesis).

Every operation gets schema-valid (positive) and, where it has inputs, schema-invalid
(negative) requests; every response must pass schemathesis' checks: no 5xx, a documented
status code and content type, a body that conforms to the documented schema, valid data
accepted and invalid data rejected. Item and job operations are also fed real ids, and
image search real pictures, so the success paths are fuzzed too, not only the 404s.

The module ends with regression tests for what the fuzzing found.
"""

from __future__ import annotations

import io
import shutil
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

pytest.importorskip("fastapi", reason="the server extra is needed: pip install 'polylens[server]'")
schemathesis = pytest.importorskip("schemathesis", reason="pip install schemathesis")

from _fake_llm import FakeLLM  # noqa: E402
from _videos import Shot, write_video  # noqa: E402
from conftest import FAST, show  # noqa: E402
from fastapi.testclient import TestClient  # noqa: E402
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from hypothesis.errors import Unsatisfiable  # noqa: E402
from schemathesis import GenerationMode  # noqa: E402
from schemathesis.checks import negative_data_rejection, positive_data_acceptance  # noqa: E402

from polylens.engine import open_index  # noqa: E402
from polylens.server.app import create_app  # noqa: E402

# Examples per operation and generation mode; 16 operations, two modes, plus real-id and
# real-image variants: about 900 requests, well under three minutes on two busy cores.
MAX_EXAMPLES = 30
OPERATIONS = [
    "GET /api/health",
    "GET /api/status",
    "GET /api/search",
    "POST /api/search",
    "POST /api/search/image",
    "GET /api/items/{item_id}",
    "GET /api/items/{item_id}/text",
    "GET /api/items/{item_id}/similar",
    "GET /api/items/{item_id}/duplicates",
    "GET /api/items/{item_id}/heatmap",
    "GET /api/items/{item_id}/thumbnail",
    "GET /api/items/{item_id}/image",
    "GET /api/items/{item_id}/video",
    "POST /api/reindex",
    "GET /api/jobs/{job_id}",
    "POST /api/ask",
]
EXAMPLES: Counter[str] = Counter()


def _jpeg(size: tuple[int, int], color: tuple[int, int, int]) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, color).save(buf, format="JPEG")
    return buf.getvalue()


@pytest.fixture(scope="module")
def llm() -> Iterator[FakeLLM]:
    """POST /api/ask is fuzzed with a model endpoint set: a scripted one that answers."""
    with FakeLLM(default={"text": "The answer is in the first item [1]."}) as fake:
        with pytest.MonkeyPatch.context() as patch:
            patch.setenv("POLYLENS_LLM_URL", fake.url)
            patch.setenv("POLYLENS_LLM_MODEL", "fake-vlm")
            yield fake


@pytest.fixture(scope="module")
def api(
    tmp_path_factory: pytest.TempPathFactory, samples_dir: Path, llm: FakeLLM
) -> Iterator[dict[str, Any]]:
    root = tmp_path_factory.mktemp("schema")
    shutil.copytree(samples_dir, root / "corpus")
    write_video(root / "corpus" / "clip.mp4", [Shot(1.0, "astronaut"), Shot(1.0, "coffee")])
    with open_index(root / "idx", **FAST) as idx:
        assert idx.add([root / "corpus"]).failed == 0
        kinds = ("image", "page", "text", "video")
        ids = sorted({h.id for kind in kinds for h in idx.search("a", k=50, kind=kind)})
    app = create_app(root / "idx", warm=False, max_upload_bytes=200_000)
    with TestClient(app) as client:
        job_id = client.post("/api/reindex").json()["id"]
        for _ in range(300):
            if client.get(f"/api/jobs/{job_id}").json()["state"] != "running":
                break
            time.sleep(0.05)
        yield {
            "schema": schemathesis.openapi.from_asgi("/openapi.json", app),
            "ids": ids,
            "job_id": job_id,
        }


@pytest.fixture(scope="module", autouse=True)
def _report(request: pytest.FixtureRequest) -> Iterator[None]:
    yield
    if EXAMPLES:
        line = f"schemathesis: {sum(EXAMPLES.values())} examples over {len(EXAMPLES)} runs"
        show(request, line)


def _fuzz(strategy: Any, key: str, excluded: list[Any] | None = None) -> None:
    @given(case=strategy)
    @settings(
        max_examples=MAX_EXAMPLES,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    def run(case: Any) -> None:
        EXAMPLES[key] += 1
        case.call_and_validate(excluded_checks=excluded or [])

    run()


def test_the_fuzzed_operations_are_every_operation(api: dict[str, Any]) -> None:
    found = {op.ok().label for op in api["schema"].get_all_operations()}
    assert found == set(OPERATIONS)


@pytest.mark.parametrize("mode", list(GenerationMode), ids=lambda m: m.value)
@pytest.mark.parametrize("label", OPERATIONS)
def test_operation_conforms_to_schema(api: dict[str, Any], label: str, mode: Any) -> None:
    operation = api["schema"].find_operation_by_label(label)
    excluded = []
    if label == "POST /api/search/image" and mode is GenerationMode.POSITIVE:
        # The schema says "binary"; bytes that are no image are rightly refused (422).
        excluded = [positive_data_acceptance]
    try:
        _fuzz(operation.as_strategy(generation_mode=mode), f"{label} {mode.value}", excluded)
    except Unsatisfiable:
        # Nothing can be made schema-invalid here (no inputs, or unconstrained strings).
        assert mode is GenerationMode.NEGATIVE
        pytest.skip(f"{label} has no input that can be made schema-invalid")


@pytest.mark.parametrize("label", [op for op in OPERATIONS if "{" in op])
def test_operation_conforms_to_schema_with_real_ids(api: dict[str, Any], label: str) -> None:
    operation = api["schema"].find_operation_by_label(label)
    name = "job_id" if "job_id" in label else "item_id"
    known = [api["job_id"]] if name == "job_id" else api["ids"]
    strategy = st.sampled_from(known).flatmap(
        lambda value: operation.as_strategy(path_parameters={name: value})
    )
    _fuzz(strategy, f"{label} real-id")


def test_image_search_conforms_to_schema_with_real_images(api: dict[str, Any]) -> None:
    operation = api["schema"].find_operation_by_label("POST /api/search/image")
    pictures = st.builds(
        _jpeg,
        st.tuples(st.integers(1, 96), st.integers(1, 96)),
        st.tuples(st.integers(0, 255), st.integers(0, 255), st.integers(0, 255)),
    )

    def with_picture(case: Any, picture: bytes) -> Any:
        case.body = {**case.body, "file": picture}
        return case

    strategy = st.builds(with_picture, operation.as_strategy(), pictures)
    # Swapping the body in after generation makes schemathesis re-judge the case, and it
    # takes raw bytes for a schema violation; these requests are valid by construction.
    _fuzz(strategy, "POST /api/search/image real-image", [negative_data_rejection])


# -- regressions for what the fuzzing found ----------------------------------------------


@pytest.fixture(scope="module")
def client(api: dict[str, Any]) -> Any:
    return TestClient(api["schema"].app, raise_server_exceptions=False)


def test_kinds_are_documented_as_an_enum_and_checked_with_400(client: Any) -> None:
    spec = client.get("/openapi.json").json()
    kinds = {"type": "string", "enum": ["image", "page", "text", "video"]}
    query = {p["name"]: p for p in spec["paths"]["/api/search"]["get"]["parameters"]}
    assert query["kind"]["schema"]["anyOf"][0]["items"] == kinds
    assert (
        spec["components"]["schemas"]["SearchIn"]["properties"]["kind"]["anyOf"][0]["items"]
        == kinds
    )
    r = client.post("/api/search", json={"q": "x", "kind": ["audio"]})
    assert r.status_code == 400 and r.json()["error"] == "InputError"


@pytest.mark.parametrize("query", [" ", "\x85", "\u3000\t", "\x1c"])
def test_blank_queries_are_refused_by_validation(client: Any, query: str) -> None:
    for r in (
        client.get("/api/search", params={"q": query}),
        client.post("/api/search", json={"q": query}),
    ):
        assert r.status_code == 422, r.text
        assert r.json() == {"error": "ValidationError", "detail": "q: must not be blank"}


@pytest.mark.parametrize("prefix", ["~\x00", "\x00", "/tmp/\x00x"])
def test_nul_bytes_in_path_prefix_are_422_not_500(client: Any, prefix: str) -> None:
    for r in (
        client.get("/api/search", params={"q": "x", "path_prefix": prefix}),
        client.post("/api/search", json={"q": "x", "path_prefix": prefix}),
    ):
        assert r.status_code == 422, r.text
        assert "NUL" in r.json()["detail"]


@pytest.mark.parametrize(
    "method, url, body, status",
    [
        ("POST", "/api/search", b"\xff\xfe{", 400),  # unparsable JSON
        ("POST", "/api/search", b"[]", 422),
        ("GET", "/api/no-such-route", None, 404),
        ("DELETE", "/api/search", None, 405),
        ("PUT", "/api/items/x", None, 405),
    ],
)
def test_framework_errors_have_the_api_error_shape(
    client: Any, method: str, url: str, body: bytes | None, status: int
) -> None:
    headers = {"content-type": "application/json"} if body is not None else {}
    r = client.request(method, url, content=body, headers=headers)
    assert r.status_code == status
    assert r.headers["content-type"] == "application/json"
    assert set(r.json()) == {"error", "detail"} and r.json()["error"]


def test_item_text_is_documented_as_plain_text(client: Any, api: dict[str, Any]) -> None:
    spec = client.get("/openapi.json").json()["paths"]["/api/items/{item_id}/text"]["get"]
    assert list(spec["responses"]["200"]["content"]) == ["text/plain"]
    assert list(spec["responses"]["404"]["content"]) == ["application/json"]
    r = client.get(f"/api/items/{api['ids'][0]}/text")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")


def test_engine_refuses_a_nul_path_prefix_with_input_error(tmp_path: Path) -> None:
    from polylens.errors import InputError

    with open_index(tmp_path / "idx", **FAST) as idx, pytest.raises(InputError):
        idx.search("x", path_prefix="~\x00")
