"""OCR's page path (ocr_pages): the graph rewrite, the detector's size rule, and reading a
rendered line with the PP-OCR weights shipped in rapidocr-onnxruntime."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFont

from polylens.encoders import ocr_pages
from polylens.encoders.ocr_pages import PageReader, _clockwise, detection_scale

pytest.importorskip("rapidocr_onnxruntime")


@pytest.fixture(scope="module")
def reader() -> PageReader:
    return PageReader(threads=1)


@pytest.mark.parametrize("which", [0, 1], ids=["detector", "recogniser"])
def test_hard_swish_rewrite_changes_nothing_but_the_nodes(which: int) -> None:
    import onnx
    import onnxruntime as ort

    path = ocr_pages._model_paths()[which]
    fused = onnx.load_from_string(ocr_pages._fused(path))
    ops = [node.op_type for node in fused.graph.node]
    shipped = [node.op_type for node in onnx.load(path).graph.node]
    rewritten_count = shipped.count("Clip") - ops.count("Clip")
    assert (
        rewritten_count >= 20
    )  # PP-OCRv4's hard-swishes (24 in the detector, 28 in the recogniser)
    assert ops.count("HardSigmoid") == shipped.count("HardSigmoid") + rewritten_count
    options = ort.SessionOptions()
    options.log_severity_level = 3
    shape = (1, 3, 64, 96) if which == 0 else (1, 3, 48, 320)
    x = np.random.default_rng(0).uniform(-1, 1, shape).astype(np.float32)
    plain = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
    rewritten = ort.InferenceSession(
        fused.SerializeToString(), options, providers=["CPUExecutionProvider"]
    )
    np.testing.assert_allclose(
        rewritten.run(None, {"x": x})[0], plain.run(None, {"x": x})[0], atol=1e-4
    )


def test_detection_scale() -> None:
    # a 150-dpi page and a half-page abstract: their own size, never enlarged
    assert detection_scale(1275, 1651, document=True) == 1.0
    assert detection_scale(1240, 531, document=True) == 1.0
    # a thumbnail of a page: enlarged to a 1024-px long side
    assert detection_scale(358, 506, document=True) == pytest.approx(1024 / 506)
    # a photo: short side up to 736 (rapidocr's rule), large pictures down to 2000
    assert detection_scale(640, 480, document=False) == pytest.approx(736 / 480)
    assert detection_scale(4000, 3000, document=False) == pytest.approx(0.5)
    # a banner is not enlarged past 2880 px
    assert detection_scale(1600, 100, document=False) == pytest.approx(2880 / 1600)


def test_box_corners_are_ordered_clockwise_from_top_left() -> None:
    box = np.array([[10, 30], [90, 5], [10, 5], [90, 30]], np.float32)
    assert _clockwise(box).tolist() == [[10, 5], [90, 5], [90, 30], [10, 30]]


def _line(text: str, size: int) -> Image.Image:
    font = ImageFont.load_default(size=size)
    page = Image.new("RGB", (int(font.getlength(text)) + 4 * size, 4 * size), (255, 255, 255))
    ImageDraw.Draw(page).text((2 * size, size), text, fill=(0, 0, 0), font=font)
    return page


@pytest.mark.parametrize("document", [True, False])
def test_reads_a_printed_line(reader: PageReader, document: bool) -> None:
    picture = _line("Pressure distribution 1962", 24)
    bgr = np.ascontiguousarray(np.asarray(picture)[:, :, ::-1])
    lines = reader(bgr, document=document)
    assert len(lines) == 1
    box, text, score = lines[0]
    assert box.shape == (4, 2)
    assert text.replace(" ", "") == "Pressuredistribution1962"
    assert score > 0.8


def test_small_lines_are_recognised_at_the_training_height(
    reader: PageReader, monkeypatch: pytest.MonkeyPatch
) -> None:
    heights = []
    run = reader.rec.run

    class Spy:
        def run(self, names, feed):
            heights.append(feed["x"].shape[2])
            return run(names, feed)

    monkeypatch.setattr(reader, "rec", Spy())
    white = np.full((30, 200, 3), 255, np.uint8)
    reader.recognise([white, white[:10]], ocr_pages.DOCUMENT_REC_HEIGHT)
    assert heights == [ocr_pages.DOCUMENT_REC_HEIGHT, ocr_pages.REC_HEIGHT]
