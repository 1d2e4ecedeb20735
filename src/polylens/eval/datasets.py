"""Benchmark formats read into one in-memory shape: corpus, queries, graded qrels.

Supported: the BEIR layout (text, or image/PDF paths in the corpus rows), Flickr30k/COCO
Karpathy-split JSON (both directions), M-BEIR jsonl, ViDoRe page datasets (v1: one parquet
of (query, page) rows; v2: the BEIR layout as ``corpus``/``queries``/``qrels`` parquet
folders), and TREC qrels/run files. Each loader only parses; materialising documents as
files for indexing is :mod:`polylens.eval.materialize`'s job.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from polylens.errors import InputError

Qrels = dict[str, dict[str, int]]
Run = dict[str, dict[str, float]]


@dataclass(frozen=True)
class Doc:
    """A corpus entry: text (with an optional title), or a file (image, PDF, page image)."""

    text: str = ""
    title: str = ""
    path: Path | None = None
    image_bytes: bytes | None = None


@dataclass(frozen=True)
class Query:
    text: str = ""
    image: Path | None = None
    lang: str | None = None
    group: str | None = None
    """Queries that ask the same thing (e.g. in several languages) share a group."""


@dataclass
class EvalDataset:
    name: str
    corpus: dict[str, Doc]
    queries: dict[str, Query]
    qrels: Qrels
    source: str = ""
    meta: dict[str, Any] = field(default_factory=dict)

    def validate(self) -> None:
        if not self.corpus:
            raise InputError(f"dataset {self.name}: the corpus is empty")
        judged = {q for q, docs in self.qrels.items() if any(g > 0 for g in docs.values())}
        self.queries = {q: v for q, v in self.queries.items() if q in judged}
        if not self.queries:
            raise InputError(f"dataset {self.name}: no query has a positive judgment")


def _jsonl(path: Path) -> Iterator[dict[str, Any]]:
    with path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            line = line.strip()
            if not line:
                continue
            try:
                yield json.loads(line)
            except json.JSONDecodeError as exc:
                raise InputError(f"{path}:{number}: not JSON: {exc}") from exc


# -- TREC ------------------------------------------------------------------------------
def read_trec_qrels(path: Path) -> Qrels:
    """``qid 0 docid grade`` lines (TREC); a BEIR ``query-id corpus-id score`` TSV also works."""
    qrels: Qrels = {}
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        parts = line.split()
        if not parts or parts[0] in ("query-id", "qid", "query_id"):
            continue
        if len(parts) == 4:
            qid, _, doc, grade = parts
        elif len(parts) == 3:
            qid, doc, grade = parts
        else:
            raise InputError(f"{path}:{number}: expected 3 or 4 columns, got {len(parts)}")
        try:
            qrels.setdefault(qid, {})[doc] = int(float(grade))
        except ValueError as exc:
            raise InputError(f"{path}:{number}: grade {grade!r} is not a number") from exc
    return qrels


def read_trec_run(path: Path) -> Run:
    run: Run = {}
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        parts = line.split()
        if not parts:
            continue
        if len(parts) != 6:
            raise InputError(f"{path}:{number}: a TREC run line has 6 columns")
        qid, _, doc, _, score, _ = parts
        run.setdefault(qid, {})[doc] = float(score)
    return run


def write_trec_run(run: Run, path: Path, tag: str) -> None:
    lines = []
    for qid in sorted(run):
        ranked = sorted(run[qid].items(), key=lambda kv: -kv[1])
        for rank, (doc, score) in enumerate(ranked, start=1):
            lines.append(f"{qid} Q0 {doc} {rank} {score:.6f} {tag}")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


# -- BEIR ------------------------------------------------------------------------------
def load_beir(folder: Path, split: str = "test") -> EvalDataset:
    """BEIR layout. Corpus rows may carry ``image``/``path`` (relative to the folder) for
    image, PDF or page-image corpora; query rows may carry ``image``, ``lang``, ``group``."""
    corpus_file, queries_file = folder / "corpus.jsonl", folder / "queries.jsonl"
    qrels_file = folder / "qrels" / f"{split}.tsv"
    for needed in (corpus_file, queries_file, qrels_file):
        if not needed.is_file():
            splits = sorted(p.stem for p in (folder / "qrels").glob("*.tsv"))
            raise InputError(f"BEIR dataset {folder}: missing {needed.name} (splits: {splits})")
    corpus: dict[str, Doc] = {}
    for row in _jsonl(corpus_file):
        ref = row.get("image") or row.get("path")
        corpus[str(row["_id"])] = Doc(
            text=row.get("text") or "",
            title=row.get("title") or "",
            path=(folder / ref) if ref else None,
        )
    queries = {
        str(row["_id"]): Query(
            text=row.get("text") or "",
            image=(folder / row["image"]) if row.get("image") else None,
            lang=row.get("lang"),
            group=str(row["group"]) if row.get("group") is not None else None,
        )
        for row in _jsonl(queries_file)
    }
    return EvalDataset(folder.name, corpus, queries, read_trec_qrels(qrels_file), str(folder))


# -- Karpathy splits (Flickr30k, COCO) --------------------------------------------------
def load_karpathy(
    path: Path, *, images_root: Path | None = None, split: str = "test", direction: str = "t2i"
) -> EvalDataset:
    """``dataset_flickr30k.json``-style files: images with five captions each.

    ``t2i``: captions are queries, images the corpus; ``i2t``: the reverse."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise InputError(f"{path}: cannot read Karpathy JSON: {exc}") from exc
    root = images_root or path.parent
    corpus: dict[str, Doc] = {}
    queries: dict[str, Query] = {}
    qrels: Qrels = {}
    for image in data.get("images", []):
        if image.get("split", split) != split:
            continue
        folder = image.get("filepath", "")
        image_path = root / folder / image["filename"]
        image_id = f"img{image.get('imgid', image['filename'])}"
        for sentence in image.get("sentences", []):
            caption_id = f"cap{sentence.get('sentid', len(queries))}"
            caption = sentence.get("raw") or " ".join(sentence.get("tokens", []))
            if direction == "t2i":
                queries[caption_id] = Query(text=caption)
                qrels.setdefault(caption_id, {})[image_id] = 1
            else:
                corpus[caption_id] = Doc(text=caption)
                qrels.setdefault(image_id, {})[caption_id] = 1
        if direction == "t2i":
            corpus[image_id] = Doc(path=image_path)
        else:
            queries[image_id] = Query(image=image_path)
    if direction not in ("t2i", "i2t"):
        raise InputError("direction must be t2i or i2t")
    name = f"{path.stem}-{split}-{direction}"
    return EvalDataset(name, corpus, queries, qrels, str(path), {"direction": direction})


# -- M-BEIR ----------------------------------------------------------------------------
def load_mbeir(
    queries_file: Path, candidates_file: Path, *, images_root: Path | None = None
) -> EvalDataset:
    """M-BEIR jsonl: queries with ``qid``, ``query_txt``, ``query_img_path``,
    ``pos_cand_list``; a candidate pool with ``did``, ``txt``, ``img_path``."""
    root = images_root or queries_file.parent
    corpus: dict[str, Doc] = {}
    for row in _jsonl(candidates_file):
        img = row.get("img_path")
        corpus[str(row["did"])] = Doc(text=row.get("txt") or "", path=(root / img) if img else None)
    queries: dict[str, Query] = {}
    qrels: Qrels = {}
    for row in _jsonl(queries_file):
        qid = str(row["qid"])
        img = row.get("query_img_path")
        queries[qid] = Query(text=row.get("query_txt") or "", image=(root / img) if img else None)
        for did in row.get("pos_cand_list", []):
            qrels.setdefault(qid, {})[str(did)] = 1
    return EvalDataset(queries_file.stem, corpus, queries, qrels, str(queries_file))


# -- ViDoRe-style page datasets -----------------------------------------------------------
def load_vidore_parquet(path: Path) -> EvalDataset:
    """A ViDoRe benchmark split saved as parquet (or with ``datasets.save_to_disk``): one row per (query, page) with columns
    ``query``, ``image`` (``{"bytes": ...}`` or raw bytes) and ``image_filename``.
    Pages are deduplicated by filename; rows with a null query only add pages."""
    files = _table_files(path)
    if not files:
        raise InputError(f"{path}: no parquet or arrow files")
    corpus: dict[str, Doc] = {}
    queries: dict[str, Query] = {}
    qrels: Qrels = {}
    by_text: dict[str, str] = {}
    for file in files:
        table = _read_table(file)
        missing = {"image", "image_filename"} - set(table.column_names)
        if missing:
            raise InputError(f"{file}: missing columns {sorted(missing)}")
        for row in table.to_pylist():
            doc_id = str(row["image_filename"])
            if doc_id not in corpus:
                image = row["image"]
                data = image.get("bytes") if isinstance(image, dict) else image
                if not data:
                    raise InputError(f"{file}: page {doc_id} has no image bytes")
                corpus[doc_id] = Doc(image_bytes=data)
            text = row.get("query")
            if text:
                qid = by_text.setdefault(text, f"q{len(by_text)}")
                queries[qid] = Query(text=text)
                qrels.setdefault(qid, {})[doc_id] = 1
    return EvalDataset(path.stem, corpus, queries, qrels, str(path))


def load_vidore_beir(folder: Path, split: str = "test") -> EvalDataset:
    """ViDoRe v2 (and later) as downloaded from the hub: ``corpus/``, ``queries/`` and
    ``qrels/`` folders (``qrels`` may be the ``default`` config) of parquet shards, or the
    same subsets written by ``datasets.save_to_disk``. Corpus rows: ``corpus-id``,
    ``image``; queries: ``query-id``, ``query``, optional ``language``; qrels: ``query-id``,
    ``corpus-id``, ``score``. Where a folder holds several splits, ``split``'s shards are
    read."""
    parts = {}
    for subset, names in (
        ("corpus", ("corpus",)),
        ("queries", ("queries",)),
        ("qrels", ("qrels", "default")),
    ):
        found = [folder / n for n in names if (folder / n).is_dir()]
        files = _split_files(found[0], split) if found else []
        if not files:
            raise InputError(
                f"ViDoRe BEIR dataset {folder}: no {subset}/ parquet or arrow files"
                + (f" for split {split!r}" if found else "")
            )
        parts[subset] = files
    corpus: dict[str, Doc] = {}
    for row in _rows(parts["corpus"], ("corpus-id", "image")):
        data = row["image"].get("bytes") if isinstance(row["image"], dict) else row["image"]
        if not data:
            raise InputError(f"{folder}: page {row['corpus-id']} has no image bytes")
        corpus[str(row["corpus-id"])] = Doc(image_bytes=data)
    queries = {
        str(row["query-id"]): Query(text=row["query"] or "", lang=row.get("language"))
        for row in _rows(parts["queries"], ("query-id", "query"))
    }
    qrels: Qrels = {}
    for row in _rows(parts["qrels"], ("query-id", "corpus-id", "score")):
        qrels.setdefault(str(row["query-id"]), {})[str(row["corpus-id"])] = int(row["score"])
    return EvalDataset(folder.name, corpus, queries, qrels, str(folder), {"layout": "vidore-beir"})


def _split_files(folder: Path, split: str) -> list[Path]:
    files = _table_files(folder)
    chosen = [f for f in files if f.name.startswith(f"{split}-") or f.parent.name == split]
    return chosen or files


def _rows(files: list[Path], needed: tuple[str, ...]) -> Iterator[dict[str, Any]]:
    """Rows of the shards, one record batch at a time (a corpus of page images can be
    several GB: never all of it as Python objects at once)."""
    for file in files:
        table = _read_table(file)
        missing = set(needed) - set(table.column_names)
        if missing:
            raise InputError(f"{file}: missing columns {sorted(missing)}")
        for batch in table.to_batches(max_chunksize=256):
            yield from batch.to_pylist()


def _is_vidore_beir(path: Path) -> bool:
    return path.is_dir() and all(
        any(_table_files(path / n) for n in names if (path / n).is_dir())
        for names in (("corpus",), ("queries",), ("qrels", "default"))
    )


def _table_files(path: Path) -> list[Path]:
    """Parquet files, or the ``*.arrow`` shards of a ``datasets.save_to_disk`` folder."""
    if not path.is_dir():
        return [path]
    return sorted(path.glob("*.parquet")) or sorted(path.rglob("*.arrow"))


def _read_table(file: Path) -> Any:
    import pyarrow as pa
    import pyarrow.parquet as pq

    if file.suffix == ".parquet":
        return pq.read_table(file)
    with pa.memory_map(str(file)) as source:  # datasets writes Arrow IPC streams
        try:
            return pa.ipc.open_stream(source).read_all()
        except pa.ArrowInvalid:
            return pa.ipc.open_file(source).read_all()


def load_dataset(
    path: Path, *, split: str = "test", candidates: Path | None = None, **options: Any
) -> EvalDataset:
    """Pick the loader from what is on disk."""
    path = Path(path)
    if path.is_dir() and (path / "corpus.jsonl").is_file():
        dataset = load_beir(path, split)
    elif _is_vidore_beir(path):
        dataset = load_vidore_beir(path, split)
    elif path.suffix in (".parquet", ".arrow") or (path.is_dir() and _table_files(path)):
        dataset = load_vidore_parquet(path)
    elif path.suffix == ".jsonl" and candidates is not None:
        dataset = load_mbeir(path, candidates, images_root=options.get("images_root"))
    elif path.suffix == ".json":
        dataset = load_karpathy(
            path,
            images_root=options.get("images_root"),
            split=split,
            direction=options.get("direction", "t2i"),
        )
    else:
        raise InputError(
            f"{path}: not a recognised dataset (a BEIR folder, Karpathy JSON, M-BEIR jsonl "
            "with --candidates, ViDoRe parquet, or a ViDoRe BEIR folder)"
        )
    dataset.validate()
    return dataset
