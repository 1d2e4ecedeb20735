"""CLIP-family image-text models (CLIP, SigLIP, SigLIP 2, ...) through transformers.

One class serves every architecture that exposes ``get_image_features`` and
``get_text_features``; the differences that matter for retrieval (SigLIP's text tower
was trained on max-length padding) are read from the model config, not from the name.

Image preprocessing has a fast path: transformers' image processors convert every image
to numpy and back and normalise in float64, which costs as much as a third of a CPU
forward pass. :class:`FastImagePrep` does the same resize (PIL, same filter and sizes),
crop and normalisation, split so the expensive part (:meth:`prepare_image`, to a small
uint8 array) runs on the ingest pipeline's decode threads and only the cheap
normalisation runs beside the model. Processors it cannot reproduce use the slow path.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from polylens._lazy import import_or_raise
from polylens.encoders.base import ImageTextEncoder
from polylens.encoders.device import pick_device
from polylens.encoders.onnx_images import ImageTower, probe_images
from polylens.encoders.onnx_queries import QueryTower
from polylens.errors import ModelError

if TYPE_CHECKING:
    from PIL import Image

log = logging.getLogger(__name__)

_MAX_LENGTH_PADDED = ("siglip", "siglip2")


class FastImagePrep:
    """Resize -> centre crop -> rescale -> normalise, as a transformers PIL image processor.

    Matches ``CLIPImageProcessor``/``SiglipImageProcessor`` outputs to float rounding
    (tests/unit/test_ingest_speed_prep.py checks it). :meth:`create` returns ``None`` for
    a processor with a setting it does not reproduce.
    """

    def __init__(
        self,
        *,
        shortest_edge: int | None,
        size: tuple[int, int] | None,
        crop: tuple[int, int] | None,
        resample: int,
        scale: float,
        mean: Sequence[float],
        std: Sequence[float],
    ) -> None:
        self.shortest_edge, self.size = shortest_edge, size
        self.crop, self.resample = crop, resample
        # (x * scale - mean) / std == x * a + b, per channel, computed once
        mean_a, std_a = np.asarray(mean, np.float32), np.asarray(std, np.float32)
        self.mul = (np.float32(scale) / std_a).reshape(3, 1, 1)
        self.add = (-mean_a / std_a).reshape(3, 1, 1)

    @classmethod
    def create(cls, processor: Any) -> FastImagePrep | None:
        def get(name: str, default: Any = None) -> Any:
            return getattr(processor, name, default)

        if get("do_pad") or get("do_resize") is not True or get("do_normalize") is not True:
            return None
        if get("do_rescale") is not True or get("do_convert_rgb") is False:
            return None
        if type(processor).__name__.endswith("Fast"):
            return None  # torchvision backend: antialiased tensor resize, not PIL
        size, crop = get("size"), get("crop_size") if get("do_center_crop") else None
        shortest = getattr(size, "shortest_edge", None)
        pair = (getattr(size, "height", None), getattr(size, "width", None))
        if getattr(size, "longest_edge", None) or (shortest is None and None in pair):
            return None
        mean, std = get("image_mean"), get("image_std")
        if mean is None or std is None or len(mean) != 3 or len(std) != 3:
            return None
        crop_pair = None
        if crop is not None:
            crop_pair = (getattr(crop, "height", None), getattr(crop, "width", None))
            if None in crop_pair:
                return None
        return cls(
            shortest_edge=int(shortest) if shortest else None,
            size=None if shortest else (int(pair[0]), int(pair[1])),
            crop=crop_pair,
            resample=int(get("resample", 2)),
            scale=float(get("rescale_factor", 1 / 255)),
            mean=mean,
            std=std,
        )

    def prepare_image(self, image: Image.Image) -> np.ndarray:
        """uint8 (H, W, 3), resized and cropped: the thread-friendly, compact part."""
        image = image if image.mode == "RGB" else image.convert("RGB")
        width, height = image.size
        if self.shortest_edge is not None:
            short, long = (width, height) if width <= height else (height, width)
            new_long = int(self.shortest_edge * long / short)
            if width <= height:
                new_w, new_h = self.shortest_edge, new_long
            else:
                new_w, new_h = new_long, self.shortest_edge
        else:
            assert self.size is not None
            new_h, new_w = self.size
        if (new_w, new_h) != (width, height):
            image = image.resize((new_w, new_h), resample=self.resample)
        if self.crop is not None:
            crop_h, crop_w = self.crop
            top, left = (new_h - crop_h) // 2, (new_w - crop_w) // 2
            # outside the image PIL fills with zeros, like the processor's padding
            image = image.crop((left, top, left + crop_w, top + crop_h))
        return np.asarray(image, dtype=np.uint8)

    def to_pixels(self, prepared: Sequence[np.ndarray]) -> np.ndarray:
        """float32 (N, 3, H, W), rescaled and normalised: what the model takes."""
        batch = np.stack(prepared).transpose(0, 3, 1, 2).astype(np.float32)
        batch *= self.mul
        batch += self.add
        return batch


def _features(output: Any, torch: Any, *attrs: str) -> Any:
    """transformers 4 returns a tensor, 5 may return a ModelOutput: accept both."""
    if isinstance(output, torch.Tensor):
        return output
    for attr in attrs:
        value = getattr(output, attr, None)
        if value is not None:
            return value
    raise ModelError(f"unexpected model output type {type(output).__name__}")


class TransformersImageText(ImageTextEncoder):
    def __init__(
        self, name: str, path: Path, *, device: str = "auto", batch_size: int = 32
    ) -> None:
        transformers = import_or_raise("transformers")
        self._torch = import_or_raise("torch")
        self.name = name
        self.resolved = str(path)
        self.batch_size = batch_size
        self.device, dtype = pick_device(device)
        try:
            config = transformers.AutoConfig.from_pretrained(path)
            self._model = transformers.AutoModel.from_pretrained(path, dtype=dtype)
            self._tokenizer = transformers.AutoTokenizer.from_pretrained(path)
            self._image_processor = transformers.AutoImageProcessor.from_pretrained(path)
        except (OSError, ValueError, KeyError) as exc:
            raise ModelError(f"cannot load image-text model from {path}: {exc}") from exc
        if not (
            hasattr(self._model, "get_image_features") and hasattr(self._model, "get_text_features")
        ):
            raise ModelError(
                f"{name!r} ({config.model_type}) is not an image-text model: it has no "
                "get_image_features/get_text_features"
            )
        self._model.eval().to(self.device)
        self.model_type = str(config.model_type)
        text_config = getattr(config, "text_config", None)
        self._max_length = int(getattr(text_config, "max_position_embeddings", 77) or 77)
        self._pad_to_max = self.model_type in _MAX_LENGTH_PADDED
        self._dtype = dtype
        self.fast_prep = FastImagePrep.create(self._image_processor)
        # One forward pass at a time per model: torch already uses every core for one.
        self._lock = threading.Lock()
        self._image_runner: Callable[[np.ndarray], np.ndarray] | None = None
        """ONNX Runtime's image tower when the run chose it (``encoders.onnx_images``)."""
        self.dim = int(self._embed_text_batch(["a photo"]).shape[1])

    @property
    def input_side(self) -> int | None:
        """The short side of the pictures the image tower sees (after resize and crop);
        None when the processor is one :class:`FastImagePrep` does not reproduce."""
        prep = self.fast_prep
        if prep is None:
            return None
        sides = [prep.shortest_edge or 0, *(prep.size or ()), *(prep.crop or ())]
        return max(sides) or None

    def prepare_image(self, image: Image.Image) -> Any:
        """The part of preprocessing that can run ahead, on any thread.

        Returns a small uint8 array on the fast path (``image`` itself otherwise);
        :meth:`embed_images` accepts either.
        """
        return image if self.fast_prep is None else self.fast_prep.prepare_image(image)

    def _pixels(self, images: Sequence[Any]) -> Any:
        """What the image tower takes: a float32 (N, 3, H, W) array or tensor."""
        if self.fast_prep is not None:
            prep = self.fast_prep
            arrays = [im if isinstance(im, np.ndarray) else prep.prepare_image(im) for im in images]
            return prep.to_pixels(arrays)
        inputs = self._image_processor(
            images=[im.convert("RGB") for im in images], return_tensors="pt"
        )
        return inputs["pixel_values"]

    def _embed_image_batch(self, images: Sequence[Any]) -> np.ndarray:
        pixels = self._pixels(images)
        if self._image_runner is not None:
            return self._image_runner(np.asarray(pixels, dtype=np.float32))
        return self.embed_pixels(pixels)

    def embed_pixels(self, pixels: Any) -> np.ndarray:
        """The image tower in torch, on pixels from :meth:`_pixels` (not normalised)."""
        torch = self._torch
        if isinstance(pixels, np.ndarray):
            pixels = torch.from_numpy(pixels)
        pixels = pixels.to(self.device, dtype=self._dtype)
        with self._lock, torch.inference_mode():
            out = self._model.get_image_features(pixel_values=pixels)
        feats = _features(out, torch, "image_embeds", "pooler_output")
        return feats.float().cpu().numpy()

    def image_tower(self) -> ImageTower:
        """The image tower for ONNX Runtime (``encoders.onnx_images``), with probe pixels
        made by this model's own preprocessing."""
        tower = self._tower(
            "get_image_features", ("pixel_values",), ("image_embeds", "pooler_output")
        )
        pixels = np.asarray(self._pixels(probe_images()), dtype=np.float32)
        return ImageTower(tower, pixels)

    def use_image_runner(self, runner: Callable[[np.ndarray], np.ndarray] | None) -> None:
        """Run the image tower with ``runner`` (pixels to embeddings) instead of torch."""
        self._image_runner = runner

    def query_tower(self) -> QueryTower | None:
        """The text tower for ONNX export (``encoders.onnx_queries``), with the inputs and
        padding :meth:`_embed_text_batch` uses."""
        if not getattr(self._tokenizer, "is_fast", False):
            return None
        names = ("input_ids",) if self._pad_to_max else ("input_ids", "attention_mask")
        tower = self._tower("get_text_features", names, ("text_embeds", "pooler_output"))
        return QueryTower(tower, self._tokenizer, names, self._max_length, self._pad_to_max)

    def _tower(self, method: str, names: Sequence[str], outputs: Sequence[str]) -> Any:
        """One of the model's two towers as a module for torch's ONNX exporter: positional
        tensors (``names``, in order) to the tower's embeddings."""
        torch = self._torch
        model = self._model

        class Tower(torch.nn.Module):
            def __init__(self) -> None:
                super().__init__()
                self.model = model

            def forward(self, *tensors: Any) -> Any:
                out = getattr(self.model, method)(**dict(zip(names, tensors, strict=True)))
                return _features(out, torch, *outputs)

        return Tower()

    def _embed_text_batch(self, texts: Sequence[str]) -> np.ndarray:
        torch = self._torch
        tokens = self._tokenizer(
            list(texts),
            padding="max_length" if self._pad_to_max else True,
            truncation=True,
            max_length=self._max_length,
            return_tensors="pt",
        )
        accepted = {"input_ids", "attention_mask", "position_ids"}
        if self._pad_to_max:
            # SigLIP's text tower was trained without an attention mask on padded input.
            accepted = {"input_ids"}
        tokens = {k: v.to(self.device) for k, v in tokens.items() if k in accepted}
        with self._lock, torch.inference_mode():
            out = self._model.get_text_features(**tokens)
        feats = _features(out, torch, "text_embeds", "pooler_output")
        return feats.float().cpu().numpy()
