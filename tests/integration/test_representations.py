"""Representations as units: chosen per index, added to an existing index (filled in for the
items there, nothing else re-encoded), dropped with their data, ranked the same from the
store and from memory, and a third party's one running through every layer."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest
from _plugins import install_plugin
from PIL import Image, ImageEnhance

from polylens.encoders.fake import FakeImageText, FakeText
from polylens.engine import open_index
from polylens.errors import ConfigError, InputError
from polylens.ingest.events import ProgressEvents
from polylens.ingest.units import UnitMaker
from polylens.representations.image_text import ImageText
from polylens.representations.phash import PerceptualHash
from polylens.store.base import ITEMS

FAST = dict(image_model="fake-clip", text_model="fake-text", ocr=False)
CRANFIELD = Path(__file__).parents[3] / "shared" / "data" / "cranfield" / "corpus.jsonl"


class Phases(ProgressEvents):
    def __init__(self) -> None:
        self.phases: list[tuple[str, int | None]] = []

    def phase(self, what: str, total: int | None = None) -> None:
        self.phases.append((what, total))


def photos_with_copies(folder: Path, skimage_data: Path) -> dict[str, Path]:
    """Real photos, a messenger-style copy (smaller, recompressed) and a brightened,
    slightly cropped one."""
    folder.mkdir(parents=True, exist_ok=True)
    out = {}
    for name in ("coffee", "chelsea", "astronaut", "rocket"):
        source = skimage_data / (f"{name}.png" if name != "rocket" else "rocket.jpg")
        path = folder / f"{name}.jpg"
        Image.open(source).convert("RGB").save(path, quality=90)
        out[name] = path
    coffee = Image.open(out["coffee"])
    small = coffee.resize((coffee.width * 3 // 5, coffee.height * 3 // 5), Image.LANCZOS)
    out["coffee-small"] = folder / "sent" / "coffee-small.jpg"
    out["coffee-small"].parent.mkdir()
    small.save(out["coffee-small"], quality=40)
    out["coffee-bright"] = folder / "coffee-bright.jpg"
    cropped = coffee.crop((12, 10, coffee.width - 12, coffee.height - 10))
    ImageEnhance.Brightness(cropped).enhance(1.15).save(out["coffee-bright"], quality=80)
    return out


def _rows(idx, collection: str) -> list[dict]:
    store = idx._store  # noqa: SLF001 - the test inspects what was stored
    return store.get(collection) if store.has_collection(collection) else []


def test_with_fills_in_existing_items_decoding_pixels_only(
    tmp_path: Path, corpus: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    index = tmp_path / "idx"
    with open_index(index, without=("phash",), **FAST) as idx:
        idx.add([corpus])
        assert idx.representations == ["image", "text", "bm25"]
        items_before = sorted(_rows(idx, ITEMS), key=lambda r: r["id"])
        vectors_before = {r["id"]: list(r["vector"]) for r in _rows(idx, ImageText.collection)}
    calls: list[str] = []
    for cls, method in (
        (FakeImageText, "embed_images"),
        (FakeImageText, "embed_queries"),
        (FakeText, "embed_documents"),
    ):
        original = getattr(cls, method)
        monkeypatch.setattr(
            cls, method, lambda self, xs, _o=original, _m=method: calls.append(_m) or _o(self, xs)
        )
    decoded: list[str] = []
    original_text = UnitMaker.text
    monkeypatch.setattr(
        UnitMaker, "text", lambda self, *a: decoded.append(a[0]) or original_text(self, *a)
    )
    events = Phases()
    with open_index(index, with_=("phash",)) as idx:
        summary = idx.add([corpus], events=events)
        assert idx.representations == ["image", "text", "bm25", "phash"]
        hashes = _rows(idx, PerceptualHash.collection)
        pictures = [r for r in items_before if r["kind"] in ("image", "page")]
        # every picture has a hash (a flat one would not: none here), text items none
        assert {r["item_id"] for r in hashes} == {r["id"] for r in pictures}
        assert summary.items_backfilled == len(pictures)
        assert ("filling in perceptual hashes", len(pictures)) in events.phases
        assert summary.added == summary.updated == 0
        # nothing else re-encoded or rewritten, no text file decoded again
        assert calls == [] and decoded == []
        assert sorted(_rows(idx, ITEMS), key=lambda r: r["id"]) == items_before
        after = {r["id"]: list(r["vector"]) for r in _rows(idx, ImageText.collection)}
        assert after == vectors_before
        rep = next(r for r in idx.status().representations if r.name == "phash")
        assert rep.available and rep.reason is None and rep.rows == len(pictures)
    # the next run has nothing to fill in
    with open_index(index) as idx:
        assert idx.add([corpus]).items_backfilled == 0


def test_without_drops_the_data_and_search_goes_on(tmp_path: Path, corpus: Path) -> None:
    index = tmp_path / "idx"
    with open_index(index, **FAST) as idx:
        idx.add([corpus])
        assert idx._store.has_collection(PerceptualHash.collection)  # noqa: SLF001
    with open_index(index, without=("phash", "text")) as idx:
        idx.add([corpus])
        store = idx._store  # noqa: SLF001
        assert not store.has_collection(PerceptualHash.collection)
        assert not store.has_collection("vec_text")
        assert [r.name for r in idx.status().representations] == ["image", "bm25"]
        hits = idx.search("euro conversion rates", k=3)
        assert hits and set().union(*(h.sources for h in hits)) <= {"image", "bm25"}
        with pytest.raises(
            InputError, match=r"unknown retriever\(s\) \['text'\]; this index has image, bm25"
        ):
            idx.search("euro", retrievers=["text"])
    with open_index(index) as idx:  # the choice sticks without the flag
        idx.add([corpus])
        assert idx.representations == ["image", "bm25"]


def test_names_are_checked_when_the_index_is_opened(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"unknown representation\(s\) colpali"):
        open_index(tmp_path / "idx", with_=("colpali",), **FAST)
    assert not (tmp_path / "idx").exists()
    (tmp_path / "toml").mkdir()
    (tmp_path / "toml" / "polylens.toml").write_text('without = ["phash"]\nwith = ["bm25"]\n')
    with open_index(tmp_path / "toml", **FAST) as idx:
        assert idx.config.without == ("phash",) and idx.config.with_ == ("bm25",)


def test_image_query_ranks_copies_first_and_dupes_groups_them(
    tmp_path: Path, skimage_data: Path
) -> None:
    photos = photos_with_copies(tmp_path / "photos", skimage_data)
    shutil.copy(photos["chelsea"], tmp_path / "photos" / "chelsea-again.jpg")  # exact copy
    with open_index(tmp_path / "idx", **FAST) as idx:
        idx.add([tmp_path / "photos"])
        for warm in (False, True):  # from the store, then from the read model
            if warm:
                idx.warm()
            hits = idx.search(image=photos["coffee-small"], k=3)
            assert [Path(h.path).name for h in hits[:3]] == [
                "coffee-small.jpg",
                "coffee.jpg",
                "coffee-bright.jpg",
            ]
            assert "phash" in hits[1].sources
            similar = idx.similar(hits[1].id, k=5)
            assert {Path(h.path).name for h in similar[:2]} == {
                "coffee-small.jpg",
                "coffee-bright.jpg",
            }
        groups = idx.duplicates()
        exact = [g for g in groups if g.tier == "exact"]
        near = [g for g in groups if g.tier == "near"]
        assert [[Path(i.path).name for i in g.items] for g in exact] == [
            ["chelsea-again.jpg", "chelsea.jpg"]
        ]
        assert len(near) == 1 and near[0].items[0].distance == 0
        assert {Path(i.path).name for i in near[0].items} == {
            "coffee.jpg",
            "coffee-small.jpg",
            "coffee-bright.jpg",
        }
        distances = {Path(i.path).name: i.distance for i in near[0].items}
        assert distances["coffee-small.jpg"] == 0  # pHash does not see resizing or JPEG
        assert 0 < distances["coffee-bright.jpg"] <= 14
        coffee = next(h for h in idx.search(image=photos["coffee"], k=1))
        near_coffee = idx.duplicates_of(coffee.id)
        assert {Path(d.path).name for d in near_coffee} == {"coffee-small.jpg", "coffee-bright.jpg"}
        assert [d.distance for d in near_coffee] == sorted(d.distance for d in near_coffee)
        strict = idx.duplicates(threshold=0)
        assert [g for g in strict if g.tier == "exact"] == exact
        assert [{Path(i.path).name for i in g.items} for g in strict if g.tier == "near"] == [
            {"coffee.jpg", "coffee-small.jpg"}
        ]
        with pytest.raises(InputError, match="threshold must be a whole number of bits"):
            idx.duplicates(threshold=65)


def _cranfield_texts(folder: Path, n: int) -> None:
    import json

    folder.mkdir(parents=True)
    with CRANFIELD.open(encoding="utf-8") as lines:
        for count, line in enumerate(lines):
            if count >= n:
                break
            doc = json.loads(line)
            (folder / f"{doc['_id']}.txt").write_text(f"{doc['title']}\n\n{doc['text']}\n")


def test_every_path_ranks_alike(tmp_path: Path, samples_dir: Path) -> None:
    """BM25, each dense representation and their fusion give the same ranking whether the
    store (a one-shot CLI search), the saved postings or the in-memory read model (the
    server, the Python API after warm-up) answers. Real texts: the samples (a 15-page PDF,
    notes, scans) and, where the collection is present, 400 Cranfield abstracts."""
    corpus = tmp_path / "corpus"
    shutil.copytree(samples_dir, corpus, ignore=shutil.ignore_patterns(".polylensignore"))
    if CRANFIELD.is_file():
        _cranfield_texts(corpus / "cranfield", 400)
    queries = [
        "boundary layer transition at supersonic speeds",
        "heat transfer to a blunt body in hypersonic flow",
        "buckling of thin cylindrical shells under axial compression",
        "fixed conversion rates of the euro",
        "how large can a database get",
        "a story about magic switches",
    ]
    configs = [["bm25"], ["text"], ["image"], None]
    index = tmp_path / "idx"
    with open_index(index, **FAST) as idx:
        idx.add([corpus])

    def rankings(**open_args) -> dict:
        with open_index(index, **open_args) as idx:
            if open_args.get("serve_from_memory", True):
                assert idx.warm()
            return {
                (q, tuple(c or ())): [h.id for h in idx.search(q, k=20, retrievers=c)]
                for q in queries
                for c in configs
            }

    from_memory = rankings()
    from_store = rankings(serve_from_memory=False)  # the saved postings
    for saved in (index / "ann").glob("bm25*"):
        saved.unlink()
    built_from_store = rankings(serve_from_memory=False)  # postings built from the items
    assert from_memory[(queries[3], ("bm25",))]  # not vacuous
    assert from_store == from_memory
    assert built_from_store == from_memory


def test_a_third_party_representation_runs_through_every_layer(
    tmp_path: Path, corpus: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    install_plugin(tmp_path / "site")
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    monkeypatch.delitem(sys.modules, "polylens_brevity", raising=False)
    index = tmp_path / "idx"
    with open_index(index, **FAST) as idx:
        idx.add([corpus])
    with open_index(index, with_=("brevity",)) as idx:
        summary = idx.add([corpus])
        assert summary.items_backfilled > 0  # the items already there got word counts
        status = idx.status()
        rep = next(r for r in status.representations if r.name == "brevity")
        assert rep.title == "word counts" and rep.available and rep.rows
        hits = idx.search("euro", k=50)
        assert any("brevity" in h.sources for h in hits)
        only = idx.search("anything", k=3, retrievers=["brevity"])
        words = {r["item_id"]: r["words"] for r in _rows(idx, "brevity")}
        assert [words[h.id] for h in only] == sorted(words.values())[:3]
    # The plugin uninstalled: the index still opens and searches, and says why it skips it.
    monkeypatch.delitem(sys.modules, "polylens_brevity", raising=False)
    monkeypatch.setattr(sys, "path", [p for p in sys.path if "site" not in p])
    with open_index(index) as idx:
        assert idx.search("euro", k=3)
        status = idx.status()
        gone = next(r for r in status.representations if r.name == "brevity")
        assert not gone.available and gone.reason == "not installed"
