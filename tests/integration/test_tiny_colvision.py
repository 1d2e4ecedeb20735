"""Tiny random ColQwen2 and ColPali retrieval models of the real transformers architectures
(tests/_tiny_colvision.py), loaded the way users load ``vidore/colqwen2-v1.0-hf`` and
``vidore/colpali-v1.3-hf``: a local directory through ``ColQwen2ForRetrieval`` /
``ColPaliForRetrieval`` and ``AutoProcessor``, offline, without torchvision.

The checks spell out the late-interaction contract the product relies on: one L2-normalised
vector per token, padding removed with the attention mask (not with the pad token id, which
is also the query-augmentation token), and MaxSim scores."""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch
from _tiny_colvision import (
    COLPALI_IMAGE_TOKENS,
    COLQWEN2_MAX_PIXELS,
    EMBEDDING_DIM,
    make_tiny_colpali,
    make_tiny_colqwen2,
)
from PIL import Image

# An A4-ish page and a small landscape image: different sizes in one batch.
PAGE = (800, 1000)
SMALL = (300, 200)
QUERIES = ["cat", "which page shows the total amount of the red invoice?"]


@dataclass(frozen=True)
class Kind:
    name: str
    model_class: str
    processor_class: str
    image_processor_class: str


COLQWEN2 = Kind("colqwen2", "ColQwen2ForRetrieval", "ColQwen2Processor", "Qwen2VLImageProcessorPil")
COLPALI = Kind("colpali", "ColPaliForRetrieval", "ColPaliProcessor", "SiglipImageProcessorPil")


@pytest.fixture(scope="module")
def model_dirs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("colvision")
    return {
        "colqwen2": make_tiny_colqwen2(root / "tiny-colqwen2"),
        "colpali": make_tiny_colpali(root / "tiny-colpali"),
    }


@pytest.fixture(scope="module", params=[COLQWEN2, COLPALI], ids=lambda k: k.name)
def loaded(request: pytest.FixtureRequest, model_dirs: dict[str, Path]):  # noqa: ANN201
    import transformers
    from transformers import AutoProcessor

    kind: Kind = request.param
    path = model_dirs[kind.name]
    model = getattr(transformers, kind.model_class).from_pretrained(path).eval()
    processor = AutoProcessor.from_pretrained(path)
    return kind, model, processor


def _embed(model, batch) -> list[torch.Tensor]:  # noqa: ANN001
    """One ``(n_real_tokens, dim)`` tensor per item: padded positions dropped with the mask.

    Padded positions must be *indexed away*: the model multiplies them by the mask, but
    with SDPA attention ColQwen2's left-padded rows are NaN, and NaN * 0 is still NaN.
    """
    with torch.inference_mode():
        embeddings = model(**batch).embeddings
    mask = batch["attention_mask"].bool()
    return [embeddings[i][mask[i]] for i in range(embeddings.shape[0])]


def _maxsim(query: torch.Tensor, page: torch.Tensor) -> float:
    """Sum over query tokens of the best dot product with any page vector."""
    return float((query @ page.T).max(dim=1).values.sum())


def test_loads_by_path_with_pil_processors_and_no_torchvision(loaded) -> None:  # noqa: ANN001
    from transformers.utils import is_torchvision_available

    kind, model, processor = loaded
    assert not is_torchvision_available()
    assert type(model).__name__ == kind.model_class
    assert type(processor).__name__ == kind.processor_class
    assert type(processor.image_processor).__name__ == kind.image_processor_class
    assert model.config.embedding_dim == EMBEDDING_DIM


def test_embeds_pages_and_queries_and_scores_maxsim(loaded) -> None:  # noqa: ANN001
    kind, model, processor = loaded
    images = [Image.new("RGB", PAGE, (250, 250, 245)), Image.new("RGB", SMALL, (20, 90, 200))]

    image_batch = processor.process_images(images)
    with torch.inference_mode():
        out = model(**image_batch)
    assert out.embeddings.dtype == torch.float32
    assert out.embeddings.shape[0] == 2 and out.embeddings.shape[2] == EMBEDDING_DIM
    assert out.embeddings.shape[1] == image_batch["input_ids"].shape[1]

    pages = _embed(model, image_batch)
    counts = [len(p) for p in pages]
    image_token_id = model.config.vlm_config.image_token_id
    image_tokens = (image_batch["input_ids"] == image_token_id).sum(dim=1).tolist()
    if kind is COLQWEN2:
        # 800x1000 within 32 * 28 * 28 px -> 168x140 px -> 12x10 patches -> 30 merged tokens.
        grid = image_batch["image_grid_thw"]
        assert grid[0].tolist() == [1, 12, 10]
        assert image_tokens == (grid.prod(dim=1) // 4).tolist()
        assert image_tokens[0] == 30
        assert counts[0] > counts[1]  # the smaller image has fewer patches, so it was padded
        assert (image_batch["attention_mask"][1] == 0).any()
    else:
        # Fixed resolution: every page is the same number of image tokens, no padding.
        assert image_tokens == [COLPALI_IMAGE_TOKENS, COLPALI_IMAGE_TOKENS]
        assert counts[0] == counts[1] == image_batch["input_ids"].shape[1]
    # Besides its image tokens, a page keeps the vectors of the processor's prompt
    # (``visual_prompt_prefix``), like the reference ColPali implementation.
    assert all(c > t for c, t in zip(counts, image_tokens, strict=True))

    query_batch = processor.process_queries(QUERIES)
    queries = _embed(model, query_batch)
    assert len(queries[0]) < len(queries[1])
    # The ten query-augmentation tokens are the pad token but real (attended) tokens:
    # dropping padding by ``input_ids != pad_token_id`` would lose them.
    pad = processor.tokenizer.pad_token_id
    real_pads = ((query_batch["input_ids"] == pad) & query_batch["attention_mask"].bool()).sum(1)
    assert real_pads.tolist() == [10, 10]

    for vectors in pages + queries:
        assert torch.isfinite(vectors).all()
        torch.testing.assert_close(vectors.norm(dim=-1), torch.ones(len(vectors)))

    scores = torch.tensor([[_maxsim(q, p) for p in pages] for q in queries])
    assert torch.isfinite(scores).all()
    # Each vector pair scores in [-1, 1], so |MaxSim| is at most the query's length.
    assert (scores.abs() <= torch.tensor([[len(q)] for q in queries])).all()
    torch.testing.assert_close(processor.score_retrieval(queries, pages), scores)

    # A query's vectors do not depend on what else is in its batch.
    alone = _embed(model, processor.process_queries(QUERIES[:1]))[0]
    torch.testing.assert_close(alone, queries[0], atol=1e-5, rtol=0)


def test_colqwen2_page_budget_is_a_pixel_count(model_dirs: dict[str, Path]) -> None:
    """Two ways that work whatever the checkpoint's saved config holds, without warnings.

    Not ``from_pretrained(path, size=...)``: an older ``preprocessor_config.json`` with
    top-level ``max_pixels`` (as ``vidore/colqwen2-v0.1``'s has) overrides it; and not
    ``from_pretrained(path, max_pixels=...)``: every call then warns that call-time
    ``max_pixels`` is deprecated."""
    from transformers import AutoProcessor

    page = [Image.new("RGB", PAGE)]
    processor = AutoProcessor.from_pretrained(model_dirs["colqwen2"])
    assert processor.image_processor.size.longest_edge == COLQWEN2_MAX_PIXELS
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        # Per call: ``size`` needs both keys (min and max pixels).
        budget = {"shortest_edge": 4 * 784, "longest_edge": 8 * 784}
        small = processor.process_images(page, size=budget)
        assert small["image_grid_thw"].tolist() == [[1, 6, 4]]  # 84x56 px, 6 image tokens
        # For every later call: replace the image processor's ``size``.
        processor.image_processor.size = {"shortest_edge": 4 * 784, "longest_edge": 64 * 784}
        larger = processor.process_images(page)
        assert larger["image_grid_thw"].tolist() == [[1, 16, 14]]  # 224x196 px, 56 tokens


def test_builds_are_deterministic_and_leave_the_global_rng_alone(tmp_path: Path) -> None:
    torch.manual_seed(1234)
    state = torch.get_rng_state()
    first = make_tiny_colqwen2(tmp_path / "a", seed=3)
    assert torch.equal(torch.get_rng_state(), state)
    second = make_tiny_colqwen2(tmp_path / "b", seed=3)
    other = make_tiny_colqwen2(tmp_path / "c", seed=4)
    for name in ("model.safetensors", "tokenizer.json", "config.json", "processor_config.json"):
        assert (first / name).read_bytes() == (second / name).read_bytes(), name
    assert (first / "model.safetensors").read_bytes() != (other / "model.safetensors").read_bytes()
    sizes = sum(f.stat().st_size for f in first.iterdir())
    assert sizes < 2_000_000
