"""The CLI end to end, in a subprocess as a user runs it, on the shipped sample data."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

FAST = ["--image-model", "fake-clip", "--text-model", "fake-text", "--no-ocr"]


def polylens(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "COLUMNS": "160"}
    proc = subprocess.run(
        [sys.executable, "-m", "polylens", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    if check:
        assert proc.returncode == 0, proc.stderr
    return proc


@pytest.fixture(scope="module")
def fast_index(tmp_path_factory: pytest.TempPathFactory) -> Path:
    index = tmp_path_factory.mktemp("cli") / "idx"
    samples = Path(__file__).parents[2] / "samples"
    out = polylens("index", str(samples), "--index", str(index), "--json", *FAST)
    summary = json.loads(out.stdout)
    # samples/.polylensignore leaves the licence text out
    assert summary["added"] == 10 and summary["failed"] == 0
    return index


def test_search_json_contract(fast_index: Path) -> None:
    out = polylens(
        "search", "euro conversion rates", "--index", str(fast_index), "--json", "-k", "5"
    )
    hits = json.loads(out.stdout)
    assert 0 < len(hits) <= 5
    for hit in hits:
        assert {"id", "path", "kind", "page", "score", "snippet", "confidence", "weak"} <= set(hit)
        assert hit["kind"] in ("image", "page", "text")
        assert (hit["page"] is None) == (hit["kind"] != "page")
    assert [h["score"] for h in hits] == sorted((h["score"] for h in hits), reverse=True)
    pages = [h for h in hits if h["kind"] == "page"]
    assert pages and all(h["path"].endswith("euro.pdf") and 1 <= h["page"] <= 15 for h in pages)


def test_kind_filter_and_image_query(fast_index: Path) -> None:
    samples = Path(__file__).parents[2] / "samples"
    out = polylens("search", "euro", "--kind", "text", "--index", str(fast_index), "--json")
    assert {h["kind"] for h in json.loads(out.stdout)} == {"text"}
    cat = samples / "photos" / "cat.jpg"
    out = polylens("search", "--image", str(cat), "--index", str(fast_index), "--json", "-k", "1")
    assert json.loads(out.stdout)[0]["path"] == str(cat)


def test_table_output_and_status(fast_index: Path) -> None:
    out = polylens("search", "SQLite", "--index", str(fast_index))
    assert "about-sqlite.md" in out.stdout
    status = json.loads(polylens("status", "--index", str(fast_index), "--json").stdout)
    assert status["files"] == 10
    assert status["items"] == {"image": 7, "page": 15, "text": status["items"]["text"], "video": 0}
    assert status["last_run"]["added"] == 10
    assert status["size_bytes"] > 0


def test_dupes_on_the_samples(fast_index: Path) -> None:
    groups = json.loads(polylens("dupes", "--index", str(fast_index), "--json").stdout)
    # samples/photos/coffee-from-chat.jpg is coffee.jpg as a messenger sends it on
    assert [g["tier"] for g in groups] == ["near"]
    items = groups[0]["items"]
    assert sorted(Path(i["path"]).name for i in items) == ["coffee-from-chat.jpg", "coffee.jpg"]
    assert all(set(i) >= {"id", "path", "page", "distance"} for i in items)
    assert items[0]["distance"] == 0 and items[1]["distance"] <= 14
    # euro.pdf's pages 1 and 2 share a layout (14 bits apart): under the page radius, apart
    wide = json.loads(
        polylens("dupes", "--index", str(fast_index), "--threshold", "14", "--json").stdout
    )
    found = [[(Path(i["path"]).name, i["page"]) for i in g["items"]] for g in wide]
    assert [("euro.pdf", 1), ("euro.pdf", 2)] in found and len(found) == 2
    text = polylens("dupes", "--index", str(fast_index)).stdout
    assert "exact copies: 0 group(s)" in text and "near-duplicates: 1 group(s)" in text
    status = json.loads(polylens("status", "--index", str(fast_index), "--json").stdout)
    assert [r["name"] for r in status["representations"]] == ["image", "text", "bm25", "phash"]
    bad = polylens("dupes", "--index", str(fast_index), "--threshold", "99", check=False)
    assert bad.returncode == 2 and "--threshold" in bad.stderr


def test_errors_are_one_line_with_exit_codes(tmp_path: Path) -> None:
    missing = polylens("search", "x", "--index", str(tmp_path / "none"), check=False)
    assert missing.returncode == 2 and "no polylens index" in missing.stderr
    assert "Traceback" not in missing.stderr
    bad = polylens(
        "index", str(tmp_path / "nope"), "--index", str(tmp_path / "i"), *FAST, check=False
    )
    assert bad.returncode == 2 and "does not exist" in bad.stderr
    assert not (tmp_path / "i").exists()  # a refused run leaves no index behind
    no_query = polylens("search", "--index", str(tmp_path / "i"), check=False)
    assert no_query.returncode == 2


def test_model_mismatch_exit_code(fast_index: Path) -> None:
    samples = Path(__file__).parents[2] / "samples"
    proc = polylens(
        "index", str(samples), "--index", str(fast_index), "--text-model", "minilm", check=False
    )
    assert proc.returncode == 2 and "cannot be mixed" in proc.stderr


@pytest.mark.slow
def test_default_offline_configuration_on_samples(tmp_path: Path) -> None:
    """The README's main job: default models (bundled MiniLM, OCR; CLIP unavailable offline)."""
    samples = Path(__file__).parents[2] / "samples"
    index = tmp_path / "idx"
    out = polylens("index", str(samples), "--index", str(index))
    assert "added" in out.stdout
    warnings = [
        line for line in out.stderr.splitlines() if "image model clip-b32 unavailable" in line
    ]
    assert len(warnings) == 1, out.stderr  # one line, not the how-to (that is in status)
    assert "hf download" not in out.stderr

    def top(query: str) -> dict:
        return json.loads(
            polylens("search", query, "--index", str(index), "--json", "-k", "3").stdout
        )[0]

    hit = top("determine markers of the coins")
    assert hit["path"].endswith("scans/page.png") and hit["kind"] == "image"
    hit = top("fixed conversion rates of the euro")
    assert hit["path"].endswith("euro.pdf") and hit["kind"] == "page"
    hit = top("how large can a database get")
    assert hit["path"].endswith("about-sqlite.md")
    assert hit["weak"] is False and 0.1 <= hit["confidence"] <= 1.0

    # nothing here is about baking: the CLI says so before the closest results
    out = polylens("search", "recipe for a lemon meringue pie", "--index", str(index), "-k", "3")
    assert out.stdout.startswith("No good match — closest results:"), out.stdout
    weak = json.loads(
        polylens(
            "search", "recipe for a lemon meringue pie", "--index", str(index), "--json"
        ).stdout
    )
    assert weak and all(h["weak"] and 0.0 <= h["confidence"] < 0.1 for h in weak)
    out = polylens("search", "how large can a database get", "--index", str(index), "-k", "3")
    assert "No good match" not in out.stdout and "%" in out.stdout.splitlines()[0]


def test_bad_arguments_are_reported_before_any_model_loads(
    fast_index: Path, tmp_path: Path
) -> None:
    """Argument and file checks come first: no torch, no transformers, no store opened."""
    notes = Path(__file__).parents[2] / "samples" / "text" / "about-sqlite.md"
    cases = [
        (["search", "a cat", "--kind", "audio"], "'audio' is not one of"),
        (["search", "a cat", "--image", str(tmp_path / "nope.jpg")], "nope.jpg: not found"),
        (["search", "--image", str(notes)], "about-sqlite.md: not a recognised image format"),
    ]
    probe = (
        "import sys\n"
        "from polylens.cli import app\n"
        "try:\n"
        "    app(sys.argv[1:])\n"
        "except SystemExit as done:\n"
        "    heavy = sorted(m for m in ('torch', 'transformers', 'lancedb') if m in sys.modules)\n"
        "    print('loaded:', ','.join(heavy), file=sys.stderr)\n"
        "    raise\n"
    )
    for args, message in cases:
        proc = subprocess.run(
            [sys.executable, "-c", probe, *args, "--index", str(fast_index)],
            capture_output=True,
            text=True,
            env={**os.environ, "HF_HUB_OFFLINE": "1", "COLUMNS": "160"},
            timeout=120,
        )
        assert proc.returncode == 2, proc.stderr
        assert message in proc.stderr
        assert "loaded: \n" in proc.stderr, proc.stderr  # nothing heavy was imported
        assert "Traceback" not in proc.stderr
