"""Evidence selection: how many hits the score distribution says are good, no repeats."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image

from polylens.ask.evidence import choose_evidence, good_group
from polylens.ask.pictures import fit_jpeg
from polylens.types import Hit


def _hits(confidences: list[float | None]) -> list[Hit]:
    return [
        Hit(f"i{n}", f"/d/f{n}.pdf", "page", 1, 1 / (60 + n), confidence=c)
        for n, c in enumerate(confidences)
    ]


def test_a_clear_gap_keeps_the_upper_group() -> None:
    keep = good_group([0.95, 0.9, 0.88, 0.2, 0.15, 0.12, 0.1])
    assert keep == [True, True, True, False, False, False, False]


def test_scores_that_do_not_split_are_kept_together() -> None:
    assert all(good_group([0.8, 0.78, 0.79, 0.77]))
    assert all(good_group([0.9, 0.1]))  # too few to fit two groups
    assert all(good_group([0.5, None, 0.4]))  # unmeasured: no basis to cut


def test_mixture_finds_the_boundary_of_synthetic_groups() -> None:
    rng = np.random.default_rng(0)
    good = 1 / (1 + np.exp(-rng.normal(2.5, 0.4, 6)))
    poor = 1 / (1 + np.exp(-rng.normal(-1.5, 0.5, 20)))
    keep = good_group([*good, *poor])
    assert keep[:6] == [True] * 6 and not any(keep[6:])


def test_weak_hits_never_go_and_max_evidence_clamps() -> None:
    hits = _hits([0.9, 0.88, 0.87, 0.86, 0.85, 0.05])
    chosen = choose_evidence(hits, max_evidence=3, weak_below=0.1, texts={})
    assert [h.id for h in chosen] == ["i0", "i1", "i2"]
    assert choose_evidence(_hits([0.05, 0.02]), max_evidence=3, weak_below=0.1, texts={}) == []


def test_repeated_pages_count_once_and_earlier_rounds_are_excluded() -> None:
    page = " ".join(f"word{i}" for i in range(60))
    texts = {"i0": page, "i1": page + " footer", "i2": "something else entirely " * 5}
    hits = _hits([0.9, 0.9, 0.9])
    chosen = choose_evidence(hits, max_evidence=5, weak_below=0.1, texts=texts)
    assert [h.id for h in chosen] == ["i0", "i2"]
    later = choose_evidence(hits, max_evidence=5, weak_below=0.1, texts=texts, exclude=chosen[:1])
    assert [h.id for h in later] == ["i2"]


def test_pictures_fit_the_pixel_and_byte_budget() -> None:
    rng = np.random.default_rng(1)
    noisy = Image.fromarray(rng.integers(0, 255, (1600, 1200, 3), dtype=np.uint8))
    jpeg = fit_jpeg(noisy, max_pixels=250_000, max_bytes=60_000)
    assert jpeg is not None and len(jpeg) <= 60_000
    decoded = Image.open(io.BytesIO(jpeg))
    assert decoded.width * decoded.height <= 250_000
    assert fit_jpeg(noisy, max_pixels=250_000, max_bytes=500) is None  # cannot fit legibly
