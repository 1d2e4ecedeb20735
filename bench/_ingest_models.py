"""Local, randomly initialised ViT-B/32 CLIP checkpoints for the ingest benchmark.

The hub is unreachable here and speed does not depend on the weights, so the benchmark
builds the real ViT-B/32 architecture (OpenAI sizes) with random weights: once in Hugging
Face format for polylens (loaded by local path through the normal registry) and once as
an open_clip checkpoint file for the peers. The tokenizer is the small BPE the tests
train; only the image tower is timed.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def make_hf_clip_b32(directory: Path) -> Path:
    """HF CLIPModel with CLIPConfig's defaults (= openai/clip-vit-base-patch32 sizes)."""
    if (directory / "model.safetensors").exists():
        return directory
    import torch
    from transformers import CLIPConfig, CLIPImageProcessorPil, CLIPModel

    sys.path.insert(0, str(ROOT))
    from tests._tiny_models import clip_tokenizer

    tokenizer = clip_tokenizer()
    config = CLIPConfig(
        text_config={
            "vocab_size": len(tokenizer),
            "bos_token_id": tokenizer.bos_token_id,
            "eos_token_id": tokenizer.eos_token_id,
            "pad_token_id": tokenizer.pad_token_id,
        },
        vision_config={"image_size": 224, "patch_size": 32},
        projection_dim=512,
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = CLIPModel(config).eval()
    directory.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    CLIPImageProcessorPil().save_pretrained(directory)  # OpenAI CLIP preprocessing defaults
    return directory
