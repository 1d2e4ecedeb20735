"""Retrieval evaluation through the same index and search path users hit."""

from __future__ import annotations

from polylens.eval.datasets import EvalDataset, load_dataset
from polylens.eval.runner import CONFIGS, EvalReport, evaluate_index

__all__ = ["CONFIGS", "EvalDataset", "EvalReport", "evaluate_index", "load_dataset"]
