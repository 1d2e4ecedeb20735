from __future__ import annotations

import io
import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from PIL import Image

from polylens.errors import InputError
from polylens.eval.datasets import (
    load_beir,
    load_dataset,
    load_karpathy,
    load_mbeir,
    load_vidore_parquet,
    read_trec_qrels,
    read_trec_run,
    write_trec_run,
)
from polylens.eval.runner import hubness, mean_rank_variance


def _jsonl(path: Path, rows: list[dict]) -> None:
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")


def _png() -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (8, 8), (1, 2, 3)).save(buf, format="PNG")
    return buf.getvalue()


def test_beir_with_text_and_image_documents(tmp_path: Path) -> None:
    (tmp_path / "qrels").mkdir()
    (tmp_path / "img.png").write_bytes(_png())
    _jsonl(
        tmp_path / "corpus.jsonl",
        [
            {"_id": "d1", "title": "T", "text": "body"},
            {"_id": "d2", "image": "img.png"},
        ],
    )
    _jsonl(
        tmp_path / "queries.jsonl",
        [
            {"_id": "q1", "text": "body", "lang": "en", "group": 1},
            {"_id": "q2", "text": "unjudged"},
        ],
    )
    (tmp_path / "qrels" / "test.tsv").write_text(
        "query-id\tcorpus-id\tscore\nq1\td1\t2\nq1\td2\t0\n"
    )
    ds = load_dataset(tmp_path)
    assert ds.corpus["d1"].title == "T" and ds.corpus["d2"].path == tmp_path / "img.png"
    assert set(ds.queries) == {"q1"}  # unjudged queries are dropped
    assert ds.queries["q1"].group == "1" and ds.qrels["q1"] == {"d1": 2, "d2": 0}
    with pytest.raises(InputError, match="splits: \\['test'\\]"):
        load_beir(tmp_path, "dev")


def test_trec_round_trip(tmp_path: Path) -> None:
    run = {"q1": {"a": 3.0, "b": 1.5}, "q2": {"c": 0.1}}
    write_trec_run(run, tmp_path / "run.trec", "tag")
    assert read_trec_run(tmp_path / "run.trec") == run
    lines = (tmp_path / "run.trec").read_text().splitlines()
    assert lines[0] == "q1 Q0 a 1 3.000000 tag"
    (tmp_path / "qrels.txt").write_text("q1 0 a 1\nq1 0 b 0\n")
    assert read_trec_qrels(tmp_path / "qrels.txt") == {"q1": {"a": 1, "b": 0}}
    (tmp_path / "bad.txt").write_text("q1 a\n")
    with pytest.raises(InputError, match="columns"):
        read_trec_qrels(tmp_path / "bad.txt")


def test_karpathy_both_directions(tmp_path: Path) -> None:
    data = {
        "images": [
            {
                "filename": "a.jpg",
                "filepath": "imgs",
                "imgid": 0,
                "split": "test",
                "sentences": [{"raw": "a cat", "sentid": 0}, {"raw": "a small cat", "sentid": 1}],
            },
            {
                "filename": "b.jpg",
                "filepath": "imgs",
                "imgid": 1,
                "split": "train",
                "sentences": [{"raw": "a dog", "sentid": 2}],
            },
        ]
    }
    path = tmp_path / "dataset_flickr30k.json"
    path.write_text(json.dumps(data))
    t2i = load_karpathy(path)
    assert set(t2i.corpus) == {"img0"} and set(t2i.queries) == {"cap0", "cap1"}
    assert t2i.corpus["img0"].path == tmp_path / "imgs" / "a.jpg"
    i2t = load_karpathy(path, direction="i2t")
    assert set(i2t.corpus) == {"cap0", "cap1"} and i2t.qrels == {"img0": {"cap0": 1, "cap1": 1}}


def test_mbeir(tmp_path: Path) -> None:
    _jsonl(
        tmp_path / "q.jsonl",
        [
            {
                "qid": "9:1",
                "query_txt": "red bird",
                "query_img_path": None,
                "pos_cand_list": ["9:100"],
            }
        ],
    )
    _jsonl(
        tmp_path / "pool.jsonl",
        [
            {"did": "9:100", "txt": "", "img_path": "birds/1.jpg"},
            {"did": "9:101", "txt": "a blue bird", "img_path": None},
        ],
    )
    ds = load_mbeir(tmp_path / "q.jsonl", tmp_path / "pool.jsonl")
    assert ds.corpus["9:100"].path == tmp_path / "birds/1.jpg"
    assert ds.corpus["9:101"].text == "a blue bird" and ds.qrels == {"9:1": {"9:100": 1}}


def test_vidore_parquet(tmp_path: Path) -> None:
    table = pa.table(
        {
            "query": ["where is the invoice total?", None, "who signed it?"],
            "image": [{"bytes": _png(), "path": None}] * 3,
            "image_filename": ["p1.png", "p2.png", "p1.png"],
        }
    )
    pq.write_table(table, tmp_path / "test.parquet")
    ds = load_vidore_parquet(tmp_path / "test.parquet")
    assert set(ds.corpus) == {"p1.png", "p2.png"}
    assert len(ds.queries) == 2 and all(v == {"p1.png": 1} for v in ds.qrels.values())


def test_unknown_format_is_explained(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="not a recognised dataset"):
        load_dataset(tmp_path)


def test_hubness_counts_k_occurrences() -> None:
    run = {f"q{i}": {"hub": 10.0, f"d{i}": 5.0} for i in range(4)}
    h = hubness(run, ["hub", "d0", "d1", "d2", "d3", "never"], k=2)
    assert h["never_in_top2"] == pytest.approx(1 / 6)
    counts = [4, 1, 1, 1, 1, 0]
    import numpy as np

    c = np.array(counts, float)
    expected = ((c - c.mean()) ** 3).mean() / c.std() ** 3
    assert h["skewness@2"] == pytest.approx(expected)


def test_mean_rank_variance() -> None:
    from polylens.eval.datasets import Doc, EvalDataset, Query

    ds = EvalDataset(
        "m",
        {"a": Doc(text="x"), "b": Doc(text="y")},
        {"en": Query("q", lang="en", group="g"), "de": Query("q", lang="de", group="g")},
        {"en": {"a": 1}, "de": {"a": 1}},
    )
    run = {"en": {"a": 2.0, "b": 1.0}, "de": {"b": 2.0, "a": 1.0}}
    assert mean_rank_variance(ds, run, depth=10) == pytest.approx(0.5)


def test_vidore_saved_with_datasets_save_to_disk(tmp_path: Path) -> None:
    """`datasets.save_to_disk` writes Arrow IPC stream shards plus JSON metadata."""
    table = pa.table(
        {
            "query": ["what is on page one?"],
            "image": [{"bytes": _png(), "path": None}],
            "image_filename": ["one.png"],
        }
    )
    folder = tmp_path / "saved"
    folder.mkdir()
    with pa.OSFile(str(folder / "data-00000-of-00001.arrow"), "wb") as sink:
        with pa.ipc.new_stream(sink, table.schema) as writer:
            writer.write_table(table)
    (folder / "dataset_info.json").write_text("{}")
    ds = load_dataset(folder)
    assert set(ds.corpus) == {"one.png"} and len(ds.queries) == 1


def _vidore_beir(root: Path, *, qrels_dir: str = "qrels") -> Path:
    """ViDoRe v2's hub layout: one folder of parquet shards per subset, split in the name."""
    for name in ("corpus", "queries", qrels_dir):
        (root / name).mkdir(parents=True)
    corpus = {"corpus-id": [11, 12, 13], "image": [{"bytes": _png(), "path": None}] * 3}
    pq.write_table(pa.table(corpus), root / "corpus" / "test-00000-of-00001.parquet")
    queries = {
        "query-id": [1, 2, 3],
        "query": ["emissions in 2023?", "Emissionen 2023?", "board members?"],
        "language": ["english", "german", "english"],
    }
    pq.write_table(pa.table(queries), root / "queries" / "test-00000-of-00001.parquet")
    qrels = {"query-id": [1, 1, 2, 3], "corpus-id": [11, 12, 11, 13], "score": [2, 1, 2, 0]}
    pq.write_table(pa.table(qrels), root / qrels_dir / "test-00000-of-00001.parquet")
    other = {"query-id": [9], "corpus-id": [13], "score": [1]}
    pq.write_table(pa.table(other), root / qrels_dir / "train-00000-of-00001.parquet")
    return root


@pytest.mark.parametrize("qrels_dir", ["qrels", "default"])
def test_vidore_v2_beir_layout(tmp_path: Path, qrels_dir: str) -> None:
    ds = load_dataset(_vidore_beir(tmp_path / "esg_reports_v2", qrels_dir=qrels_dir))
    assert set(ds.corpus) == {"11", "12", "13"} and ds.corpus["11"].image_bytes == _png()
    # graded judgments kept; the train split's judgment not read; query 3 has none positive
    assert ds.qrels == {"1": {"11": 2, "12": 1}, "2": {"11": 2}, "3": {"13": 0}}
    assert set(ds.queries) == {"1", "2"} and ds.queries["2"].lang == "german"
    assert ds.meta["layout"] == "vidore-beir"


def test_vidore_v2_beir_missing_subset_is_explained(tmp_path: Path) -> None:
    root = _vidore_beir(tmp_path / "v2")
    for f in (root / "queries").iterdir():
        f.unlink()
    with pytest.raises(InputError, match="not a recognised dataset"):
        load_dataset(root)
    from polylens.eval.datasets import load_vidore_beir

    with pytest.raises(InputError, match="no queries/ parquet"):
        load_vidore_beir(root)
    with pytest.raises(InputError, match="missing columns"):
        pq.write_table(pa.table({"id": [1]}), root / "queries" / "test-0.parquet")
        load_vidore_beir(root)
