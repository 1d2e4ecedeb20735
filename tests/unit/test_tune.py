"""Fusion tuning finds the setting the judgments favour, on lists made to favour one."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from polylens.config import IndexConfig, load_config
from polylens.eval.datasets import Doc, EvalDataset, Query
from polylens.eval.tune import TuneReport, tune_fusion, write_tuned
from polylens.representations.base import Ranked

DOCS = [f"d{i}" for i in range(30)]


class _Searcher:
    """Two lists per query: ``good`` ranks the relevant document first, ``noisy`` last."""

    def __init__(self) -> None:
        rep = SimpleNamespace(weight_key="weight_text")
        bm25 = SimpleNamespace(weight_key="weight_bm25")
        self.bound = [
            SimpleNamespace(name="good", rep=rep),
            SimpleNamespace(name="noisy", rep=bm25),
        ]
        self.reader = SimpleNamespace(items_and_paths=self._items)

    def _ready(self, bound: Any) -> bool:
        return True

    def lists(self, request: Any) -> dict[str, Ranked]:
        target = f"d{request.text}"
        others = [d for d in DOCS if d != target]
        good = [target, *others[:9]]
        noisy = [*others[:10], target]  # the good list's runners-up, the target last
        return {
            "good": Ranked(good, [1.0] * 10, evidence=[5.0] + [0.0] * 9, curve="text"),
            "noisy": Ranked(noisy, [1.0] * 11, evidence=[0.3] * 11, curve="bm25"),
        }

    def _items(self, ids: list[str]) -> tuple[dict, dict]:
        items = {i: {"kind": "text", "content_hash": i} for i in ids}
        return items, {i: {f"/corpus/{i}.txt"} for i in ids}


def _dataset() -> EvalDataset:
    queries = {str(n): Query(text=str(n)) for n in range(12)}
    qrels = {str(n): {f"d{n}": 1} for n in range(12)}
    return EvalDataset("synthetic", {d: Doc(text=d) for d in DOCS}, queries, qrels, source="test")


def _tuned(tmp_path: Path) -> TuneReport:
    index = SimpleNamespace(_searcher=_Searcher, config=IndexConfig(), path=tmp_path)
    mapping = {f"/corpus/{d}.txt": d for d in DOCS}
    return tune_fusion(index, _dataset(), mapping, metrics=("ndcg@10", "recall@100"))


def test_tuning_turns_down_the_list_the_judgments_disfavour(tmp_path: Path) -> None:
    report = _tuned(tmp_path)
    # equal weights: the noisy list drags the relevant document off the top
    assert report.before.weights == {"good": 1.0, "noisy": 1.0}
    assert report.after_metrics["ndcg@10"] == pytest.approx(1.0)
    assert report.after_metrics["ndcg@10"] > report.before_metrics["ndcg@10"]
    assert report.after.weights["good"] > report.after.weights["noisy"]
    assert report.two_fold == pytest.approx(1.0)  # both halves favour the same
    assert report.tried > 10
    assert report.changes["weight_text"] > report.changes["weight_bm25"]


def test_the_tuned_settings_are_written_and_read_back(tmp_path: Path) -> None:
    (tmp_path / "polylens.toml").write_text('text_model = "minilm"\nweak_below = 0.2\n')
    report = _tuned(tmp_path)
    write_tuned(tmp_path, report)
    config = load_config(tmp_path)
    assert config.fusion == report.after.method
    assert config.weight_text == report.changes["weight_text"]
    assert config.weak_below == 0.2  # the file's own settings stay
    assert report.written == str(tmp_path / "polylens.toml")
