from __future__ import annotations

import pytest

from polylens.search.fusion import reciprocal_rank_fusion


def test_item_found_by_several_retrievers_wins() -> None:
    fused = reciprocal_rank_fusion({"a": ["x", "y", "z"], "b": ["z", "y"]}, k=60)
    scores = {f.id: f.score for f in fused}
    assert scores["y"] == pytest.approx(1 / 62 + 1 / 62)
    assert scores["z"] == pytest.approx(1 / 63 + 1 / 61)
    assert scores["x"] == pytest.approx(1 / 61)
    assert fused[0].id == "z" and fused[1].id == "y"


def test_weights_scale_contributions_and_zero_drops_a_list() -> None:
    fused = reciprocal_rank_fusion({"a": ["x"], "b": ["y"]}, weights={"a": 2.0, "b": 0.0})
    assert [f.id for f in fused] == ["x"]
    assert fused[0].score == pytest.approx(2 / 61)


def test_duplicates_in_one_list_count_once_and_ranks_are_reported() -> None:
    fused = reciprocal_rank_fusion({"a": ["x", "x", "y"]}, k=10)
    assert fused[0].ranks == {"a": 1}
    assert fused[1].ranks == {"a": 3}


def test_ties_are_deterministic() -> None:
    one = reciprocal_rank_fusion({"a": ["p", "q"], "b": ["q", "p"]})
    two = reciprocal_rank_fusion({"b": ["q", "p"], "a": ["p", "q"]})
    assert [f.id for f in one] == [f.id for f in two]
