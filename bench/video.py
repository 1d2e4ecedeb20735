"""Video ingest speed (x real time) and peak RSS by video length: polylens vs a naive baseline.

Question (goal): does ``polylens index`` on a 720p H.264 video, with a ViT-B/32 CLIP and
OCR's presence pass on, run at >= 30x real time on 2 cores, beside a naive baseline that
decodes every frame at full resolution and embeds one frame a second, in the same run;
and does peak RSS stay flat as the video gets longer?

* videos (bench/_video_data.py, cached in .bench-work/video/): 1280x720, 30 fps, libx264
  veryfast crf 23, shots 3-8 s of scikit-image's photos with a slow zoom/pan, hard cuts,
  about one text slide a minute. The cut times are known exactly.
* model: ViT-B/32 CLIP with random weights (bench/_ingest_models.py; speed does not
  depend on the weights), loaded by local path.
* polylens: ``polylens.open(index, image_model=<that folder>, text_model="none",
  device="cpu")`` and ``.add([video folder])``, other settings at their defaults (OCR on,
  2 decode workers, batch 32). text_model is "none": the default MiniLM is not on this
  machine (no hub), and it would embed only OCR text of the few slides.
* baseline: PyAV decodes every frame (FFmpeg threads on) and converts each to RGB at
  full resolution; one frame a second goes through CLIPImageProcessor (its PIL
  implementation here: no torchvision) and ``CLIPModel.get_image_features`` (torch,
  eager, batches of 32), decode and embedding in turn in one thread, as a naive script
  would.

Each (system, length) is its own process, holding the CPU lock while it runs; its peak RSS
is its own ``ru_maxrss``, taken before any search. Speed is video seconds / seconds
spent, with the model load left out ("busy") and in ("end to end"; for polylens on a new
index that is mostly the one-time ONNX export of the query tower, ~5 s). After the timed part
the polylens child reads the segments back through ``search(kind="video")`` and
bm25-searches each slide's words; the parent scores cut detection against the known cuts
(+-0.5 s).

    python bench/video.py                  # 2 and 8 min: ~2 min (+ ~4 min encoding once)
    python bench/video.py --quick          # one 1-minute video, smoke run
    python bench/video.py --minutes 2 4 8 16 --no-baseline --out bench/results/video-lengths.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))

from _cpu_lock import cpu_lock  # noqa: E402
from _video_data import make_video  # noqa: E402

WORK = ROOT / ".bench-work"
VIDEOS = WORK / "video"
RESULTS = ROOT / "bench" / "results" / "video.json"
GOAL = 30.0
TOLERANCE = 0.5
"""Seconds: a segment start this close to a generated cut finds it."""


def _peak_rss_mb() -> float:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _cpu_seconds() -> float:
    """User + system CPU time of this process, all threads (FFmpeg's and torch's too)."""
    import resource

    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


# -- children (one measurement each, its own process) -----------------------------------


def child_polylens(args: argparse.Namespace) -> dict:
    sys.path.insert(0, str(ROOT / "src"))
    import polylens

    truth = json.loads(Path(args.truth).read_text())
    index = Path(args.work)
    shutil.rmtree(index, ignore_errors=True)
    started = time.perf_counter()
    cpu_started = _cpu_seconds()
    with polylens.open(index, image_model=str(args.model), text_model="none", device="cpu") as idx:
        summary = idx.add([str(Path(truth["video"]).parent)])
        wall = time.perf_counter() - started
        cpu = _cpu_seconds() - cpu_started
        peak = _peak_rss_mb()
        stages = dict(summary.stage_seconds)
        # Read back: every segment (the index holds one video), then each slide by its words.
        hits = idx.search("a photo", kind="video", k=10_000, rerank=False)
        segments = sorted((h.start, h.end) for h in hits)
        # A long video repeats slide texts: a slide is found when one of the first n hits
        # (n = slides with its text) overlaps it.
        texts = [
            s["source"][len("slide:") :] for s in truth["shots"] if s["source"].startswith("slide:")
        ]
        slides = []
        for shot in truth["shots"]:
            if not shot["source"].startswith("slide:"):
                continue
            words = shot["source"][len("slide:") :]
            found = idx.search(
                words, kind="video", k=texts.count(words), retrievers=["bm25"], rerank=False
            )
            hit = next(
                (h for h in found if h.start < shot["end"] and (h.end or 0) > shot["start"]), None
            )
            slides.append(
                {
                    "start": shot["start"],
                    "end": shot["end"],
                    "text": words,
                    "found": hit is not None,
                    "snippet": (hit.snippet or "")[:80] if hit else None,
                }
            )
    busy = summary.seconds - stages.get("load_models", 0.0)
    return {
        "items": summary.items_written,
        "failed": summary.failed,
        "failures": [f"{f.path}: {f.reason}" for f in summary.failures][:5],
        "warnings": summary.warnings[:5],
        "seconds_busy": round(busy, 2),
        "seconds_end_to_end": round(wall, 2),
        "summary_seconds": round(summary.seconds, 2),
        # CPU of open + add, model loading included (mostly one core)
        "cpu_seconds_end_to_end": round(cpu, 2),
        "stage_seconds": stages,
        "peak_rss_mb": round(peak, 1),
        "segments": segments,
        "slides": slides,
    }


def child_baseline(args: argparse.Namespace) -> dict:
    import av
    import torch
    from PIL import Image
    from transformers import CLIPImageProcessorPil, CLIPModel

    truth = json.loads(Path(args.truth).read_text())
    started = time.perf_counter()
    model = CLIPModel.from_pretrained(args.model).eval()
    # What CLIPImageProcessor resolves to without torchvision; named to silence its warning.
    processor = CLIPImageProcessorPil.from_pretrained(args.model)
    load = time.perf_counter() - started
    decode = embed = 0.0
    frames = embedded = 0
    batch: list = []

    def flush() -> None:
        nonlocal embed, embedded, batch
        if not batch:
            return
        t0 = time.perf_counter()
        with torch.inference_mode():
            pixels = processor(images=batch, return_tensors="pt")["pixel_values"]
            model.get_image_features(pixel_values=pixels)
        embed += time.perf_counter() - t0
        embedded += len(batch)
        batch = []

    busy_started = time.perf_counter()
    cpu_started = _cpu_seconds()
    with av.open(truth["video"]) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"  # FFmpeg's frame threads: the baseline's best decode
        next_at = 0.0
        t0 = time.perf_counter()
        for frame in container.decode(stream):
            rgb = frame.to_ndarray(format="rgb24")  # every frame, full resolution
            frames += 1
            if frame.time is not None and frame.time >= next_at:
                next_at += 1.0
                batch.append(Image.fromarray(rgb))
                if len(batch) == args.batch:
                    decode += time.perf_counter() - t0
                    flush()
                    t0 = time.perf_counter()
        decode += time.perf_counter() - t0
    flush()
    busy = time.perf_counter() - busy_started
    cpu = _cpu_seconds() - cpu_started
    return {
        "items": embedded,
        "frames_decoded": frames,
        "seconds_busy": round(busy, 2),
        "seconds_end_to_end": round(busy + load, 2),
        "cpu_seconds_busy": round(cpu, 2),
        "stage_seconds": {
            "load_models": round(load, 2),
            "decode_rgb": round(decode, 2),
            "embed": round(embed, 2),
        },
        "peak_rss_mb": round(_peak_rss_mb(), 1),
    }


# -- parent ------------------------------------------------------------------------------


def measure(
    system: str, truth: Path, model: Path, work: Path, lock: str | None, batch: int
) -> dict:
    command = [
        sys.executable,
        str(Path(__file__).resolve()),
        "--child",
        system,
        "--truth",
        str(truth),
        "--model",
        str(model),
        "--work",
        str(work),
        "--batch",
        str(batch),
    ]
    with cpu_lock(lock):
        load_before = os.getloadavg()[0]
        started = time.perf_counter()
        done = subprocess.run(command, capture_output=True, text=True, cwd=ROOT)
        wall = time.perf_counter() - started
        load_after = os.getloadavg()[0]
    if done.returncode != 0:
        return {"error": (done.stderr or done.stdout).strip()[-800:]}
    result = json.loads(done.stdout.strip().splitlines()[-1])
    result["process_wall_s"] = round(wall, 1)
    # The lock keeps other benchmarks out, not everything: a 1-min load average well over
    # the measurement's own ~2 means the machine was shared.
    result["loadavg_1min_before_after"] = [round(load_before, 2), round(load_after, 2)]
    return result


def cut_scores(truth: dict, segments: list[list[float]], window_seconds: float) -> dict:
    """Segment starts vs the generated cuts, one-to-one, nearest first, within TOLERANCE.

    A start at a decode-window edge (polylens cuts a video into independent windows, and
    a window's edge is always a segment edge) that matches no cut is counted apart, not
    as a false cut."""
    sys.path.insert(0, str(ROOT / "src"))
    from polylens.ingest.video import windows

    cuts = truth["cuts"]
    edges = [start for start, _ in windows(truth["duration"], window_seconds)[1:]]
    starts = [s for s, _ in segments if s > 1e-6]
    pairs = sorted(
        (abs(s - c), i, j)
        for i, s in enumerate(starts)
        for j, c in enumerate(cuts)
        if abs(s - c) <= TOLERANCE
    )
    used_s: set[int] = set()
    used_c: set[int] = set()
    errors = []
    for distance, i, j in pairs:
        if i in used_s or j in used_c:
            continue
        used_s.add(i)
        used_c.add(j)
        errors.append(starts[i] - cuts[j])
    unmatched = [s for i, s in enumerate(starts) if i not in used_s]
    at_edges = [s for s in unmatched if any(abs(s - e) < 0.05 for e in edges)]
    false = [round(s, 2) for s in unmatched if s not in at_edges]
    missed = [round(c, 2) for j, c in enumerate(cuts) if j not in used_c]
    tp = len(used_c)
    covered = sum(e - s for s, e in segments)
    return {
        "cuts": len(cuts),
        "segment_starts": len(starts),
        "matched": tp,
        "precision": round(tp / max(1, tp + len(false)), 3),
        "recall": round(tp / max(1, len(cuts)), 3),
        "window_edge_starts": len(at_edges),
        "false_cuts": false[:20],
        "missed_cuts": missed[:20],
        "missed_shots": [
            s["source"][:40] + f" @{s['start']:.2f}"
            for s in truth["shots"][1:]
            if round(s["start"], 2) in missed
        ][:20],
        "mean_abs_error_s": round(sum(abs(e) for e in errors) / max(1, len(errors)), 3),
        "mean_error_s": round(sum(errors) / max(1, len(errors)), 3),
        "covered_seconds": round(covered, 2),
    }


def machine() -> dict:
    info = {
        "platform": platform.platform(),
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "affinity": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
    }
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                info["cpu"] = line.split(":", 1)[1].strip()
                break
        mem = Path("/proc/meminfo").read_text().split()
        info["ram_gib"] = round(int(mem[mem.index("MemTotal:") + 1]) / 2**20, 1)
    except (OSError, ValueError):
        pass
    for name in ("av", "torch", "transformers", "polylens"):
        try:
            module = __import__(name)
            info[name] = getattr(module, "__version__", "?")
        except ImportError:
            info[name] = None
    return info


def source_state() -> dict:
    """Which polylens code was measured: HEAD, whether the tree is dirty, and a digest of
    the video ingest files (a dirty tree's numbers belong to these digests)."""
    import hashlib

    def git(*command: str) -> str:
        done = subprocess.run(["git", *command], capture_output=True, text=True, cwd=ROOT)
        return done.stdout.strip()

    files = ("ingest/video.py", "ingest/units.py", "ingest/pipeline.py", "encoders/ocr.py")
    digests = {}
    for name in files:
        path = ROOT / "src" / "polylens" / name
        if path.exists():
            digests[name] = hashlib.sha256(path.read_bytes()).hexdigest()[:12]
    return {
        "head": git("rev-parse", "--short", "HEAD"),
        "dirty": bool(git("status", "--porcelain", "--untracked-files=no", "src")),
        "sha256_12": digests,
    }


def report(rows: list[dict]) -> None:
    head = (
        f"{'system':10} {'video':>6} {'items':>6} {'busy s':>7} {'x real':>7} "
        f"{'e2e s':>7} {'x e2e':>6} {'RSS MiB':>8} {'pl/base':>8}"
    )
    print("\n" + head)
    print("-" * len(head))
    for row in rows:
        r = row["result"]
        label = f"{row['minutes']:g} min"
        if "error" in r:
            print(f"{row['system']:10} {label:>6} NOT RUN: {r['error'][-300:]}")
            continue
        ratio = row.get("polylens_over_baseline")
        print(
            f"{row['system']:10} {label:>6} {r['items']:>6} {r['seconds_busy']:>7.1f} "
            f"{row['x_real_time']:>7.1f} {r['seconds_end_to_end']:>7.1f} "
            f"{row['x_real_time_end_to_end']:>6.1f} {r['peak_rss_mb']:>8.0f} "
            f"{(f'{ratio:.2f}' if ratio else ''):>8}"
        )
    print(
        "items: segments (polylens) / frames embedded (baseline); x real = video s / busy s "
        "(model load out), x e2e = with it; pl/base = polylens x real / baseline x real; "
        "polylens's stage seconds are summed over its threads (2 decode workers, the encoder)"
    )
    for row in rows:
        r = row["result"]
        if "stage_seconds" in r:
            stages = ", ".join(f"{k} {v:.1f}" for k, v in r["stage_seconds"].items())
            if "cpu_seconds_end_to_end" in r:
                cpu, over = r["cpu_seconds_end_to_end"], r["seconds_end_to_end"]
                stages += f"; CPU {cpu:.1f} s over {over:.1f} s end to end ({cpu / over:.2f} cores)"
            elif "cpu_seconds_busy" in r:
                cpu, over = r["cpu_seconds_busy"], r["seconds_busy"]
                stages += f"; CPU {cpu:.1f} s over {over:.1f} s busy ({cpu / over:.2f} cores)"
            load = r.get("loadavg_1min_before_after")
            print(
                f"  {row['system']} {row['minutes']:g} min stage seconds: {stages}"
                + (
                    f" (1-min load average before/after: {load[0]:.1f}/{load[1]:.1f})"
                    if load
                    else ""
                )
            )
        if "cut_detection" in row:
            c = row["cut_detection"]
            print(
                f"  {row['system']} {row['minutes']:g} min cuts: {c['matched']}/{c['cuts']} found "
                f"(recall {c['recall']:.3f}, precision {c['precision']:.3f} at +-{TOLERANCE} s, "
                f"mean |error| {c['mean_abs_error_s']:.2f} s), {c['window_edge_starts']} "
                f"window-edge starts, false {c['false_cuts']}, missed {c['missed_shots']}"
            )
        if r.get("slides"):
            found = sum(s["found"] for s in r["slides"])
            print(
                f"  {row['system']} {row['minutes']:g} min slides found by their words (bm25): "
                f"{found}/{len(r['slides'])}"
            )
    polylens = {
        row["minutes"]: row for row in rows if row["system"] == "polylens" and "x_real_time" in row
    }
    base = {
        row["minutes"]: row for row in rows if row["system"] == "baseline" and "x_real_time" in row
    }
    for name, table in (("polylens", polylens), ("baseline", base)):
        if len(table) > 1:
            rss = {m: table[m]["result"]["peak_rss_mb"] for m in sorted(table)}
            print(
                f"  {name} peak RSS by length: "
                + ", ".join(f"{m:g} min {v:.0f} MiB" for m, v in rss.items())
            )
    if polylens:
        worst = min(row["x_real_time"] for row in polylens.values())
        print(
            f"polylens slowest: {worst:.1f}x real time (goal >= {GOAL:g}x): "
            f"{'met' if worst >= GOAL else 'NOT met'}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--minutes", type=float, nargs="+", default=[2.0, 8.0])
    parser.add_argument(
        "--quick", action="store_true", help="one 1-minute video (JSON to .bench-work/video/)"
    )
    parser.add_argument("--out", type=Path, help=f"default {RESULTS.relative_to(ROOT)}")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--batch", type=int, default=32, help="the baseline's batch")
    parser.add_argument("--no-baseline", action="store_true")
    parser.add_argument("--lock", default="/tmp/polylens-cpu.lock")
    parser.add_argument("--child", choices=("polylens", "baseline"), help=argparse.SUPPRESS)
    parser.add_argument("--truth", help=argparse.SUPPRESS)
    parser.add_argument("--model", help=argparse.SUPPRESS)
    parser.add_argument("--work", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        result = (child_polylens if args.child == "polylens" else child_baseline)(args)
        print("\n" + json.dumps(result))
        return

    from _ingest_models import make_hf_clip_b32

    minutes = [1.0] if args.quick else args.minutes
    if args.out is None:  # a smoke run does not overwrite the real numbers
        args.out = VIDEOS / "quick.json" if args.quick else RESULTS
    source = source_state()
    model = make_hf_clip_b32(WORK / "models" / "hf-clip-b32")
    videos = {}
    for m in minutes:
        print(f"... video {m:g} min (cached after the first run)", file=sys.stderr, flush=True)
        video, truth = make_video(VIDEOS / f"{m:g}min-seed{args.seed}", m, seed=args.seed)
        videos[m] = (video, truth, VIDEOS / f"{m:g}min-seed{args.seed}.truth.json")

    sys.path.insert(0, str(ROOT / "src"))
    from polylens.ingest.units import VIDEO_WINDOW_SECONDS

    rows: list[dict] = []
    systems = ["polylens"] + ([] if args.no_baseline else ["baseline"])
    for m in minutes:
        video, truth, truth_path = videos[m]
        for system in systems:
            print(f"... {system} on {m:g} min", file=sys.stderr, flush=True)
            result = measure(system, truth_path, model, WORK / "video-index", args.lock, args.batch)
            row = {
                "system": system,
                "minutes": m,
                "video_seconds": truth["duration"],
                "result": result,
            }
            if "error" not in result:
                row["x_real_time"] = round(truth["duration"] / result["seconds_busy"], 2)
                row["x_real_time_end_to_end"] = round(
                    truth["duration"] / result["seconds_end_to_end"], 2
                )
                if system == "polylens":
                    row["cut_detection"] = cut_scores(
                        truth, result["segments"], VIDEO_WINDOW_SECONDS
                    )
            rows.append(row)
        pl = next((r for r in rows if r["minutes"] == m and r["system"] == "polylens"), None)
        bl = next((r for r in rows if r["minutes"] == m and r["system"] == "baseline"), None)
        if pl and bl and "x_real_time" in pl and "x_real_time" in bl:
            pl["polylens_over_baseline"] = round(pl["x_real_time"] / bl["x_real_time"], 2)
            pl["polylens_over_baseline_end_to_end"] = round(
                pl["x_real_time_end_to_end"] / bl["x_real_time_end_to_end"], 2
            )
    report(rows)
    if source_state() != source:
        source["changed_during_run"] = True
        print("WARNING: polylens's video ingest code changed during the run", file=sys.stderr)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    settings = {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()}
    settings = {k: v for k, v in settings.items() if k not in ("child", "truth", "model", "work")}
    videos_info = {
        f"{m:g}": {k: v for k, v in truth.items() if k not in ("shots",)}
        for m, (_, truth, _) in videos.items()
    }
    args.out.write_text(
        json.dumps(
            {
                "question": "minutes of 720p H.264 video indexed per minute, polylens vs naive "
                "baseline; peak RSS by video length",
                "goal_x_real_time": GOAL,
                "command": "python " + " ".join(shlex.quote(a) for a in sys.argv),
                "machine": machine(),
                "polylens_source": source,
                "settings": settings,
                "polylens_settings": {
                    "image_model": "random-weight ViT-B/32 CLIP (local HF dir)",
                    "text_model": "none",
                    "ocr": True,
                    "device": "cpu",
                    "other": "defaults (workers 2, batch 32)",
                },
                "videos": videos_info,
                "runs": rows,
            },
            indent=1,
        )
        + "\n"
    )
    print(f"wrote {args.out.relative_to(ROOT) if args.out.is_relative_to(ROOT) else args.out}")


if __name__ == "__main__":
    main()
