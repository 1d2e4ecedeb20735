"""`polylens eval` through the real index and search path, on real Cranfield data."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from polylens.eval.datasets import EvalDataset, load_beir
from polylens.eval.runner import score
from polylens.eval.session import evaluate_dataset

CRANFIELD = Path(__file__).resolve().parents[3] / "shared" / "data" / "cranfield"


@pytest.fixture(scope="module")
def cranfield_subset() -> EvalDataset:
    if not (CRANFIELD / "corpus.jsonl").is_file():
        pytest.skip(f"the Cranfield collection is not at {CRANFIELD} (see shared/data/README.md)")
    full = load_beir(CRANFIELD, "dev")
    keep = {str(i) for i in range(1, 301)}
    qrels = {q: {d: g for d, g in docs.items() if d in keep} for q, docs in full.qrels.items()}
    qrels = {q: docs for q, docs in qrels.items() if docs}
    ds = EvalDataset(
        "cranfield-300",
        {d: full.corpus[d] for d in keep},
        {q: full.queries[q] for q in qrels},
        qrels,
        source=str(CRANFIELD) + "#300",
    )
    ds.validate()
    return ds


def test_eval_reports_every_configuration(cranfield_subset: EvalDataset, tmp_path: Path) -> None:
    report, summary = evaluate_dataset(
        cranfield_subset,
        work_dir=tmp_path / "work",
        settings={"image_model": "none", "text_model": "fake-text", "ocr": False},
    )
    assert summary.added == 300
    names = [r.name for r in report.results]
    assert names == ["hybrid", "bm25", "dense-text"]
    by_name = {r.name: r for r in report.results}
    for result in report.results:
        assert set(result.metrics) >= {"ndcg@10", "recall@100", "mrr@10", "map@100"}
        assert all(0.0 <= v <= 1.0 for v in result.metrics.values())
        # the report's numbers are ranx's numbers on the run it kept
        assert score(cranfield_subset.qrels, report.runs[result.name], ["ndcg@10"])["ndcg@10"] == (
            pytest.approx(result.metrics["ndcg@10"])
        )
    # Real judgments: BM25 must be far above chance on Cranfield (chance nDCG@10 ~ 0.01).
    assert by_name["bm25"].metrics["ndcg@10"] > 0.25
    env = report.environment
    assert env["packages"]["lancedb"] and env["models"]["text"]["name"] == "fake-text"
    # A second evaluation reuses the index: nothing re-encoded.
    _, again = evaluate_dataset(
        cranfield_subset,
        work_dir=tmp_path / "work",
        settings={"image_model": "none", "text_model": "fake-text", "ocr": False},
        configs=["bm25"],
        repeat=2,
    )
    assert again.items_written == 0 and again.unchanged == 300


def test_oracle_run_scores_one(cranfield_subset: EvalDataset) -> None:
    oracle = {
        q: {d: float(g) for d, g in docs.items() if g > 0}
        for q, docs in cranfield_subset.qrels.items()
    }
    assert score(cranfield_subset.qrels, oracle, ["map@100", "recall@100"]) == {
        "map@100": pytest.approx(1.0),
        "recall@100": pytest.approx(1.0),
    }


def _karpathy_samples(tmp_path: Path, samples_dir: Path) -> Path:
    images = tmp_path / "images"
    shutil.copytree(samples_dir / "photos", images)
    data = {
        "images": [
            {
                "filename": f.name,
                "filepath": "",
                "imgid": i,
                "split": "test",
                "sentences": [{"raw": f"a photo of {f.stem}", "sentid": 10 * i}],
            }
            for i, f in enumerate(sorted(images.iterdir()))
        ]
    }
    karpathy = images / "dataset_samples.json"
    karpathy.write_text(json.dumps(data))
    return karpathy


def test_karpathy_image_text_eval_with_tiny_clip(
    tmp_path: Path, tiny_clip_dir: Path, samples_dir: Path
) -> None:
    karpathy = _karpathy_samples(tmp_path, samples_dir)
    out = tmp_path / "out"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "polylens",
            "eval",
            str(karpathy),
            "--work",
            str(tmp_path / "w"),
            "--image-model",
            str(tiny_clip_dir),
            "--text-model",
            "none",
            "--no-ocr",
            "--direction",
            "i2t",
            "--out",
            str(out),
            "--json",
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert [r["name"] for r in report["results"]] == ["dense-image"]
    assert report["queries"] == 5 and report["documents"] == 5
    assert (out / "recall_at_k.png").stat().st_size > 1000
    assert (out / "report.json").is_file() and list(out.glob("run.*.trec"))


def test_int8_rankings_compared_with_fp32(
    tmp_path: Path, tiny_clip_dir: Path, samples_dir: Path
) -> None:
    """`--precision int8` indexes the data again with the int8 image encoder, beside the
    fp32 index, and reports how far each configuration's rankings moved."""
    karpathy = _karpathy_samples(tmp_path, samples_dir)
    command = [
        sys.executable, "-m", "polylens", "eval", str(karpathy), "--work", str(tmp_path / "w"),
        "--image-model", str(tiny_clip_dir), "--text-model", "none", "--no-ocr",
        "--precision", "int8",
    ]  # fmt: skip
    proc = subprocess.run([*command, "--json"], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    rows = report["precision"]["rows"]
    assert report["precision"]["precision"] == "int8"
    assert [r["configuration"] for r in rows] == [r["name"] for r in report["results"]]
    for row in rows:
        assert 0.0 <= row["overlap_at_10"] <= 1.0 and 0.0 <= row["same_first"] <= 1.0
        assert set(row["metric_change"]) == set(report["results"][0]["metrics"])
    meta = json.loads(
        (tmp_path / "w" / "index-int8" / "image-encoders" / "image" / "meta.json").read_text()
    )
    assert meta["precision"] == "int8" and meta["runtime"] == "onnx"
    assert not (tmp_path / "w" / "index" / "image-encoders" / "image" / "int8.onnx").exists()
    table = subprocess.run(command, capture_output=True, text=True, timeout=600)  # reuses both
    assert table.returncode == 0, table.stderr
    assert "int8 image encoder against fp32" in table.stdout and "top-10 kept" in table.stdout
    bad = subprocess.run([*command[:-1], "int4"], capture_output=True, text=True, timeout=600)
    assert bad.returncode != 0 and "precision must be one of fp32, int8" in bad.stderr + bad.stdout
    assert "Traceback" not in bad.stderr


def test_cli_scores_external_trec_runs_and_qrels(
    cranfield_subset: EvalDataset, tmp_path: Path
) -> None:
    """TREC in and out: polylens's own run file, fed back with --run, scores the same."""

    folder = tmp_path / "beir"
    (folder / "qrels").mkdir(parents=True)
    (folder / "corpus.jsonl").write_text(
        "\n".join(
            json.dumps({"_id": d, "title": doc.title, "text": doc.text})
            for d, doc in cranfield_subset.corpus.items()
        )
    )
    (folder / "queries.jsonl").write_text(
        "\n".join(
            json.dumps({"_id": q, "text": query.text})
            for q, query in cranfield_subset.queries.items()
        )
    )
    lines = ["query-id\tcorpus-id\tscore"] + [
        f"{q}\t{d}\t{g}" for q, docs in cranfield_subset.qrels.items() for d, g in docs.items()
    ]
    (folder / "qrels" / "test.tsv").write_text("\n".join(lines) + "\n")
    trec_qrels = tmp_path / "qrels.trec"
    trec_qrels.write_text(
        "".join(
            f"{q} 0 {d} {g}\n"
            for q, docs in cranfield_subset.qrels.items()
            for d, g in docs.items()
        )
    )
    out = tmp_path / "out"
    base = [
        sys.executable,
        "-m",
        "polylens",
        "eval",
        str(folder),
        "--work",
        str(tmp_path / "w"),
        "--image-model",
        "none",
        "--text-model",
        "fake-text",
        "--no-ocr",
        "--config",
        "bm25",
    ]
    first = subprocess.run(
        [*base, "--out", str(out), "--json"], capture_output=True, text=True, timeout=600
    )
    assert first.returncode == 0, first.stderr
    bm25 = json.loads(first.stdout)["results"][0]["metrics"]
    again = subprocess.run(
        [*base, "--qrels", str(trec_qrels), "--run", str(out / "run.bm25.trec"), "--json"],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert again.returncode == 0, again.stderr
    rows = {r["name"]: r["metrics"] for r in json.loads(again.stdout)["results"]}
    assert rows["bm25"] == pytest.approx(bm25)
    assert rows["run:run.bm25.trec"]["ndcg@10"] == pytest.approx(bm25["ndcg@10"], abs=1e-4)
    # --tune: a before/after table, the two-fold estimate, the best written to the index
    tuned = subprocess.run(
        [*base[:-2], "--tune"], capture_output=True, text=True, timeout=600, env=_wide_env()
    )
    assert tuned.returncode == 0, tuned.stderr
    assert "fusion tuned for ndcg@10" in tuned.stdout and "before" in tuned.stdout
    assert "Tuned on half the queries" in tuned.stdout
    toml = next((tmp_path / "w").glob("**/polylens.toml")).read_text()
    assert "fusion = " in toml and "weight_text = " in toml
    assert "wrote the tuned settings to" in tuned.stderr


def _wide_env() -> dict[str, str]:
    import os

    return {**os.environ, "COLUMNS": "160"}
