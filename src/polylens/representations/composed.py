"""Composed queries (a picture and words about it) in an image-text model's space.

``sum``: the weighted sum of the picture's and the words' embeddings. It pulls results
towards pictures of the words alone as much as towards the change the words ask for.
``pdv``: a prompt directional vector, after Prompt Directional Vectors for zero-shot
composed image retrieval: the words become a *direction*, the embedding of a neutral
prompt carrying them minus that of the prompt alone, added to the picture's embedding;
what the picture shows stays, and moves the way the words say. Training-free, two text
encodings per query (cached).

Neither is chosen by measurement here: ranking composed queries needs real image-text
weights (offline here only tiny random ones load, which exercise the code path only), so
``sum`` stays the default and ``pdv`` is a setting (``composed_query``).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from polylens.encoders.base import normalise

NEUTRAL_PROMPT = "a photo"


def compose(
    model: Any,
    image_vector: np.ndarray,
    text: str,
    *,
    method: str,
    image_weight: float,
    strength: float,
) -> np.ndarray:
    """The query vector for a picture and ``text`` (unit length)."""
    image_vector = np.asarray(image_vector, dtype=np.float32)
    if method == "pdv":
        neutral, modified = model.embed_queries([NEUTRAL_PROMPT, f"{NEUTRAL_PROMPT} {text}"])
        direction = np.asarray(modified, np.float32) - np.asarray(neutral, np.float32)
        return normalise((image_vector + strength * direction)[None, :])[0]
    text_vector = np.asarray(model.embed_queries([text])[0], dtype=np.float32)
    mixed = image_weight * image_vector + (1.0 - image_weight) * text_vector
    return normalise(mixed[None, :])[0]
