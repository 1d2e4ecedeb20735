"""Confidence maths on synthetic score distributions: background-normalised evidence,
curves, their combination, and what an item missing from a list is given."""

from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np
import pytest

from polylens.representations.base import Ranked
from polylens.representations.lexical import Bm25Index, Vocabulary
from polylens.representations.text_embedding import TextEmbedding
from polylens.search.calibration import (
    PINNED_CONFIDENCE,
    Calibration,
    Curve,
    confidence_of,
    default_calibration,
    evidence_of,
)
from polylens.store.base import Filter


def _unit(rows: np.ndarray) -> np.ndarray:
    return (rows / np.linalg.norm(rows, axis=-1, keepdims=True)).astype(np.float32)


def _ctx(bank: np.ndarray, kinds: list[str] | None = None) -> SimpleNamespace:
    part = SimpleNamespace(bank=bank, bank_kinds=np.array(kinds, dtype=object) if kinds else None)
    return SimpleNamespace(part=part)


def test_dense_evidence_is_standard_deviations_above_the_query_background() -> None:
    rng = np.random.default_rng(1)
    bank = _unit(rng.normal(size=(1024, 64)))
    query = _unit(rng.normal(size=64))
    background = (bank @ query).tolist()
    evidence = TextEmbedding().evidence(_ctx(bank), query, background, None)
    assert evidence is not None
    assert abs(np.mean(evidence)) < 1e-6 and abs(np.std(evidence) - 1.0) < 1e-6
    # a planted match stands far out; the same cosine means less for a query that sits
    # close to everything (its background is higher)
    match = float(_unit(query + 0.1 * rng.normal(size=64)) @ query)
    [z] = TextEmbedding().evidence(_ctx(bank), query, [match], None)
    assert z > 5
    hub_bank = _unit(bank + 2.0 * query)  # everything leans towards the query
    [z_hub] = TextEmbedding().evidence(_ctx(hub_bank), query, [match], None)
    assert z_hub < z


def test_dense_evidence_measures_against_the_kinds_searched() -> None:
    rng = np.random.default_rng(2)
    query = _unit(rng.normal(size=32))
    texts = _unit(rng.normal(size=(200, 32)) + 3 * query)  # text rows sit near a text query
    pictures = _unit(rng.normal(size=(200, 32)))
    bank = np.vstack([texts, pictures])
    kinds = ["text"] * 200 + ["image"] * 200
    rep = TextEmbedding()
    [all_kinds] = rep.evidence(_ctx(bank, kinds), query, [0.5], None)
    [pictures_only] = rep.evidence(_ctx(bank, kinds), query, [0.5], Filter(kinds=("image",)))
    assert pictures_only > all_kinds


def test_no_bank_no_evidence() -> None:
    assert TextEmbedding().evidence(_ctx(None), np.ones(4), [0.3], None) is None  # type: ignore[arg-type]


def test_bm25_share_is_one_for_a_full_match_and_falls_with_unknown_words() -> None:
    texts = ["wing flutter", "boundary layer transition", "flutter of thin panels at speed"]
    index = Bm25Index.build(Vocabulary(), ["a", "b", "c"], texts)
    rows, scores = index.search("wing flutter", 3)
    assert rows[0] == 0
    full = scores[0] / index.attainable("wing flutter")
    assert full == pytest.approx(1.0, rel=1e-5)
    diluted = scores[0] / index.attainable("wing flutter drones certification")
    assert 0 < diluted < 0.5 * full
    assert index.attainable("") == 0


def test_curves_combine_as_a_weighted_mean_of_log_odds() -> None:
    cal = Calibration(
        curves={"text": Curve(2.0, -4.0), "bm25": Curve(10.0, -3.0)},
        weights={"text": 3.0, "bm25": 1.0},
        scale=1.5,
        bias=-0.5,
    )
    assert cal.combine({"text": 2.0}) == pytest.approx(0.5)
    assert cal.combine({"unknown": 9.0}) is None
    both = cal.combine({"text": 3.0, "bm25": 0.5})
    mean = (3.0 * 2.0 + 1.0 * 2.0) / 4.0
    assert both == pytest.approx(1 / (1 + math.exp(-(1.5 * mean - 0.5))))
    # more evidence never lowers confidence
    grid = [cal.combine({"text": z, "bm25": 0.3}) for z in np.linspace(-3, 8, 23)]
    assert all(
        a is not None and b is not None and a <= b for a, b in zip(grid, grid[1:], strict=False)
    )


def test_a_fitted_curve_is_calibrated_on_its_own_distribution() -> None:
    """Evidence from two populations (relevant ~ N(3, 1), not ~ N(0, 1), a quarter
    relevant): the exact log-odds is linear in evidence; a curve with it predicts the
    observed relevance rate in every confidence band."""
    rng = np.random.default_rng(3)
    n = 40_000
    relevant = rng.random(n) < 0.25
    evidence = np.where(relevant, rng.normal(3, 1, n), rng.normal(0, 1, n))
    # log N(x;3,1)/N(x;0,1) + log(0.25/0.75) = 3x - 4.5 - log 3
    cal = Calibration(curves={"text": Curve(3.0, -4.5 - math.log(3))})
    p = np.array([cal.combine({"text": float(e)}) for e in evidence])
    for lo in np.arange(0.0, 1.0, 0.2):
        band = (p >= lo) & (p < lo + 0.2)
        assert abs(relevant[band].mean() - p[band].mean()) < 0.03


def test_an_item_missing_from_a_list_gets_that_lists_last_evidence() -> None:
    lists = {
        "text": Ranked(["a", "b"], [0.9, 0.5], evidence=[6.0, 2.0], curve="text"),
        "bm25": Ranked(["b"], [3.0], evidence=[0.4], curve="bm25"),
    }
    assert evidence_of({"text": 1}, lists) == {"text": 6.0, "bm25": 0.4}
    assert evidence_of({"text": 2, "bm25": 1}, lists) == {"text": 2.0, "bm25": 0.4}
    # a BM25 list that matched nothing says the query's words are not in the index
    nothing = {"bm25": Ranked([], [], evidence=None, curve="bm25")}
    assert evidence_of({}, nothing) == {"bm25": 0.0}


def test_pinned_copies_are_confident_and_lists_without_curves_add_nothing() -> None:
    lists = {
        "phash": Ranked(["a"], [1.0], pinned=True),
        "plugin": Ranked(["a", "b"], [2.0, 1.0]),
    }
    assert confidence_of("a", {"phash": 1, "plugin": 1}, lists) == PINNED_CONFIDENCE
    assert confidence_of("b", {"plugin": 2}, lists) is None


def test_the_shipped_calibration_has_every_curve_the_built_ins_report() -> None:
    cal = default_calibration()
    assert {"text", "bm25", "image-text", "image"} <= set(cal.curves)
    assert all(curve.slope > 0 for curve in cal.curves.values())
