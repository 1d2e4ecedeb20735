"""SIGKILL `polylens index` at many seeded random points over a mutating mixed corpus.

Every killed run must leave a committed state (each file row's content whole, with its
vectors; no duplicates) that still opens and searches; every completed run, and the
final uninterrupted one, must match the file set exactly. Set POLYLENS_FAULT_SEED to
replay another sequence; a failure prints the seed, the kill points and the mutations.
"""

from __future__ import annotations

import os
import random
import threading
import time
from pathlib import Path

import pytest
from _fault import (
    KillPoint,
    index_command,
    make_corpus,
    run_and_kill,
    run_index,
    store_versions,
)
from _invariants import check_committed, check_consistent, files_under

from polylens.engine import open_index
from polylens.store.base import FILES, ITEMS
from polylens.types import Hit

pytestmark = pytest.mark.slow

SEED = int(os.environ.get("POLYLENS_FAULT_SEED", "6021"))
KILLS = 24
OCR_KILLS = {4, 13, 21}  # these runs OCR images and scanned pages for real
SETTINGS = "batch_size = 4\ncommit_every = 8\nworkers = 2\n"


def _kill_point(rng: random.Random, commits: int, seconds: float) -> KillPoint:
    """A point within a run like the last one that finished (``commits`` store commits in
    ``seconds``), so most kills land in the run's work rather than after its end however
    fast this machine is; the floors keep some past it (a run that is finishing up)."""
    if rng.random() < 0.65:
        return KillPoint(versions=rng.randint(1, max(8, commits)), delay=rng.uniform(0.0, 0.08))
    return KillPoint(versions=None, delay=rng.uniform(0.3, max(2.0, seconds)))


def _check_hits(hits: list[Hit], rows: dict[str, list[dict]]) -> None:
    """Each hit resolves to a file row holding its content and to a whole item."""
    items = {r["id"]: r for r in rows[ITEMS]}
    files = {r["path"]: r for r in rows[FILES]}
    per_hash: dict[str, int] = {}
    for item in items.values():
        per_hash[item["content_hash"]] = per_hash.get(item["content_hash"], 0) + 1
    for hit in hits:
        assert hit.id in items, f"hit {hit.id} is not a stored item"
        assert items[hit.id]["content_hash"] == hit.content_hash
        for path in (hit.path, *hit.other_paths):
            assert path in files, f"hit {hit.id} points at {path}, which has no file row"
            assert files[path]["content_hash"] == hit.content_hash
            assert per_hash[hit.content_hash] == files[path]["n_items"], "half-written content"


def _searches_work(index_dir: Path, rows: dict[str, list[dict]], probe: Path | None) -> None:
    with open_index(index_dir, create=False) as idx:
        hits = idx.search("lantern harbour quartz", k=15)
        hits += idx.search("copper", k=5, kind="text")
        if probe is not None and rows[FILES]:
            hits += idx.search(image=probe, k=10)
        _check_hits(hits, rows)
        status = idx.status()
        assert status.files == len(rows[FILES])


def test_sigkill_at_random_points_then_resume(tmp_path: Path, samples_dir: Path) -> None:
    rng = random.Random(SEED)
    corpus = make_corpus(
        tmp_path / "corpus", samples_dir, seed=SEED, images=170, texts=70, pdfs=14, copies=24
    )
    (corpus.root / "scans").mkdir()
    for name in ("page.png", "handwriting.png"):
        (corpus.root / "scans" / name).write_bytes((samples_dir / "scans" / name).read_bytes())
    probe = tmp_path / "probe.png"
    probe.write_bytes((samples_dir / "scans" / "page.png").read_bytes())
    index_dir = tmp_path / "idx"
    index_dir.mkdir()
    (index_dir / "polylens.toml").write_text(SETTINGS)
    history: list[str] = []
    killed = completed = attempt = 0
    commits, seconds = 30, 7.0  # the first run indexes everything: far more than this
    try:
        while killed < KILLS:
            attempt += 1
            assert attempt < KILLS * 3, "too many runs finished before their kill point"
            if attempt % 3 == 0:
                corpus.mutate(rng.randint(1, 6))
            point = _kill_point(rng, commits, seconds)
            ocr = killed in OCR_KILLS
            if ocr:
                point = KillPoint(versions=rng.randint(2, 6), delay=rng.uniform(0.0, 0.05))
            cmd = index_command(index_dir, corpus.root, ocr=ocr)
            history.append(f"run {attempt}: kill {point.describe()}{' (ocr)' if ocr else ''}")
            before, started = store_versions(index_dir), time.monotonic()
            if run_and_kill(cmd, index_dir, point):
                killed += 1
                rows = check_committed(index_dir)
                history[-1] += f" -> killed with {len(rows[FILES])} files committed"
            else:
                completed += 1
                commits = store_versions(index_dir) - before
                seconds = time.monotonic() - started
                rows = check_consistent(index_dir, files_under(corpus.root))
                history[-1] += (
                    f" -> finished first ({commits} commits, {seconds:.1f}s):"
                    " index matches the files exactly"
                )
                corpus.mutate(rng.randint(10, 20))  # new work for the next kills
            _searches_work(index_dir, rows, probe)
        summary = run_index(index_dir, corpus.root)
        assert summary["failed"] == 0, summary["failures"]
        rows = check_consistent(index_dir, files_under(corpus.root))
        _searches_work(index_dir, rows, probe)
        again = run_index(index_dir, corpus.root)
        assert again["items_written"] == 0 and again["unchanged"] == len(rows[FILES])
    except BaseException:
        print(f"seed {SEED}; mutations: {corpus.log}")
        print("\n".join(history))
        raise
    print(f"seed {SEED}: survived {killed} kills, {completed} runs finished before their kill")
    print("\n".join(history))
    assert killed >= 20


def test_search_while_indexing_is_killed(tmp_path: Path, samples_dir: Path) -> None:
    """A reader searching in a loop while `polylens index` runs and is killed, over and
    over, never fails and never sees an item whose content is not completely committed."""
    rng = random.Random(SEED + 1)
    corpus = make_corpus(
        tmp_path / "corpus", samples_dir, seed=SEED + 1, images=90, texts=40, pdfs=6, copies=10
    )
    probe = next(p for p in corpus.files() if p.suffix in (".png", ".jpg"))
    index_dir = tmp_path / "idx"
    index_dir.mkdir()
    (index_dir / "polylens.toml").write_text(SETTINGS)
    seen: list[Hit] = []
    errors: list[BaseException] = []
    searches = 0
    stop = threading.Event()

    def reader() -> None:
        nonlocal searches
        with open_index(index_dir, create=False) as idx:
            while not stop.is_set():
                try:
                    # Image queries need image vectors: an index without any refuses them.
                    images = (index_dir / "lance" / "vec_image.lance").exists()
                    for hits in (
                        idx.search("lantern harbour", k=20),
                        idx.search("copper walrus", k=10, kind=("text", "page")),
                        idx.search(image=probe, k=10) if images else [],
                        idx.search("maple", image=probe, k=10) if images else [],
                    ):
                        seen.extend(hits)
                        searches += 1
                    idx.status()
                except BaseException as exc:  # noqa: BLE001 - reported by the test
                    errors.append(exc)
                    return
                time.sleep(0.002)

    thread = threading.Thread(target=reader, daemon=True)
    thread.start()
    kills = 0
    try:
        for _ in range(6):
            point = KillPoint(versions=rng.randint(3, 40), delay=rng.uniform(0.0, 0.05))
            kills += run_and_kill(index_command(index_dir, corpus.root), index_dir, point)
            assert not errors, f"a search failed: {errors[0]!r}"
        run_index(index_dir, corpus.root)
        time.sleep(0.3)
    finally:
        stop.set()
        thread.join(timeout=60)
    if errors:
        raise errors[0]
    rows = check_consistent(index_dir, files_under(corpus.root))
    # Nothing was removed from the corpus, so every hit any search returned must still
    # resolve to a whole item of an indexed file.
    _check_hits(seen, rows)
    assert kills >= 4
    assert searches > 50, searches
    assert len({h.id for h in seen}) > 20
