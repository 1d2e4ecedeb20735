"""One evaluation from start to end: materialise, index (or reuse the index), evaluate."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from polylens.engine import open_index
from polylens.eval.datasets import EvalDataset
from polylens.eval.materialize import materialize
from polylens.eval.runner import DEFAULT_METRICS, EvalReport, evaluate_index
from polylens.ingest.events import ProgressEvents
from polylens.types import RunSummary


def default_work_dir(dataset: EvalDataset, base: Path = Path(".polylens-eval")) -> Path:
    digest = hashlib.blake2b(dataset.source.encode("utf-8"), digest_size=4).hexdigest()
    return base / f"{dataset.name}-{digest}"


def evaluate_dataset(
    dataset: EvalDataset,
    *,
    work_dir: Path | None = None,
    index_dir: Path | None = None,
    settings: dict[str, Any] | None = None,
    configs: Sequence[str] | None = None,
    metrics: Sequence[str] = DEFAULT_METRICS,
    repeat: int = 1,
    seed: int = 0,
    events: ProgressEvents | None = None,
    on_config: Callable[[str], None] | None = None,
    tune: bool = False,
) -> tuple[EvalReport, RunSummary]:
    """Index ``dataset`` (incrementally: a second call reuses the index) and evaluate it;
    with ``tune``, also search fusion settings on its judgments and write the best to the
    index's polylens.toml (``report.tuning``)."""
    work = work_dir or default_work_dir(dataset)
    mapping = materialize(dataset, work / "corpus")
    with open_index(index_dir or work / "index", **(settings or {})) as index:
        summary = index.add([work / "corpus"], events=events)
        index.warm()  # every query answered by the same (in-memory) path
        report = evaluate_index(
            index,
            dataset,
            mapping,
            configs=configs,
            metrics=metrics,
            repeat=repeat,
            seed=seed,
            on_config=on_config,
        )
        if tune:
            from polylens.eval.tune import tune_fusion, write_tuned

            if on_config:
                on_config("fusion tuning")
            report.tuning = tune_fusion(index, dataset, mapping)
            write_tuned(index.path, report.tuning)
    return report, summary
