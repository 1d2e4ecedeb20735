"""Test videos for bench/video.py: 1280x720, 30 fps H.264 made from real photos.

Each video is a run of shots 3-8 s long (seeded random lengths) joined by hard cuts.
A shot shows one of scikit-image's sample photos (centre-cropped to 16:9) with a slow
Ken Burns move: a zoom in or out of 4-10 % over the shot while the window drifts towards
a random corner, so consecutive frames differ a little as in real footage. About one shot
a minute (at least two) is a "slide": a white picture with large black text (DejaVuSans),
so OCR's presence pass has real text to find. Two slides are never adjacent and no photo
follows itself, so every cut is a real change of picture.

Encoded with libx264 (preset veryfast, crf 23, yuv420p, x264's default GOP and B-frames).
The cut times (exact: frame index / fps) and the shots go to a JSON file beside the
video's folder; the folder holds only the video, so indexing it indexes one file.
Generation (~0.4 s per second of video on 2 cores) is cached and never timed.
"""

from __future__ import annotations

import json
import random
import textwrap
import time
from pathlib import Path

FPS = 30
SIZE = (1280, 720)
SHOT_SECONDS = (3.0, 8.0)
PHOTOS = (
    "astronaut",
    "coffee",
    "chelsea",
    "rocket",
    "hubble_deep_field",
    "immunohistochemistry",
    "retina",
    "stereo_motorcycle",
    "camera",
    "moon",
    "coins",
    "clock",
    "cell",
)
SLIDES = (
    "Quarterly results: revenue grew in every region",
    "Installing the pump: close the valve before removing the cover",
    "Chapter three: migration routes of arctic terns",
    "Safety briefing: exits are at the front and rear of the cabin",
    "Recipe: saffron risotto with roasted fennel",
    "Lecture notes: eigenvalues of symmetric matrices",
    "Weather outlook: heavy snowfall expected on Thursday",
    "Release checklist: tag, build, sign and publish",
)
FONT = Path("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf")


def _photo(name: str):
    """The photo as an RGB PIL image centre-cropped to 16:9."""
    import numpy as np
    import skimage.data
    from PIL import Image

    pixels = getattr(skimage.data, name)()
    if isinstance(pixels, tuple):  # stereo_motorcycle: (left, right, disparity)
        pixels = pixels[0]
    pixels = np.asarray(pixels)
    if pixels.dtype == bool:
        pixels = pixels.astype(np.uint8) * 255
    image = Image.fromarray(pixels).convert("RGB")  # gray photos become RGB
    w, h = image.size
    target = SIZE[0] / SIZE[1]
    if w / h > target:
        cw, ch = h * target, h
    else:
        cw, ch = w, w / target
    left, top = (w - cw) / 2, (h - ch) / 2
    return image.crop((round(left), round(top), round(left + cw), round(top + ch)))


def _slide(text: str):
    """White 1280x720 slide, black DejaVuSans text about 72 px high (18 px at OCR's
    320-px presence copy), wrapped to fit."""
    from PIL import Image, ImageDraw, ImageFont

    width, height = SIZE
    image = Image.new("RGB", SIZE, "white")
    draw = ImageDraw.Draw(image)
    size = height // 10
    font = ImageFont.truetype(str(FONT), size) if FONT.exists() else ImageFont.load_default(size)
    body = "\n".join(textwrap.wrap(text, max(1, int(width * 0.84 / (size * 0.55)))))
    left, top, right, bottom = draw.multiline_textbbox((0, 0), body, font=font, spacing=12)
    x = (width - (right - left)) / 2 - left
    y = (height - (bottom - top)) / 2 - top
    draw.multiline_text((x, y), body, font=font, fill="black", spacing=12, align="center")
    return image


def plan(minutes: float, seed: int) -> list[dict]:
    """The shots: start/end frame, seconds, source ("photo:NAME" or "slide:TEXT"), move."""
    rng = random.Random(seed)
    total = round(minutes * 60 * FPS)
    lengths: list[int] = []
    while sum(lengths) < total:
        lengths.append(round(rng.uniform(*SHOT_SECONDS) * FPS))
    overshoot = sum(lengths) - total
    lengths[-1] -= overshoot
    if lengths[-1] < SHOT_SECONDS[0] * FPS and len(lengths) > 1:  # no short last shot
        lengths[-2] += lengths.pop()
    count = max(2, round(minutes))
    # Slides at evenly spread positions (never the first shot, never two adjacent).
    slide_at = {max(1, round((i + 0.5) * len(lengths) / count)) for i in range(count)}
    shots: list[dict] = []
    first = 0
    previous = None
    slide_texts = list(SLIDES)
    rng.shuffle(slide_texts)
    for i, length in enumerate(lengths):
        if i in slide_at and (previous is None or not previous.startswith("slide:")):
            used = sum(s["source"].startswith("slide:") for s in shots)
            source = "slide:" + slide_texts[used % len(slide_texts)]
        else:
            source = "photo:" + rng.choice([p for p in PHOTOS if f"photo:{p}" != previous])
        shots.append(
            {
                "start_frame": first,
                "end_frame": first + length,
                "start": first / FPS,
                "end": (first + length) / FPS,
                "source": source,
                "zoom": rng.uniform(0.04, 0.10) * rng.choice((1, -1)),  # + in, - out
                "drift": (rng.uniform(-1, 1), rng.uniform(-1, 1)),
            }
        )
        previous = source
        first += length
    return shots


def _frames(shots: list[dict]):
    from PIL import Image

    cache: dict[str, Image.Image] = {}
    for shot in shots:
        source = shot["source"]
        if source not in cache:
            kind, _, what = source.partition(":")
            cache[source] = _photo(what) if kind == "photo" else _slide(what)
        picture = cache[source]
        pw, ph = picture.size
        n = shot["end_frame"] - shot["start_frame"]
        zoom, (dx, dy) = shot["zoom"], shot["drift"]
        for i in range(n):
            t = i / max(1, n - 1)
            # zoom in: the window shrinks from 100 % to 1-zoom; zoom out: the reverse
            scale = 1 - zoom * t if zoom > 0 else 1 + zoom * (1 - t)
            cw, ch = pw * scale, ph * scale
            x0 = (pw - cw) * (0.5 + 0.5 * dx * (t if zoom > 0 else 1 - t))
            y0 = (ph - ch) * (0.5 + 0.5 * dy * (t if zoom > 0 else 1 - t))
            yield picture.resize(SIZE, Image.Resampling.BILINEAR, box=(x0, y0, x0 + cw, y0 + ch))


def make_video(folder: Path, minutes: float, *, seed: int = 0) -> tuple[Path, dict]:
    """``folder``/``clip.mp4`` (alone in its folder) and its truth, from the cache if made."""
    import av

    video = folder / "clip.mp4"
    truth_path = folder.with_name(folder.name + ".truth.json")
    if video.exists() and truth_path.exists():
        return video, json.loads(truth_path.read_text())
    folder.mkdir(parents=True, exist_ok=True)
    shots = plan(minutes, seed)
    partial = folder.parent / (folder.name + ".partial.mp4")  # outside the indexed folder
    started = time.perf_counter()
    with av.open(str(partial), "w", format="mp4") as out:
        stream = out.add_stream("libx264", rate=FPS, options={"preset": "veryfast", "crf": "23"})
        stream.width, stream.height, stream.pix_fmt = *SIZE, "yuv420p"
        for index, picture in enumerate(_frames(shots)):
            frame = av.VideoFrame.from_image(picture)
            frame.pts = index
            out.mux(stream.encode(frame))
        out.mux(stream.encode())
    partial.rename(video)
    truth = {
        "video": str(video),
        "minutes": minutes,
        "seed": seed,
        "fps": FPS,
        "size": list(SIZE),
        "frames": shots[-1]["end_frame"],
        "duration": shots[-1]["end_frame"] / FPS,
        "cuts": [s["start"] for s in shots[1:]],
        "shots": shots,
        "bytes": video.stat().st_size,
        "encode_seconds": round(time.perf_counter() - started, 1),
        "encoder": "libx264 preset=veryfast crf=23 yuv420p",
    }
    truth_path.write_text(json.dumps(truth, indent=1) + "\n")
    return video, truth
