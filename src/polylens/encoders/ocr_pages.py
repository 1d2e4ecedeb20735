"""PP-OCR's detector and recogniser run straight through onnxruntime, for reading a page.

rapidocr's own pipeline costs a scanned page several times what its two networks need
(``bench/ocr_speed.py``, results/ocr_speed.json, says how much each change gave):

* its sessions run without onnxruntime's memory arena, so every inference maps and
  unmaps its activations afresh: about a quarter of a page's CPU time went to page
  faults in the kernel. Here the arena is on.
* it recognises lines six to a batch, padded to the widest; on a CPU one line at a time
  is cheaper (the activations of one line stay in cache).
* its detector enlarges any picture whose short side is under 736 px (a half-page
  abstract, 1240 x 531, went in at 1728 x 736) and normalises in float64. Here a
  document is detected at its own size, photos keep rapidocr's rule.
* PP-OCR's hard-swish is exported as four element-wise nodes (add, clip, multiply,
  divide); rewritten as onnxruntime's HardSigmoid and one multiply they cost less.
* the recogniser sees lines of a document 44 px tall instead of its training height 48:
  lines of a 150-dpi page are 22-28 px tall, and enlarged to 44 px fewer words run
  together (scratch runs over the bench's 40 pages: CER 0.073 against 0.079 at 48 and
  0.087 at 40 on the manuals) while the network does an eighth less work. Lines under
  ``SMALL_LINE`` px (a page rendered as a thumbnail) and photos keep 48.

No angle classifier: ingest never asked for it (upright pages and photos; a line
standing on end is turned by the crop, as in rapidocr).
"""

from __future__ import annotations

import math
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np

from polylens.encoders import onnx_files

MAX_SIDE = 2000
"""Longest side the detector sees (rapidocr's ``max_side_len``)."""
PHOTO_SHORT_SIDE = 736
"""A photo's short side is brought up to this for detection (rapidocr's ``limit_side_len``)."""
DOCUMENT_LONG_SIDE = 1024
"""A document smaller than this on its long side (a thumbnail) is enlarged to it."""
MAX_ENLARGED_SIDE = 2880
REC_HEIGHT = 48
"""The recogniser's training height, for photos."""
DOCUMENT_REC_HEIGHT = 44
SMALL_LINE = 16
"""A document's line cut out shorter than this is recognised at ``REC_HEIGHT``."""
BOX_THRESHOLD = 0.5
"""Mean text probability inside a detected box (PP-OCR's own default)."""
REC_MIN_WIDTH_RATIO = 320 / 48
"""A line narrower than this many heights is padded to it (rapidocr's ``rec_img_shape``)."""


def _model_paths() -> tuple[str, str]:
    """The detector and recogniser that rapidocr-onnxruntime ships, per its own config."""
    import rapidocr_onnxruntime
    import yaml

    root = Path(rapidocr_onnxruntime.__file__).resolve().parent
    with open(root / "config.yaml", encoding="utf-8") as fh:
        config = yaml.safe_load(fh)
    return str(root / config["Det"]["model_path"]), str(root / config["Rec"]["model_path"])


def _constant(name: str, values: dict[str, np.ndarray]) -> float | None:
    value = values.get(name)
    return float(value.ravel()[0]) if value is not None and value.size == 1 else None


@cache
def _fused(path: str) -> bytes:
    """The model at ``path`` with each ``x * clip(x + 3, 0, 6) / 6`` (hard-swish as
    Paddle exports it) rewritten as ``x * HardSigmoid(x)``; numerically the same."""
    import onnx
    from onnx import helper, numpy_helper

    model = onnx.load(path)
    graph = model.graph
    values = {i.name: numpy_helper.to_array(i) for i in graph.initializer}
    for node in graph.node:
        if node.op_type == "Constant" and node.attribute and node.attribute[0].name == "value":
            values[node.output[0]] = numpy_helper.to_array(node.attribute[0].t)
    producer = {out: node for node in graph.node for out in node.output}
    consumers: dict[str, list[Any]] = {}
    for node in graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node)
    replaced: dict[int, list[Any]] = {}
    dropped: set[int] = set()
    for clip in graph.node:
        if clip.op_type != "Clip" or len(clip.input) != 3:
            continue
        add = producer.get(clip.input[0])
        if add is None or add.op_type != "Add" or consumers.get(add.output[0]) != [clip]:
            continue
        bounds = (_constant(clip.input[1], values), _constant(clip.input[2], values))
        if bounds != (0.0, 6.0) or _constant(add.input[1], values) != 3.0:
            continue
        x = add.input[0]
        after = consumers.get(clip.output[0], [])
        if (
            len(after) != 1
            or after[0].op_type != "Mul"
            or set(after[0].input) != {x, clip.output[0]}
        ):
            continue
        mul = after[0]
        after = consumers.get(mul.output[0], [])
        if (
            len(after) != 1
            or after[0].op_type != "Div"
            or _constant(after[0].input[1], values) != 6.0
        ):
            continue
        div = after[0]
        gate = f"{div.output[0]}.hardsigmoid"
        replaced[id(div)] = [
            helper.make_node("HardSigmoid", [x], [gate], alpha=1 / 6, beta=0.5),
            helper.make_node("Mul", [x, gate], [div.output[0]]),
        ]
        dropped |= {id(add), id(clip), id(mul)}
    nodes = []
    for node in graph.node:
        if id(node) not in dropped:
            nodes.extend(replaced.get(id(node), [node]))
    del graph.node[:]
    graph.node.extend(nodes)
    return model.SerializeToString()


def _session(path: str, threads: int) -> Any:
    try:
        model: str | bytes = _fused(path)
    except Exception:  # noqa: BLE001 - an unexpected graph: run it as shipped
        model = path
    return onnx_files.session(model, threads=threads)


class PageReader:
    """One thread's detector and recogniser sessions (``threads`` onnxruntime threads)."""

    def __init__(self, threads: int = 1) -> None:
        from rapidocr_onnxruntime.ch_ppocr_det.utils import DBPostProcess
        from rapidocr_onnxruntime.ch_ppocr_rec.utils import CTCLabelDecode

        det_path, rec_path = _model_paths()
        self.det = _session(det_path, threads)
        self.rec = _session(rec_path, threads)
        characters = self.rec.get_modelmeta().custom_metadata_map["character"].splitlines()
        self.decode = CTCLabelDecode(character=characters)
        self.boxes_from_map = DBPostProcess(
            thresh=0.3, box_thresh=BOX_THRESHOLD, unclip_ratio=1.6, use_dilation=True
        )

    def probability(self, bgr: np.ndarray) -> np.ndarray:
        """The detector's text map of ``bgr`` (uint8, sides multiples of 32)."""
        batch = bgr.astype(np.float32) * np.float32(2 / 255) - np.float32(1)
        return self.det.run(None, {"x": np.ascontiguousarray(batch.transpose(2, 0, 1)[None])})[0]

    def detect(self, bgr: np.ndarray, scale: float) -> list[np.ndarray]:
        """Text quadrilaterals (clockwise from top left) in ``bgr``'s pixels, found on a
        copy scaled by ``scale``."""
        import cv2

        height, width = bgr.shape[:2]
        net_w = max(32, round(width * scale / 32) * 32)
        net_h = max(32, round(height * scale / 32) * 32)
        shrink = net_w < width and net_h < height
        resample = cv2.INTER_AREA if shrink else cv2.INTER_LINEAR
        small = (
            bgr
            if (net_w, net_h) == (width, height)
            else cv2.resize(bgr, (net_w, net_h), interpolation=resample)
        )
        boxes, _scores = self.boxes_from_map(self.probability(small), (height, width))
        out = []
        for box in np.asarray(boxes, dtype=np.float32).reshape(-1, 4, 2):
            box = _clockwise(box)
            box[:, 0] = np.clip(np.round(box[:, 0]), 0, width - 1)
            box[:, 1] = np.clip(np.round(box[:, 1]), 0, height - 1)
            if np.linalg.norm(box[0] - box[1]) > 3 and np.linalg.norm(box[0] - box[3]) > 3:
                out.append(box)
        return out

    def recognise(
        self, crops: list[np.ndarray], line_height: int = REC_HEIGHT
    ) -> list[tuple[str, float]]:
        """Each line's text and mean character probability; one line per inference."""
        import cv2

        results: list[tuple[str, float]] = []
        for crop in crops:
            height = REC_HEIGHT if crop.shape[0] < SMALL_LINE else line_height
            ratio = crop.shape[1] / crop.shape[0]
            padded = int(height * max(ratio, REC_MIN_WIDTH_RATIO))
            width = max(1, min(padded, math.ceil(height * ratio)))
            resized = cv2.resize(crop, (width, height)).astype(np.float32)
            line = np.zeros((1, 3, height, padded), np.float32)
            line[0, :, :, :width] = resized.transpose(2, 0, 1) * np.float32(2 / 255) - 1
            text, score = self.decode(self.rec.run(None, {"x": line})[0])[0]
            results.append((text, float(score)))
        return results

    def __call__(self, bgr: np.ndarray, *, document: bool) -> list[tuple[np.ndarray, str, float]]:
        """Every line of ``bgr``: (box, text, score)."""
        boxes = self.detect(bgr, detection_scale(bgr.shape[1], bgr.shape[0], document=document))
        if not boxes:
            return []
        height = DOCUMENT_REC_HEIGHT if document else REC_HEIGHT
        texts = self.recognise(crop_lines(bgr, boxes), height)
        return [(box, text, score) for box, (text, score) in zip(boxes, texts, strict=True)]


def detection_scale(width: int, height: int, *, document: bool) -> float:
    """A document at its own size (a thumbnail enlarged to ``DOCUMENT_LONG_SIDE``); a photo
    as rapidocr sizes it (short side up to ``PHOTO_SHORT_SIDE``); never past ``MAX_SIDE``
    unless enlarged, and never enlarged past ``MAX_ENLARGED_SIDE``."""
    long, short = max(width, height), min(width, height)
    scale = min(1.0, MAX_SIDE / long)
    if document:
        scale = max(scale, DOCUMENT_LONG_SIDE / long)
    elif short * scale < PHOTO_SHORT_SIDE:
        scale = PHOTO_SHORT_SIDE / short
    return min(scale, max(1.0, MAX_ENLARGED_SIDE / long))


def _clockwise(box: np.ndarray) -> np.ndarray:
    """Top left, top right, bottom right, bottom left (rapidocr's ordering)."""
    by_x = box[np.argsort(box[:, 0], kind="stable")]
    left = by_x[:2][np.argsort(by_x[:2, 1], kind="stable")]
    right = by_x[2:][np.argsort(by_x[2:, 1], kind="stable")]
    return np.array([left[0], right[0], right[1], left[1]], dtype=np.float32)


def crop_lines(bgr: np.ndarray, boxes: list[np.ndarray] | np.ndarray) -> list[np.ndarray]:
    """Each box cut out straight (perspective warp, bicubic); a box standing on end is
    turned to lie flat (rapidocr's ``get_crop_img_list``)."""
    import cv2

    crops = []
    for box in boxes:
        points = np.asarray(box, dtype=np.float32)
        width = int(
            max(np.linalg.norm(points[0] - points[1]), np.linalg.norm(points[2] - points[3]))
        )
        height = int(
            max(np.linalg.norm(points[0] - points[3]), np.linalg.norm(points[1] - points[2]))
        )
        target = np.array([[0, 0], [width, 0], [width, height], [0, height]], dtype=np.float32)
        crop = cv2.warpPerspective(
            bgr,
            cv2.getPerspectiveTransform(points, target),
            (width, height),
            borderMode=cv2.BORDER_REPLICATE,
            flags=cv2.INTER_CUBIC,
        )
        if crop.shape[0] >= 1.5 * crop.shape[1]:
            crop = np.rot90(crop)
        crops.append(crop)
    return crops
